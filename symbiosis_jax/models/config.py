"""Configuration of the decoder-only transformer (Llama / Qwen2 family).

The config is a frozen, hashable dataclass so it can be a static argument of
`jax.jit` and a key of compile caches. Every field is validated on construction
so a bad size fails with a clear `ValueError` before anything is traced.
"""

from __future__ import annotations

import dataclasses

_DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Sizes and options of a Llama/Qwen2-style decoder.

    Attributes:
        vocab_size: V, number of token ids.
        num_layers: number of decoder blocks.
        embed_dim: D, width of the residual stream.
        num_heads: H, number of query heads.
        num_kv_heads: K, number of key/value heads (grouped-query attention);
            must divide `num_heads`.
        head_dim: width of one attention head.
        mlp_dim: F, hidden width of the SwiGLU feed-forward block.
        rope_theta: base of the rotary position embedding frequencies.
        rms_norm_eps: epsilon inside RMSNorm.
        qkv_bias: whether the q/k/v projections have a bias (Qwen2: True).
        tie_embeddings: whether the output head reuses the input embedding.
        scalar_head: whether to add a scalar head (value or reward model).
        dtype: compute dtype name ('float32', 'bfloat16', 'float16').
        param_dtype: parameter dtype name.
    """

    vocab_size: int
    num_layers: int
    embed_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    mlp_dim: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    qkv_bias: bool = False
    tie_embeddings: bool = False
    scalar_head: bool = False
    dtype: str = "float32"
    param_dtype: str = "float32"

    def __post_init__(self):
        for name in ("vocab_size", "num_layers", "embed_dim", "num_heads",
                     "num_kv_heads", "head_dim", "mlp_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads} must divide "
                f"num_heads={self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for RoPE")
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta={self.rope_theta!r} must be > 0")
        if not self.rms_norm_eps > 0:
            raise ValueError(f"rms_norm_eps={self.rms_norm_eps!r} must be > 0")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in _DTYPES:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not one of {_DTYPES}")
        for name in ("qkv_bias", "tie_embeddings", "scalar_head"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a bool")

    @property
    def num_params(self) -> int:
        """Number of parameters (the scalar head included when enabled)."""
        d, f, v = self.embed_dim, self.mlp_dim, self.vocab_size
        q = d * self.num_heads * self.head_dim
        kv = 2 * d * self.num_kv_heads * self.head_dim
        bias = ((self.num_heads + 2 * self.num_kv_heads) * self.head_dim
                if self.qkv_bias else 0)
        block = 2 * q + kv + bias + 3 * d * f + 2 * d
        head = 0 if self.tie_embeddings else d * v
        scalar = d + 1 if self.scalar_head else 0
        return self.num_layers * block + v * d + d + head + scalar

    def replace(self, **changes) -> "TransformerConfig":
        """Returns a copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def tiny_config(vocab_size: int = 32, **overrides) -> TransformerConfig:
    """The 1.06M-parameter benchmark model (4 layers, width 128, 4 heads, F=512).

    With `vocab_size=32` and untied embeddings it has 1,057,920 parameters.

    Args:
        vocab_size: V, number of token ids.
        **overrides: other `TransformerConfig` fields, replacing the preset sizes above
            (an unknown name raises `TypeError`).

    Returns:
        The validated `TransformerConfig`.
    """
    fields = dict(vocab_size=vocab_size, num_layers=4, embed_dim=128, num_heads=4,
                  num_kv_heads=4, head_dim=32, mlp_dim=512)
    fields.update(overrides)
    return TransformerConfig(**fields)


def small_config(vocab_size: int = 32, **overrides) -> TransformerConfig:
    """A ~20M-parameter model (6 layers, width 512, 8 heads, F=1536).

    With `vocab_size=32` and untied embeddings it has 20,486,656 parameters.

    Args:
        vocab_size: V, number of token ids.
        **overrides: other `TransformerConfig` fields, replacing the preset sizes above
            (an unknown name raises `TypeError`).

    Returns:
        The validated `TransformerConfig`.
    """
    fields = dict(vocab_size=vocab_size, num_layers=6, embed_dim=512, num_heads=8,
                  num_kv_heads=8, head_dim=64, mlp_dim=1536)
    fields.update(overrides)
    return TransformerConfig(**fields)
