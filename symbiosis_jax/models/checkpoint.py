"""Import of Hugging Face Llama and Qwen2 checkpoints from a local directory.

Reads `config.json` and `model.safetensors` (or the shards listed in
`model.safetensors.index.json`). Nothing is downloaded. Anything outside the
supported families (other `model_type`s, RoPE scaling, sliding windows, MLP or
output biases, activations other than SiLU) raises a `ValueError` that names
what is supported, and so does a tensor of the wrong shape.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from symbiosis_jax.models.config import TransformerConfig
from symbiosis_jax.models.transformer import Transformer

SUPPORTED_ARCHITECTURES = ("llama", "qwen2")


def _unsupported(what: str) -> ValueError:
    return ValueError(f"{what}; supported: model_type in {SUPPORTED_ARCHITECTURES} "
                      "with default RoPE, SiLU, no sliding window, no MLP/output bias")


def config_from_hf(hf_config: Mapping, *, dtype: str = "float32",
                   param_dtype: str = "float32",
                   scalar_head: bool = False) -> TransformerConfig:
    """Translates a Hugging Face `config.json` dict into a `TransformerConfig`."""
    model_type = hf_config.get("model_type")
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise _unsupported(f"model_type={model_type!r} (architectures="
                           f"{hf_config.get('architectures')}) is not supported")
    act = hf_config.get("hidden_act", "silu")
    if act != "silu":
        raise _unsupported(f"hidden_act={act!r} is not supported")
    rope = hf_config.get("rope_parameters") or hf_config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in (None, "default"):
        raise _unsupported(f"rope_type={rope_type!r} is not supported")
    theta = rope.get("rope_theta", hf_config.get("rope_theta", 10000.0))
    if model_type == "llama":
        for flag in ("attention_bias", "mlp_bias"):
            if hf_config.get(flag, False):
                raise _unsupported(f"llama with {flag}=True is not supported")
        qkv_bias = False
    else:
        if hf_config.get("use_sliding_window", False):
            raise _unsupported("qwen2 with use_sliding_window=True is not supported")
        qkv_bias = True
    num_heads = hf_config["num_attention_heads"]
    head_dim = hf_config.get("head_dim") or hf_config["hidden_size"] // num_heads
    return TransformerConfig(
        vocab_size=hf_config["vocab_size"],
        num_layers=hf_config["num_hidden_layers"],
        embed_dim=hf_config["hidden_size"],
        num_heads=num_heads,
        num_kv_heads=hf_config.get("num_key_value_heads") or num_heads,
        head_dim=head_dim,
        mlp_dim=hf_config["intermediate_size"],
        rope_theta=float(theta),
        rms_norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
        qkv_bias=qkv_bias,
        tie_embeddings=bool(hf_config.get("tie_word_embeddings", False)),
        scalar_head=scalar_head,
        dtype=dtype,
        param_dtype=param_dtype,
    )


def _to_numpy(x) -> np.ndarray:
    # bfloat16 tensors come back as jax arrays; numpy has no bfloat16 of its own.
    return np.asarray(jnp.asarray(x, jnp.float32)) if x.dtype == jnp.bfloat16 else (
        np.asarray(x))


def load_hf_state_dict(path: str) -> dict[str, np.ndarray]:
    """All tensors of the safetensors checkpoint in directory `path`."""
    from safetensors import safe_open  # local import keeps the package light

    index = os.path.join(path, "model.safetensors.index.json")
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.isfile(single):
        files = ["model.safetensors"]
    else:
        raise ValueError(f"no model.safetensors or model.safetensors.index.json in "
                         f"{path!r} (only safetensors checkpoints are supported)")
    tensors = {}
    for name in files:
        with safe_open(os.path.join(path, name), framework="flax") as f:
            for key in f.keys():
                tensors[key] = _to_numpy(f.get_tensor(key))
    return tensors


def params_from_hf_state_dict(config: TransformerConfig,
                              tensors: Mapping[str, np.ndarray]) -> dict:
    """Maps HF tensor names to ours as `{path tuple: array}` in our layouts.

    Raises:
        ValueError: a tensor missing or of the wrong shape, or tensors the model has no
            place for (e.g. an `lm_head.bias`: silently dropping one would change the
            logits).
    """
    c = config
    out = {}
    used = set()

    def get(name, shape):
        if name not in tensors:
            raise ValueError(f"tensor {name!r} missing from the checkpoint")
        used.add(name)
        x = np.asarray(tensors[name])
        if x.shape != tuple(shape):
            raise ValueError(f"tensor {name!r} has shape {x.shape}, expected "
                             f"{tuple(shape)} from config.json")
        return x

    d, h, k, e, f = c.embed_dim, c.num_heads, c.num_kv_heads, c.head_dim, c.mlp_dim
    out[("embed",)] = get("model.embed_tokens.weight", (c.vocab_size, d))
    out[("final_norm", "scale")] = get("model.norm.weight", (d,))
    # A sequence classifier (reward model) has no language-model head; with
    # scalar_head=True the LM head then keeps its random initialisation.
    if not c.tie_embeddings and not (c.scalar_head and "lm_head.weight" not in tensors):
        out[("lm_head",)] = get("lm_head.weight", (c.vocab_size, d)).T
    for i in range(c.num_layers):
        pre = f"model.layers.{i}."
        blk = ("blocks", i)
        out[blk + ("attn_norm", "scale")] = get(pre + "input_layernorm.weight", (d,))
        out[blk + ("mlp_norm", "scale")] = get(pre + "post_attention_layernorm.weight",
                                               (d,))
        att = pre + "self_attn."
        out[blk + ("attn", "q")] = get(att + "q_proj.weight", (h * e, d)).T.reshape(d, h, e)
        out[blk + ("attn", "k")] = get(att + "k_proj.weight", (k * e, d)).T.reshape(d, k, e)
        out[blk + ("attn", "v")] = get(att + "v_proj.weight", (k * e, d)).T.reshape(d, k, e)
        out[blk + ("attn", "o")] = get(att + "o_proj.weight", (d, h * e)).T.reshape(h, e, d)
        if c.qkv_bias:
            out[blk + ("attn", "q_bias")] = get(att + "q_proj.bias", (h * e,)).reshape(h, e)
            out[blk + ("attn", "k_bias")] = get(att + "k_proj.bias", (k * e,)).reshape(k, e)
            out[blk + ("attn", "v_bias")] = get(att + "v_proj.bias", (k * e,)).reshape(k, e)
        mlp = pre + "mlp."
        out[blk + ("mlp", "gate")] = get(mlp + "gate_proj.weight", (f, d)).T
        out[blk + ("mlp", "up")] = get(mlp + "up_proj.weight", (f, d)).T
        out[blk + ("mlp", "down")] = get(mlp + "down_proj.weight", (d, f)).T
    if c.scalar_head and "score.weight" in tensors:
        out[("scalar_kernel",)] = get("score.weight", (1, d))[0]
    # Recomputed buffers some checkpoints store, and a tied head saved next to its embedding.
    unused = sorted(n for n in tensors if n not in used and not n.endswith("rotary_emb.inv_freq")
                    and not (c.tie_embeddings and n == "lm_head.weight"))
    if unused:
        hint = " (a classifier's head: pass scalar_head=True)" if unused == ["score.weight"] else ""
        shown = ", ".join(unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
        raise _unsupported(f"the checkpoint has tensors this model has no place for: {shown}{hint}")
    return out


def load_hf_checkpoint(path: str, *, dtype: str = "float32",
                       param_dtype: str = "float32", scalar_head: bool = False,
                       rngs: nnx.Rngs | None = None) -> Transformer:
    """Builds a `Transformer` from a local Hugging Face Llama/Qwen2 directory.

    Args:
        path: directory with `config.json` and safetensors weights.
        dtype: compute dtype name.
        param_dtype: parameter dtype name.
        scalar_head: add a scalar head; loaded from `score.weight` when the
            checkpoint has one (a 1-label `*ForSequenceClassification`, which
            has no LM head), else initialised as below.
        rngs: initialises whatever the checkpoint lacks (the scalar head, or
            a classifier's LM head) at random; when None those are zeros (a
            common value-head start, and it avoids compiling an initialiser).

    Returns:
        The model, with `model.config` the translated config.
    """
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise ValueError(f"no config.json in {path!r}")
    with open(config_path, encoding="utf-8") as f:
        hf_config = json.load(f)
    config = config_from_hf(hf_config, dtype=dtype, param_dtype=param_dtype,
                            scalar_head=scalar_head)
    params = params_from_hf_state_dict(config, load_hf_state_dict(path))
    if rngs is not None:
        model = Transformer(config, rngs=rngs)
    else:
        model = nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0)))
    pd = jnp.dtype(param_dtype)
    for path_, value in params.items():
        node = model
        for part in path_:
            node = node[part] if isinstance(part, int) else getattr(node, part)
        node.set_value(jnp.asarray(value, pd))
    for _, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Variable) and isinstance(var.get_value(),
                                                        jax.ShapeDtypeStruct):
            var.set_value(jnp.zeros(var.get_value().shape, var.get_value().dtype))
    return model
