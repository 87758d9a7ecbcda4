"""Transformer: config checks, padding, KV-cache parity, the log-prob bridge, sharding."""

import functools
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from symbiosis_jax import models

CFG = models.TransformerConfig(vocab_size=24, num_layers=2, embed_dim=32, num_heads=4,
                               num_kv_heads=2, head_dim=8, mlp_dim=48, rope_theta=500.0,
                               qkv_bias=True)


def _numpy_model(cfg, seed=0, scale=1.0):
    """A model with numpy-drawn weights: no JAX RNG compile (slow on a busy CPU).

    Norm scales are near 1; other weights are 0.02 * scale * N(0, 1). Larger
    `scale` gives peaked, context-dependent logits, so comparisons are not
    trivially met by near-uniform outputs.
    """
    graphdef, state = nnx.split(nnx.eval_shape(
        lambda: models.Transformer(cfg, rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(seed)

    def draw(path, x):
        z = rng.normal(size=x.shape).astype(np.float32)
        if "norm" in jax.tree_util.keystr(path):
            return jnp.asarray(1.0 + 0.1 * z)
        return jnp.asarray(0.02 * scale * z)

    return nnx.merge(graphdef, jax.tree_util.tree_map_with_path(draw, state))


def _model(cfg=CFG, seed=0, scale=1.0):
    return _numpy_model(cfg, seed, scale)


@nnx.jit
def _logits(model, toks, mask=None):
    return model(toks, None, mask)


@functools.partial(nnx.jit, static_argnames=("temperature", "return_entropy"))
def _logprobs(model, toks, mask, temperature=1.0, return_entropy=False):
    return models.token_logprobs(model, toks, mask, temperature=temperature,
                                 return_entropy=return_entropy)


@nnx.jit
def _score_hidden(model, toks):
    return model.score(toks), model.hidden(toks)


@nnx.jit
def _decode(model, toks, pos, cache, cache_index, kv_mask):
    hidden, cache = model.decode(toks, pos, cache, cache_index=cache_index,
                                 kv_mask_bs=kv_mask)
    return model.logits(hidden), cache


@pytest.mark.parametrize("field,value", [
    ("num_kv_heads", 3), ("head_dim", 7), ("vocab_size", 0), ("dtype", "float64"),
    ("rope_theta", -1.0), ("qkv_bias", 1),
])
def test_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        CFG.replace(**{field: value})


def test_num_params_counts_every_leaf():
    for cfg in (CFG, CFG.replace(tie_embeddings=True, scalar_head=True),
                models.tiny_config()):
        model = nnx.eval_shape(lambda: models.Transformer(cfg, rngs=nnx.Rngs(0)))
        count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model)))
        assert count == cfg.num_params
    assert models.tiny_config().num_params == 1_057_920
    assert 19e6 < models.small_config().num_params < 21e6


def test_weights_drawn_flat_equal_a_draw_of_their_shape():
    """Weights are drawn flat and reshaped (a rank-3 draw compiles in seconds on the CPU);
    the numbers are those of `0.02 * normal(key, shape)`."""
    from symbiosis_jax.models.transformer import _param

    for shape in [(16, 4, 8), (32, 64)]:
        got = _param(nnx.Rngs(5), shape, (None,) * len(shape), jnp.float32)[...]
        want = 0.02 * jax.random.normal(nnx.Rngs(5).params(), shape, jnp.float32)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_left_padding_does_not_change_logits():
    model = _model(scale=5.0)
    toks = np.array([[5, 9, 3, 7, 11]])
    padded = np.concatenate([np.zeros((1, 3), np.int64), toks], axis=1)
    mask = (np.arange(8) >= 3).astype(np.int32)[None]
    ref = _logits(model, jnp.asarray(toks), jnp.ones((1, 5), jnp.int32))
    out = _logits(model, jnp.asarray(padded), jnp.asarray(mask))
    np.testing.assert_allclose(out[:, 3:], ref, atol=1e-5, rtol=1e-5)
    # And the logits really depend on the context: a different prefix changes them.
    other = _logits(model, jnp.asarray(np.array([[6, 9, 3, 7, 11]])),
                    jnp.ones((1, 5), jnp.int32))
    assert np.abs(np.asarray(other - ref))[:, 1:].max() > 1e-2


def test_cached_decode_equals_full_forward():
    model = _model(scale=3.0)
    rng = np.random.default_rng(0)
    toks = jnp.asarray(rng.integers(0, CFG.vocab_size, (2, 7)))
    full = _logits(model, toks)
    cache = models.init_cache(CFG, 2, 7)
    kv_mask = jnp.ones((2, 7), bool)
    pos = jnp.broadcast_to(jnp.arange(7), (2, 7))
    logits, cache = _decode(model, toks[:, :4], pos[:, :4], cache, 0, kv_mask)
    steps = [logits]
    for t in range(4, 7):
        logits, cache = _decode(model, toks[:, t:t + 1], pos[:, t:t + 1], cache, t,
                                kv_mask)
        steps.append(logits)
    np.testing.assert_allclose(jnp.concatenate(steps, axis=1), full, atol=1e-5,
                               rtol=1e-5)


def _np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_token_logprobs_matches_numpy_reference(temperature):
    model = _model(scale=4.0)
    toks = np.array([[0, 0, 4, 8, 15, 16, 0], [3, 5, 7, 9, 11, 13, 17]])
    mask = np.array([[0, 0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]])
    logp, ent = _logprobs(model, jnp.asarray(toks), jnp.asarray(mask),
                          temperature=temperature, return_entropy=True)
    logits = np.asarray(_logits(model, jnp.asarray(toks), jnp.asarray(mask)),
                        np.float64) / temperature
    ls = _np_log_softmax(logits)
    want = np.zeros(toks.shape)
    want_ent = np.zeros(toks.shape)
    for b in range(2):
        for t in range(1, 7):
            if mask[b, t] and mask[b, t - 1]:
                want[b, t] = ls[b, t - 1, toks[b, t]]
                want_ent[b, t] = -(np.exp(ls[b, t - 1]) * ls[b, t - 1]).sum()
    np.testing.assert_allclose(logp, want, atol=1e-5)
    np.testing.assert_allclose(ent, want_ent, atol=1e-5)
    assert logp.shape == toks.shape and want[1, 1] < -0.01
    # Padded row 0 equals the same tokens unpadded.
    alone = _logprobs(model, jnp.asarray(toks[:1, 2:6]), jnp.ones((1, 4), jnp.int32),
                      temperature=temperature)
    np.testing.assert_allclose(logp[0, 2:6], alone[0], atol=1e-5)
    assert logp[0, 2] == 0.0 and logp[0, 6] == 0.0


def test_scalar_head_and_tied_embeddings():
    cfg = CFG.replace(tie_embeddings=True, scalar_head=True)
    model = _model(cfg)
    toks = jnp.asarray([[1, 2, 3]])
    values, h = _score_hidden(model, toks)
    assert values.shape == (1, 3)
    h = np.asarray(h, np.float64)
    np.testing.assert_allclose(values, h @ np.asarray(model.scalar_kernel[...]) +
                               float(model.scalar_bias[...]),
                               atol=1e-5)
    np.testing.assert_allclose(_logits(model, toks), h @ np.asarray(model.embed[...]).T,
                               atol=1e-5)
    with pytest.raises(ValueError, match="scalar_head"):
        _model().score(toks)


def test_sharded_forward_equals_unsharded():
    from symbiosis_jax import parallel

    assert jax.device_count() == 8
    mesh = parallel.make_mesh((("data", 4), ("fsdp", 1), ("tensor", 2)))
    model = _model(scale=3.0)
    toks = jnp.asarray(np.random.default_rng(1).integers(0, CFG.vocab_size, (8, 6)))
    mask = jnp.ones((8, 6), jnp.int32).at[:4, :2].set(0)
    graphdef, state = nnx.split(model)
    ref = _logprobs(model, toks, mask)
    ref_logits = _logits(model, toks, mask)

    shardings = parallel.state_shardings(state, mesh)
    state_sh = jax.device_put(state, shardings)
    q_sharding = state_sh["blocks"][0]["attn"]["q"].get_value().sharding
    assert q_sharding.spec[1] == "tensor"  # heads split over the tensor axis
    batch_sh = parallel.batch_sharding(mesh)
    toks_sh, mask_sh = jax.device_put((toks, mask), batch_sh)

    @jax.jit
    def fwd(state, toks, mask):
        m = nnx.merge(graphdef, state)
        return m(toks, None, mask), models.token_logprobs(m, toks, mask)

    logits, logp = fwd(state_sh, toks_sh, mask_sh)
    assert len(logits.sharding.device_set) == 8
    np.testing.assert_allclose(logits, ref_logits, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(logp, ref, atol=1e-5, rtol=1e-5)


def test_bfloat16_compute_tracks_float32():
    model32 = _model(scale=3.0)
    graphdef16, _ = nnx.split(nnx.eval_shape(
        lambda: models.Transformer(CFG.replace(dtype="bfloat16"), rngs=nnx.Rngs(0))))
    model16 = nnx.merge(graphdef16, nnx.state(model32))
    toks = jnp.asarray(np.random.default_rng(3).integers(0, CFG.vocab_size, (2, 6)))
    mask = jnp.ones((2, 6), jnp.int32)
    ref, out = _logits(model32, toks, mask), _logits(model16, toks, mask)
    assert out.dtype == jnp.float32
    err = float(jnp.abs(out - ref).max())
    assert 0 < err < 0.05 * float(jnp.abs(ref).max())
