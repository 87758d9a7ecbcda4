"""Residual policy-value network for board games (AlphaGo Zero style, Flax NNX).

The network reads a pgx observation ``[B, H, W, C]`` (booleans or floats, from the
point of view of the player to move) and returns policy logits over the game's
actions and a scalar value in ``[-1, 1]`` for the player to move.

Layer norm stands in for the batch norm of the paper (arXiv:1712.01815): it has no
running statistics, so the same pure function serves self-play and training.
"""

from __future__ import annotations

from typing import Sequence

import math

import chex
import jax
import jax.numpy as jnp
from flax import nnx

_LECUN_NORMAL = nnx.initializers.lecun_normal()


def conv_kernel_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Flax's default kernel init (LeCun normal, fan-in), drawn as a matrix and reshaped.

    Bit-identical to ``nnx.initializers.lecun_normal()(key, shape)`` for a ``[kh, kw, in,
    out]`` kernel (the fan-in is ``kh * kw * in`` either way, and threefry's bits do not
    depend on how the shape is split), but XLA on the CPU compiles a random draw of rank 4
    in seconds (8 s in a suite worker with jax 0.10.2), against well under one for rank 2.
    """
    return _LECUN_NORMAL(key, (math.prod(shape[:-1]), shape[-1]), dtype).reshape(shape)


def _conv(in_features: int, out_features: int, kernel_size, *, rngs: nnx.Rngs, **kwargs) -> nnx.Conv:
    return nnx.Conv(in_features, out_features, kernel_size, kernel_init=conv_kernel_init, rngs=rngs, **kwargs)


class _ResidualBlock(nnx.Module):
    """Two 3x3 convolutions with layer norm and a skip connection."""

    def __init__(self, num_channels: int, *, rngs: nnx.Rngs):
        self.conv1 = _conv(num_channels, num_channels, (3, 3), use_bias=False, rngs=rngs)
        self.norm1 = nnx.LayerNorm(num_channels, rngs=rngs)
        self.conv2 = _conv(num_channels, num_channels, (3, 3), use_bias=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(num_channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return jax.nn.relu(x + y)


def check_resnet_sizes(*, num_channels: int, num_blocks: int, prefix: str = "") -> None:
    """Raises ``ValueError`` unless ``num_channels >= 1`` and ``num_blocks >= 0`` are ints."""
    for name, value, low in (("num_channels", num_channels, 1), ("num_blocks", num_blocks, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{prefix}{name}={value!r} must be an int >= {low}")


class ResNet(nnx.Module):
    """Convolutional trunk of residual blocks with a policy head and a value head.

    Attributes:
        num_actions: A, the number of policy logits.
    """

    def __init__(
        self,
        *,
        obs_shape: Sequence[int],
        num_actions: int,
        num_channels: int = 64,
        num_blocks: int = 4,
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
            obs_shape: ``(H, W, C)`` of one observation.
            num_actions: A, the size of the action space.
            num_channels: width of the trunk.
            num_blocks: number of residual blocks.
            rngs: NNX random streams for initialisation.
        """
        if len(obs_shape) != 3:
            raise ValueError(f"obs_shape={tuple(obs_shape)} must be (H, W, C) for the ResNet")
        check_resnet_sizes(num_channels=num_channels, num_blocks=num_blocks)
        height, width, in_channels = obs_shape
        self.num_actions = num_actions
        self.stem = _conv(in_channels, num_channels, (3, 3), use_bias=False, rngs=rngs)
        self.stem_norm = nnx.LayerNorm(num_channels, rngs=rngs)
        self.blocks = nnx.List([_ResidualBlock(num_channels, rngs=rngs) for _ in range(num_blocks)])
        self.policy_conv = _conv(num_channels, 2, (1, 1), rngs=rngs)
        self.policy_out = nnx.Linear(height * width * 2, num_actions, rngs=rngs)
        self.value_conv = _conv(num_channels, 1, (1, 1), rngs=rngs)
        self.value_hidden = nnx.Linear(height * width, num_channels, rngs=rngs)
        self.value_out = nnx.Linear(num_channels, 1, rngs=rngs)

    def __call__(self, obs_bhwc: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Evaluates a batch of observations.

        Args:
            obs_bhwc: ``[B, H, W, C]`` observations.

        Returns:
            ``(logits_ba, value_b)``: ``[B, A]`` float32 logits and ``[B]`` values in ``[-1, 1]``.
        """
        chex.assert_rank(obs_bhwc, 4)
        x = obs_bhwc.astype(jnp.float32)
        x = jax.nn.relu(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        batch = x.shape[0]
        p = jax.nn.relu(self.policy_conv(x)).reshape(batch, -1)
        logits_ba = self.policy_out(p)
        v = jax.nn.relu(self.value_conv(x)).reshape(batch, -1)
        v = jax.nn.relu(self.value_hidden(v))
        value_b = jnp.tanh(self.value_out(v)[:, 0])
        return logits_ba, value_b
