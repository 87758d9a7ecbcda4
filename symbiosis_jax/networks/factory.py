"""Builds a policy-value network by name, as configs choose it."""

from __future__ import annotations

from typing import Any, Sequence

from flax import nnx

from symbiosis_jax.networks.mlp import MLP
from symbiosis_jax.networks.resnet import ResNet

NETWORKS = {"resnet": ResNet, "mlp": MLP}


def make_network(
    name: str, *, obs_shape: Sequence[int], num_actions: int, seed: int = 0, **kwargs: Any
) -> nnx.Module:
    """Returns the network called ``name``, initialised from ``seed``.

    Args:
        name: one of ``NETWORKS`` (``"resnet"``, ``"mlp"``).
        obs_shape: shape of one observation.
        num_actions: A, the size of the action space.
        seed: initialisation seed.
        **kwargs: the network's own keyword hyperparameters (``num_channels``, ``num_blocks``,
            ``hidden_sizes``).

    Raises:
        ValueError: for an unknown name.
    """
    if name not in NETWORKS:
        raise ValueError(f"network={name!r} is not one of {tuple(sorted(NETWORKS))}")
    return NETWORKS[name](obs_shape=tuple(obs_shape), num_actions=num_actions, rngs=nnx.Rngs(seed), **kwargs)
