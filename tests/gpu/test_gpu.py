"""Checks that need a GPU (marker `gpu`; excluded from the default suite, skipped without one).

Run on a GPU machine with `JAX_PLATFORMS=cuda,cpu python -m pytest -m gpu tests/gpu` (the CPU
backend stays available as the reference). `benchmarks/gpu_checks.sh` runs these with the rest
of the GPU checks.

What a GPU changes: XLA's GPU backend may compute float32 matrix products with TF32 unless the
matmul precision is "highest", and it orders reductions differently from the CPU backend. The
sampler's log-probs must still equal the bridge's (RL's importance ratios start at exactly 1),
and the GPU's logits must match the CPU's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from symbiosis_jax import models, sampling

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU backend"),
]

CFG = models.TransformerConfig(vocab_size=64, num_layers=2, embed_dim=128, num_heads=4,
                               num_kv_heads=2, head_dim=32, mlp_dim=256, qkv_bias=True)


def _model(seed=0, scale=4.0):
    """numpy-drawn weights (so CPU and GPU get the same numbers); peaked, context-dependent logits."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: models.Transformer(CFG, rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(seed)

    def draw(path, x):
        z = rng.normal(size=x.shape).astype(np.float32)
        return 1.0 + 0.1 * z if "norm" in jax.tree_util.keystr(path) else 0.02 * scale * z

    return graphdef, jax.tree_util.tree_map_with_path(draw, state)


def _on(device, graphdef, state):
    return nnx.merge(graphdef, jax.device_put(state, device))


def _sample_and_rescore(model, precision):
    """Max |sampler log-prob - bridge log-prob| over 16 rows x 32 new tokens at `precision`."""
    rng = np.random.default_rng(1)
    prompts = [list(rng.integers(1, CFG.vocab_size, n)) for n in rng.integers(3, 12, 16)]
    with jax.default_matmul_precision(precision):
        toks_p, lengths = sampling.left_pad(prompts, pad_id=0)
        out = sampling.sample(model, jax.random.key(2), toks_p, lengths, max_new_tokens=32,
                              pad_id=0, temperature=1.0)
        toks, mask = sampling.full_sequences(toks_p, lengths, out)
        logp = nnx.jit(models.token_logprobs)(model, toks, mask)
    got, want = np.asarray(out.logprobs), np.asarray(logp)[:, toks_p.shape[1]:]
    completion = np.asarray(out.completion_mask).astype(bool)
    assert completion.sum() == 16 * 32
    assert np.isfinite(got[completion]).all()
    return float(np.abs(got - want)[completion].max())


def test_sampler_logprobs_equal_bridge_at_highest_precision():
    model = _on(jax.devices("gpu")[0], *_model())
    err = _sample_and_rescore(model, "highest")
    print(f"sampler vs bridge, precision highest: max |diff| = {err:.2e}")
    assert err < 1e-5


def test_sampler_logprobs_at_default_precision_within_tf32_rounding():
    """At XLA's default precision (TF32 on Hopper) the two paths round differently.

    Recorded so a user knows what the default costs: the gap must stay within TF32 rounding
    (10-bit mantissa, ~1e-3 relative) of these O(1) log-probs, never NaN or a real mismatch.
    """
    model = _on(jax.devices("gpu")[0], *_model())
    err = _sample_and_rescore(model, "default")
    print(f"sampler vs bridge, precision default: max |diff| = {err:.2e}")
    assert err < 2e-2


def test_gpu_logits_match_cpu_backend():
    graphdef, state = _model()
    rng = np.random.default_rng(3)
    toks = jnp.asarray(rng.integers(0, CFG.vocab_size, (8, 40)), jnp.int32)
    mask = jnp.ones_like(toks)
    outs = []
    for device in (jax.devices("cpu")[0], jax.devices("gpu")[0]):
        model = _on(device, graphdef, state)
        with jax.default_matmul_precision("highest"):
            logits = nnx.jit(lambda m, t, k: m(t, None, k))(
                model, jax.device_put(toks, device), jax.device_put(mask, device))
        outs.append(np.asarray(logits, np.float64))
    cpu, gpu = outs
    rel = np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu)
    print(f"GPU vs CPU logits: relative error {rel:.2e}, max |diff| {np.abs(gpu - cpu).max():.2e}")
    assert rel < 1e-5
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
