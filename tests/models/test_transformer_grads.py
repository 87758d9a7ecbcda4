"""Gradients of the transformer: the custom SwiGLU VJP and the 2-D layout vs a plain reference."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from symbiosis_jax import models
from symbiosis_jax.models import transformer

CFG = models.TransformerConfig(vocab_size=24, num_layers=2, embed_dim=32, num_heads=4,
                               num_kv_heads=2, head_dim=8, mlp_dim=48, rope_theta=500.0,
                               qkv_bias=True)


def test_swiglu_vjp_matches_numpy_derivative():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 7)).astype(np.float32) * 3
    u = rng.normal(size=(5, 7)).astype(np.float32)
    dh = rng.normal(size=(5, 7)).astype(np.float32)
    h, vjp = jax.vjp(transformer._swiglu, jnp.asarray(g), jnp.asarray(u))
    dg, du = vjp(jnp.asarray(dh))
    s = 1.0 / (1.0 + np.exp(-g.astype(np.float64)))
    np.testing.assert_allclose(h, g * s * u, rtol=1e-5, atol=1e-6)
    # d/dg [g * sigmoid(g)] = s + g * s * (1 - s).
    np.testing.assert_allclose(dg, dh * u * (s + g * s * (1 - s)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(du, dh * g * s, rtol=1e-5, atol=1e-6)


def _reference_logits(p, tokens_bt, mask_bt, cfg):
    """A direct 3-D einsum Llama forward written independently of the model's code."""
    pos = np.maximum(np.cumsum(np.asarray(mask_bt), axis=-1) - 1, 0)
    e = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, e, 2) / e))
    ang = jnp.asarray(pos[..., None] * inv[None, None], jnp.float32)
    sin, cos = jnp.sin(ang)[:, :, None], jnp.cos(ang)[:, :, None]

    def rope(x):
        x1, x2 = x[..., : e // 2], x[..., e // 2:]
        return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def norm(x, w):
        return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + cfg.rms_norm_eps) * w[None, None]

    t = tokens_bt.shape[1]
    allowed = np.tril(np.ones((t, t), bool))[None] & (np.asarray(mask_bt)[:, None] > 0)
    g = cfg.num_heads // cfg.num_kv_heads
    x = p["embed"][tokens_bt]
    for blk in p["blocks"]:
        a = blk["attn"]
        y = norm(x, blk["attn_norm"]["scale"])
        q = rope(jnp.einsum("btd,dhe->bthe", y, a["q"]) + a["q_bias"][None, None])
        k = rope(jnp.einsum("btd,dke->btke", y, a["k"]) + a["k_bias"][None, None])
        v = jnp.einsum("btd,dke->btke", y, a["v"]) + a["v_bias"][None, None]
        k, v = jnp.repeat(k, g, axis=2), jnp.repeat(v, g, axis=2)
        s = jnp.einsum("bthe,bshe->bhts", q, k) / np.sqrt(e)
        s = jnp.where(jnp.asarray(allowed)[:, None], s, -1e30)
        o = jnp.einsum("bhts,bshe->bthe", jax.nn.softmax(s, -1), v)
        x = x + jnp.einsum("bthe,hed->btd", o, a["o"])
        m = blk["mlp"]
        y = norm(x, blk["mlp_norm"]["scale"])
        x = x + (jax.nn.silu(y @ m["gate"]) * (y @ m["up"])) @ m["down"]
    return norm(x, p["final_norm"]["scale"]) @ p["lm_head"]


def test_model_gradients_match_reference():
    model = models.Transformer(CFG, rngs=nnx.Rngs(3))
    graphdef, state = nnx.split(model)
    rng = np.random.default_rng(1)
    # Larger weights than the init so the softmax and SwiGLU are far from linear.
    state = jax.tree.map(lambda x: x * 10.0 if x.ndim > 1 else x + 0.3, state)
    tokens = jnp.asarray(rng.integers(0, CFG.vocab_size, (3, 7)), jnp.int32)
    mask = jnp.asarray([[1] * 7, [0, 0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 0]], jnp.int32)
    w = jnp.asarray(rng.normal(size=(3, 7, CFG.vocab_size)), jnp.float32)
    pos = transformer.positions_from_mask(mask)

    def ours(s):
        logits = nnx.merge(graphdef, s)(tokens, pos, mask)
        return jnp.sum(jax.nn.log_softmax(logits) * w * mask[..., None])

    def ref(s):
        p = nnx.to_pure_dict(s)
        p["blocks"] = [p["blocks"][i] for i in range(CFG.num_layers)]
        logits = _reference_logits(p, tokens, mask, CFG)
        return jnp.sum(jax.nn.log_softmax(logits) * w * mask[..., None])

    # Jitted: run op by op, the two backward passes take most of a minute.
    v1, g1 = jax.jit(jax.value_and_grad(ours))(state)
    v2, g2 = jax.jit(jax.value_and_grad(ref))(nnx.State(state))
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    g2 = nnx.to_pure_dict(g2)
    g2["blocks"] = {i: g2["blocks"][i] for i in range(CFG.num_layers)}
    flat1 = jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(g1))
    flat2 = dict(jax.tree_util.tree_leaves_with_path(g2))
    assert len(flat1) == len(flat2) == 2 + CFG.num_layers * 12 + 1
    for path, a in flat1:
        b = flat2[path]
        scale = float(np.abs(b).max())
        assert scale > 1e-3, jax.tree_util.keystr(path)
        np.testing.assert_allclose(a, b, atol=1e-4 * scale, rtol=1e-4,
                                   err_msg=jax.tree_util.keystr(path))
