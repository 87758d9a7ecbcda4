"""Multi-layer perceptron policy-value network (Flax NNX), for small games."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


def check_hidden_sizes(hidden_sizes: Sequence[int], *, prefix: str = "") -> None:
    """Raises ``ValueError`` unless ``hidden_sizes`` is a non-empty sequence of positive ints."""
    if not isinstance(hidden_sizes, (tuple, list)) or not hidden_sizes or any(
            not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in hidden_sizes):
        raise ValueError(f"{prefix}hidden_sizes={hidden_sizes!r} must be a non-empty tuple of positive ints")


class MLP(nnx.Module):
    """Flattens the observation, applies a ReLU trunk, then policy and value heads.

    Attributes:
        num_actions: A, the number of policy logits.
    """

    def __init__(
        self,
        *,
        obs_shape: Sequence[int],
        num_actions: int,
        hidden_sizes: Sequence[int] = (128, 128),
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
            obs_shape: shape of one observation, e.g. ``(H, W, C)``.
            num_actions: A, the size of the action space.
            hidden_sizes: widths of the hidden layers of the trunk.
            rngs: NNX random streams for initialisation.
        """
        check_hidden_sizes(hidden_sizes)
        self.num_actions = num_actions
        sizes = [math.prod(obs_shape), *hidden_sizes]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.policy_out = nnx.Linear(sizes[-1], num_actions, rngs=rngs)
        self.value_out = nnx.Linear(sizes[-1], 1, rngs=rngs)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Evaluates a batch of observations.

        Args:
            obs: ``[B, ...]`` observations.

        Returns:
            ``(logits_ba, value_b)``: ``[B, A]`` float32 logits and ``[B]`` values in ``[-1, 1]``.
        """
        x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        for layer in self.layers:
            x = jax.nn.relu(layer(x))
        return self.policy_out(x), jnp.tanh(self.value_out(x)[:, 0])
