"""Parity with Hugging Face transformers: Llama and Qwen2 saved and re-loaded.

Tiny random models are built with transformers (torch CPU, fp32), saved with
`save_pretrained` into a temporary directory and loaded by our loader. Logits
must agree to 1e-4 and greedy generation of 32 tokens token for token.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from symbiosis_jax import models, sampling  # noqa: E402

# The numbers users get: compiled with XLA's full optimisations (tests/conftest.py).
pytestmark = pytest.mark.optimized

_COMMON = dict(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
               initializer_range=0.3, rms_norm_eps=1e-5, bos_token_id=None,
               eos_token_id=None, pad_token_id=None)


def _build(kind, *, tie=False, theta=10000.0):
    torch.manual_seed(0)
    if kind == "llama":
        cfg = transformers.LlamaConfig(**_COMMON, tie_word_embeddings=tie,
                                       rope_theta=theta)
        model = transformers.LlamaForCausalLM(cfg)
    else:
        cfg = transformers.Qwen2Config(**_COMMON, tie_word_embeddings=tie,
                                       rope_theta=theta)
        model = transformers.Qwen2ForCausalLM(cfg)
    # Random norms and biases, so that a wrong mapping of them cannot hide
    # behind the default ones/zeros.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))
    return model.float().eval()


@pytest.fixture(scope="module", params=[
    ("llama", False, 10000.0, None), ("qwen2", True, 1e6, "4KB")],
    ids=["llama-untied", "qwen2-tied-sharded"])
def saved(request, tmp_path_factory):
    kind, tie, theta, shard = request.param
    hf = _build(kind, tie=tie, theta=theta)
    path = str(tmp_path_factory.mktemp(kind))
    kwargs = {"max_shard_size": shard} if shard else {}
    hf.save_pretrained(path, **kwargs)
    files = os.listdir(path)
    if shard:
        assert "model.safetensors.index.json" in files
        assert sum(f.endswith(".safetensors") for f in files) > 1
    else:
        assert "model.safetensors" in files
    return kind, tie, theta, hf, path


def test_config_and_logits_match(saved):
    kind, tie, theta, hf, path = saved
    model = models.load_hf_checkpoint(path)
    c = model.config
    assert (c.qkv_bias, c.tie_embeddings, c.rope_theta) == (kind == "qwen2", tie, theta)
    assert (c.num_heads, c.num_kv_heads, c.head_dim) == (4, 2, 8)
    rng = np.random.default_rng(0)
    toks = rng.integers(0, 48, (3, 12))
    mask = np.ones((3, 12), np.int64)
    mask[1, :4] = 0  # a left-padded row
    pos = np.maximum(np.cumsum(mask, 1) - 1, 0)
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(toks), attention_mask=torch.tensor(mask),
                 position_ids=torch.tensor(pos)).logits.numpy()
    ours = np.asarray(jax.jit(lambda t, m: model(t, None, m))(jnp.asarray(toks),
                                                            jnp.asarray(mask)))
    keep = mask.astype(bool)
    assert np.abs(ref[keep]).max() > 1.0  # the logits are not all ~0
    np.testing.assert_allclose(ours[keep], ref[keep], atol=1e-4, rtol=1e-4)


def test_greedy_generation_matches_hf(saved):
    _, _, _, hf, path = saved
    model = models.load_hf_checkpoint(path)
    prompts = [[3, 17, 5, 9, 40], [11, 2], [7, 7, 30, 1, 22, 8, 45]]
    toks, lengths = sampling.left_pad(prompts, pad_id=0)
    mask = (np.arange(toks.shape[1])[None] >= (toks.shape[1] - lengths)[:, None])
    with torch.no_grad():
        ref = hf.generate(input_ids=torch.tensor(toks, dtype=torch.long),
                          attention_mask=torch.tensor(mask, dtype=torch.long),
                          do_sample=False, max_new_tokens=32, min_new_tokens=32,
                          pad_token_id=0).numpy()[:, toks.shape[1]:]
    out = sampling.sample(model, jax.random.key(0), toks, lengths, max_new_tokens=32,
                          greedy=True)
    assert ref.shape == (3, 32)
    np.testing.assert_array_equal(np.asarray(out.tokens), ref)
    assert len(np.unique(ref)) > 3  # a real sequence, not one repeated token
    assert np.all(np.asarray(out.lengths) == 32)


def test_unknown_architecture_and_bad_shapes_are_clear(saved, tmp_path):
    _, _, _, _, path = saved
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    with pytest.raises(ValueError, match=r"model_type='gpt2'.*supported.*llama"):
        models.config_from_hf({**cfg, "model_type": "gpt2"})
    with pytest.raises(ValueError, match="rope_type='yarn'"):
        models.config_from_hf({**cfg, "rope_parameters": {"rope_type": "yarn",
                                                          "rope_theta": 1.0}})
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in os.listdir(path):
        os.symlink(os.path.join(path, name), bad / name)
    os.remove(bad / "config.json")
    (bad / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 80}))
    with pytest.raises(ValueError, match=r"gate_proj.weight.*\(64, 32\).*\(80, 32\)"):
        models.load_hf_checkpoint(str(bad))
    with pytest.raises(ValueError, match="no config.json"):
        models.load_hf_checkpoint(str(tmp_path))
    # A tensor with no place in the model (an output bias) is an error, not silently dropped.
    config = models.config_from_hf(cfg)
    tensors = models.load_hf_state_dict(path)
    models.params_from_hf_state_dict(config, tensors)  # the checkpoint as saved loads
    extra = {**tensors, "lm_head.bias": np.zeros(cfg["vocab_size"], np.float32)}
    with pytest.raises(ValueError, match=r"tensors this model has no place for: lm_head.bias; supported"):
        models.params_from_hf_state_dict(config, extra)


def test_sequence_classifier_loads_as_scalar_head(tmp_path):
    torch.manual_seed(1)
    cfg = transformers.LlamaConfig(**{**_COMMON, "pad_token_id": 0}, num_labels=1)
    hf = transformers.LlamaForSequenceClassification(cfg).float().eval()
    hf.save_pretrained(str(tmp_path))
    model = models.load_hf_checkpoint(str(tmp_path), scalar_head=True)
    toks = np.random.default_rng(2).integers(1, 48, (2, 9))
    with torch.no_grad():
        ref = hf(input_ids=torch.tensor(toks)).logits.numpy()[:, 0]
    ours = np.asarray(jax.jit(lambda t: model.score(t))(jnp.asarray(toks)))[:, -1]
    assert np.abs(ref).max() > 1e-2
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-4)


def test_value_head_on_a_causal_lm_starts_at_zero(saved):
    _, _, _, _, path = saved
    model = models.load_hf_checkpoint(path, scalar_head=True)
    assert model.config.scalar_head
    np.testing.assert_array_equal(model.scalar_kernel[...], 0.0)
    toks = jnp.asarray([[1, 2, 3]])
    np.testing.assert_array_equal(jax.jit(lambda t: model.score(t))(toks), 0.0)
