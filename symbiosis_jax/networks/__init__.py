"""Policy-value networks for board games (Flax NNX): a ResNet and an MLP.

Every network maps pgx observations ``[B, ...]`` to ``(logits [B, A], value [B])``,
the value being for the player to move, in ``[-1, 1]``.
"""

from symbiosis_jax.networks.factory import NETWORKS, make_network
from symbiosis_jax.networks.mlp import MLP
from symbiosis_jax.networks.resnet import ResNet

__all__ = ["MLP", "NETWORKS", "ResNet", "make_network"]
