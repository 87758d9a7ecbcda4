"""Decoder-only transformer in Flax NNX, compatible with Llama and Qwen2.

RMSNorm, rotary position embeddings (HF "rotate half" layout), grouped-query
attention, SwiGLU feed-forward, optional q/k/v bias, tied or untied output
embeddings, and an optional scalar head.

Every parameter carries logical axis names in its `out_sharding` metadata
(`embed`, `mlp`, `heads`, `kv_heads`, `head_dim`, `vocab`); a rules table (see
`symbiosis_jax.parallel`) maps them to mesh axes, e.g. via
`nnx.get_partition_spec(state)` under `flax.core.spmd.logical_axis_rules`. The
annotation is metadata only (`eager_sharding=False`), so a model can be built
without a mesh.

Dimension letters: B batch, T tokens (queries), S cache slots (keys), V vocab,
D embed, H query heads, K kv heads, G = H / K query heads per kv head, E head
width, F feed-forward width, L layers.
"""

from __future__ import annotations

import math

import chex
import flax
import jax
import jax.numpy as jnp
from flax import nnx

from symbiosis_jax.models.config import TransformerConfig

# Added to the logits of masked keys. Finite, so a query with no visible key
# (a left-padding slot) yields a uniform softmax rather than NaN.
_MASK_VALUE = -1e30


@flax.struct.dataclass
class KVCache:
    """Keys and values of all layers, preallocated for the whole sequence.

    One buffer per layer (rather than one stacked `[L, ...]` array) so that a
    decode loop updates each buffer in place instead of copying the cache.

    Attributes:
        k: L arrays `[B, K, S, E]` of rotated keys.
        v: L arrays `[B, K, S, E]` of values.
    """

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]


def init_cache(config: TransformerConfig, batch_size: int, num_slots: int) -> KVCache:
    """Returns a zero cache of `num_slots` slots for `batch_size` rows.

    Args:
        config: the model's config; gives L (`num_layers`), K (`num_kv_heads`), E
            (`head_dim`) and the cache dtype (`dtype`, the compute dtype).
        batch_size: B, number of rows (sequences).
        num_slots: S, number of cache slots per row (prompt plus generated tokens).

    Returns:
        A `KVCache` of L zero key and L zero value buffers, each `[B, K, S, E]`.
    """
    shape = (batch_size, config.num_kv_heads, num_slots, config.head_dim)
    dtype = jnp.dtype(config.dtype)
    zeros = tuple(jnp.zeros(shape, dtype) for _ in range(config.num_layers))
    return KVCache(k=zeros, v=tuple(jnp.zeros(shape, dtype) for _ in zeros))


def positions_from_mask(attention_mask_bt: jax.Array) -> jax.Array:
    """Position ids counting only real tokens: `[B, T]` int32, 0 on left padding.

    Args:
        attention_mask_bt: `[B, T]`, 1 for real tokens, 0 for padding.

    Returns:
        `[B, T]` int32, `cumsum(mask) - 1` clipped at 0, so a left-padded row
        gets the same positions as its unpadded version.
    """
    pos = jnp.cumsum(attention_mask_bt.astype(jnp.int32), axis=-1) - 1
    return jnp.maximum(pos, 0)


def _param(rngs: nnx.Rngs, shape, axes, dtype, init: str = "normal") -> nnx.Param:
    if init == "normal":
        # Drawn flat and reshaped: the same bits as a draw of `shape` (threefry numbers the
        # elements in row-major order), but XLA on the CPU compiles a rank-3 draw in seconds.
        value = 0.02 * jax.random.normal(rngs.params(), (math.prod(shape),), dtype).reshape(shape)
    elif init == "ones":
        value = jnp.ones(shape, dtype)
    else:
        value = jnp.zeros(shape, dtype)
    return nnx.Param(value, out_sharding=axes, eager_sharding=False)


def _rms_norm(x: jax.Array, scale: jax.Array, eps: float) -> jax.Array:
    x32 = x.astype(jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = x32 * jax.lax.rsqrt(var + eps)
    scale = scale.astype(jnp.float32).reshape((1,) * (x.ndim - 1) + (-1,))
    return (y * scale).astype(x.dtype)


def rope_angles(positions_bt: jax.Array, head_dim: int, theta: float):
    """`(sin, cos)`, each `[B, T, 1, E/2]` float32, shared by all layers."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    angles = positions_bt.astype(jnp.float32)[..., None] * inv_freq[None, None]
    return jnp.sin(angles)[:, :, None, :], jnp.cos(angles)[:, :, None, :]


def _rope_tables(sin_cos):
    """Full-width `(sin, cos)` `[B, T, 1, E]` for `_rope`, built once per forward.

    The sine carries the sign of the rotation (`-sin` on the first half), so
    `_rope` is two multiplies and an add, with no per-layer concatenation of
    the angles.
    """
    sin, cos = sin_cos
    return (jnp.concatenate([-sin, sin], axis=-1),
            jnp.concatenate([cos, cos], axis=-1))


def _rope(x_bthe: jax.Array, tables) -> jax.Array:
    """Rotates `[B, T, H, E]` by position, HF Llama "rotate half" layout.

    Args:
        x_bthe: `[B, T, H, E]` queries or keys.
        tables: `_rope_tables(rope_angles(...))`.
    """
    sin, cos = tables
    e = x_bthe.shape[-1]
    x = x_bthe.astype(jnp.float32)
    swapped = jnp.concatenate([x[..., e // 2:], x[..., : e // 2]], axis=-1)
    return (x * cos + swapped * sin).astype(x_bthe.dtype)


class RMSNorm(nnx.Module):
    """Root-mean-square normalisation with a learned scale `[D]`."""

    def __init__(self, dim: int, *, eps: float, dtype, rngs: nnx.Rngs):
        self.eps = eps
        self.scale = _param(rngs, (dim,), ("embed",), dtype, "ones")

    def __call__(self, x: jax.Array) -> jax.Array:
        return _rms_norm(x, self.scale[...], self.eps)


class Attention(nnx.Module):
    """Grouped-query self-attention with RoPE and an optional KV cache."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        c = config
        pd = jnp.dtype(c.param_dtype)
        self.config = c
        self.q = _param(rngs, (c.embed_dim, c.num_heads, c.head_dim),
                        ("embed", "heads", "head_dim"), pd)
        self.k = _param(rngs, (c.embed_dim, c.num_kv_heads, c.head_dim),
                        ("embed", "kv_heads", "head_dim"), pd)
        self.v = _param(rngs, (c.embed_dim, c.num_kv_heads, c.head_dim),
                        ("embed", "kv_heads", "head_dim"), pd)
        self.o = _param(rngs, (c.num_heads, c.head_dim, c.embed_dim),
                        ("heads", "head_dim", "embed"), pd)
        if c.qkv_bias:
            self.q_bias = _param(rngs, (c.num_heads, c.head_dim),
                                 ("heads", "head_dim"), pd, "zeros")
            self.k_bias = _param(rngs, (c.num_kv_heads, c.head_dim),
                                 ("kv_heads", "head_dim"), pd, "zeros")
            self.v_bias = _param(rngs, (c.num_kv_heads, c.head_dim),
                                 ("kv_heads", "head_dim"), pd, "zeros")

    def __call__(self, x_btd, sin_cos, key_mask_bts, kv=None, cache_index=None):
        """Attention of `x_btd` over itself or over a cache.

        Args:
            x_btd: `[B, T, D]` normalised inputs.
            sin_cos: `rope_angles(positions_bt, ...)` of the queries.
            key_mask_bts: `[B, T, S]` bool, True where query t may see key s.
            kv: optional `(k_bkse, v_bkse)` cache of this layer; the new keys
                and values are written at slots `cache_index .. cache_index+T-1`.
            cache_index: scalar int slot of the first query when `kv` is given.

        Returns:
            `(out_btd, kv)` with the updated cache (or None).
        """
        c = self.config
        dt = jnp.dtype(c.dtype)
        b, t, d = x_btd.shape
        h, kh, e = c.num_heads, c.num_kv_heads, c.head_dim
        # Projections as 2-D matmuls over the flattened tokens: XLA's CPU
        # backward of the 3-D einsums transposes far more.
        x = x_btd.astype(dt).reshape(b * t, d)
        q = (x @ self.q[...].astype(dt).reshape(d, h * e)).reshape(b, t, h, e)
        k = (x @ self.k[...].astype(dt).reshape(d, kh * e)).reshape(b, t, kh, e)
        v = (x @ self.v[...].astype(dt).reshape(d, kh * e)).reshape(b, t, kh, e)
        if c.qkv_bias:
            q = q + self.q_bias[...].astype(dt)[None, None]
            k = k + self.k_bias[...].astype(dt)[None, None]
            v = v + self.v_bias[...].astype(dt)[None, None]
        q = _rope(q, sin_cos)
        k = _rope(k, sin_cos)
        # Heads-major [B, K, S, E]: the attention dots then batch over (B, K)
        # without transposing the whole cache at every decode step.
        k = jnp.transpose(k, (0, 2, 1, 3))
        v = jnp.transpose(v, (0, 2, 1, 3))
        if kv is not None:
            k_cache, v_cache = kv
            start = (0, 0, cache_index, 0)
            k = jax.lax.dynamic_update_slice(k_cache, k.astype(k_cache.dtype), start)
            v = jax.lax.dynamic_update_slice(v_cache, v.astype(v_cache.dtype), start)
            kv = (k, v)
        g = c.num_heads // c.num_kv_heads
        q = q.reshape(b, t, c.num_kv_heads, g, c.head_dim)
        scores = jnp.einsum("btkge,bkse->bkgts", q, k.astype(dt)).astype(jnp.float32)
        scores = scores * (c.head_dim ** -0.5)
        scores = jnp.where(key_mask_bts[:, None, None], scores, _MASK_VALUE)
        probs = jax.nn.softmax(scores, axis=-1).astype(dt)
        out = jnp.einsum("bkgts,bkse->btkge", probs, v.astype(dt))
        out = out.reshape(b * t, h * e) @ self.o[...].astype(dt).reshape(h * e, d)
        return out.reshape(b, t, d), kv


@jax.custom_vjp
def _swiglu(gate_nf: jax.Array, up_nf: jax.Array) -> jax.Array:
    """`silu(gate) * up`, elementwise on `[N, F]`."""
    return gate_nf * jax.nn.sigmoid(gate_nf) * up_nf


def _swiglu_fwd(gate_nf, up_nf):
    return _swiglu(gate_nf, up_nf), (gate_nf, up_nf)


def _swiglu_bwd(res, dh_nf):
    # One fused elementwise pass per cotangent; autodiff of `jax.nn.silu`
    # leaves a chain of separate multiply/divide/add kernels on XLA's CPU.
    gate_nf, up_nf = res
    sig = jax.nn.sigmoid(gate_nf)
    silu = gate_nf * sig
    return dh_nf * up_nf * (sig + silu * (1.0 - sig)), dh_nf * silu


_swiglu.defvjp(_swiglu_fwd, _swiglu_bwd)


class MLP(nnx.Module):
    """SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        pd = jnp.dtype(config.param_dtype)
        d, f = config.embed_dim, config.mlp_dim
        self.dtype = jnp.dtype(config.dtype)
        self.gate = _param(rngs, (d, f), ("embed", "mlp"), pd)
        self.up = _param(rngs, (d, f), ("embed", "mlp"), pd)
        self.down = _param(rngs, (f, d), ("mlp", "embed"), pd)

    def __call__(self, x_btd):
        dt = self.dtype
        b, t, d = x_btd.shape
        x = x_btd.astype(dt).reshape(b * t, d)
        h = _swiglu(x @ self.gate[...].astype(dt), x @ self.up[...].astype(dt))
        return (h @ self.down[...].astype(dt)).reshape(b, t, d)


class Block(nnx.Module):
    """Pre-norm decoder block: attention then SwiGLU, each with a residual."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        pd = jnp.dtype(config.param_dtype)
        self.attn_norm = RMSNorm(config.embed_dim, eps=config.rms_norm_eps, dtype=pd,
                                 rngs=rngs)
        self.attn = Attention(config, rngs=rngs)
        self.mlp_norm = RMSNorm(config.embed_dim, eps=config.rms_norm_eps, dtype=pd,
                                rngs=rngs)
        self.mlp = MLP(config, rngs=rngs)

    def __call__(self, x_btd, sin_cos, key_mask_bts, kv=None, cache_index=None):
        h, kv = self.attn(self.attn_norm(x_btd), sin_cos, key_mask_bts, kv,
                          cache_index)
        x_btd = x_btd + h
        x_btd = x_btd + self.mlp(self.mlp_norm(x_btd))
        return x_btd, kv


class Transformer(nnx.Module):
    """Llama/Qwen2-style decoder-only language model.

    Usage:
        model = Transformer(config, rngs=nnx.Rngs(0))
        logits_btv = model(tokens_bt, positions_bt, attention_mask_bt)
    """

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, TransformerConfig):
            raise ValueError(f"config must be a TransformerConfig, got {type(config)}")
        c = config
        pd = jnp.dtype(c.param_dtype)
        self.config = c
        self.embed = _param(rngs, (c.vocab_size, c.embed_dim), ("vocab", "embed"), pd)
        self.blocks = nnx.List([Block(c, rngs=rngs) for _ in range(c.num_layers)])
        self.final_norm = RMSNorm(c.embed_dim, eps=c.rms_norm_eps, dtype=pd, rngs=rngs)
        if not c.tie_embeddings:
            self.lm_head = _param(rngs, (c.embed_dim, c.vocab_size), ("embed", "vocab"),
                                  pd)
        if c.scalar_head:
            self.scalar_kernel = _param(rngs, (c.embed_dim,), ("embed",), pd)
            self.scalar_bias = _param(rngs, (), (), pd, "zeros")

    # -- full-sequence forward ---------------------------------------------------

    def hidden(self, tokens_bt, positions_bt=None, attention_mask_bt=None) -> jax.Array:
        """Final normalised hidden states `[B, T, D]`.

        Args:
            tokens_bt: `[B, T]` int token ids.
            positions_bt: `[B, T]` int positions; default `positions_from_mask`.
            attention_mask_bt: `[B, T]`, 1 for real tokens (default all ones).
                Query t sees key s iff `s <= t` and `attention_mask_bt[s] == 1`.
        """
        chex.assert_rank(tokens_bt, 2)
        if attention_mask_bt is None:
            attention_mask_bt = jnp.ones(tokens_bt.shape, jnp.int32)
        chex.assert_equal_shape([tokens_bt, attention_mask_bt])
        if positions_bt is None:
            positions_bt = positions_from_mask(attention_mask_bt)
        chex.assert_equal_shape([tokens_bt, positions_bt])
        t = tokens_bt.shape[1]
        causal_ts = jnp.tril(jnp.ones((t, t), jnp.bool_))
        key_mask = causal_ts[None] & (attention_mask_bt[:, None, :] > 0)
        x = self._embed(tokens_bt)
        sin_cos = _rope_tables(
            rope_angles(positions_bt, self.config.head_dim, self.config.rope_theta))
        for block in self.blocks:
            x, _ = block(x, sin_cos, key_mask)
        return self.final_norm(x)

    def __call__(self, tokens_bt, positions_bt=None, attention_mask_bt=None):
        """Next-token logits `[B, T, V]` (float32); see `hidden` for the args."""
        return self.logits(self.hidden(tokens_bt, positions_bt, attention_mask_bt))

    def score(self, tokens_bt, positions_bt=None, attention_mask_bt=None):
        """Scalar head output `[B, T]` (float32), e.g. values or rewards."""
        if not self.config.scalar_head:
            raise ValueError("score() needs a config with scalar_head=True")
        h = self.hidden(tokens_bt, positions_bt, attention_mask_bt).astype(jnp.float32)
        return h @ self.scalar_kernel[...].astype(jnp.float32) + self.scalar_bias[...]

    # -- pieces shared with the sampler -----------------------------------------

    def _embed(self, tokens_bt):
        return self.embed[...].astype(jnp.dtype(self.config.dtype))[tokens_bt]

    def logits(self, hidden_xd: jax.Array) -> jax.Array:
        """Projects hidden states `[..., D]` to float32 logits `[..., V]`."""
        dt = jnp.dtype(self.config.dtype)
        if self.config.tie_embeddings:
            w = self.embed[...].astype(dt).T
        else:
            w = self.lm_head[...].astype(dt)
        return (hidden_xd.astype(dt) @ w).astype(jnp.float32)

    def decode(self, tokens_bt, positions_bt, cache: KVCache, *, cache_index,
               kv_mask_bs) -> tuple[jax.Array, KVCache]:
        """Runs `tokens_bt` through the model, reading and writing a KV cache.

        Args:
            tokens_bt: `[B, T]` new tokens; they occupy cache slots
                `cache_index .. cache_index + T - 1`.
            positions_bt: `[B, T]` RoPE positions of the new tokens.
            cache: `KVCache` with S slots.
            cache_index: scalar int, slot of the first new token (may be traced).
            kv_mask_bs: `[B, S]` bool, True where a slot holds a real token
                (False for padding); causality is applied on top.

        Returns:
            `(hidden_btd, cache)`: final normalised hidden states and the cache
            with the new keys and values written.
        """
        chex.assert_rank([tokens_bt, positions_bt, kv_mask_bs], 2)
        t = tokens_bt.shape[1]
        s = cache.k[0].shape[2]
        query_slot = cache_index + jnp.arange(t)
        causal_ts = jnp.arange(s)[None, :] <= query_slot[:, None]
        key_mask = causal_ts[None] & kv_mask_bs[:, None, :]
        x = self._embed(tokens_bt)
        sin_cos = _rope_tables(
            rope_angles(positions_bt, self.config.head_dim, self.config.rope_theta))
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            x, (k, v) = block(x, sin_cos, key_mask, (cache.k[i], cache.v[i]),
                              cache_index)
            ks.append(k)
            vs.append(v)
        return self.final_norm(x), KVCache(k=tuple(ks), v=tuple(vs))
