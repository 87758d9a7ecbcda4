"""Bradley-Terry reward-model loss.

Christiano et al., arXiv:1706.03741; Ouyang et al., arXiv:2203.02155:

    L = mean_b -log sigmoid(r_w - r_l - m_b) + c * mean_b (r_w + r_l)^2

with an optional per-pair margin ``m`` (Llama 2, arXiv:2307.09288) and the
reward-centring term of Eisenstein et al. (arXiv:2312.09244), as TRL's
``RewardTrainer`` (``center_rewards_coefficient``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.surrogate import Metrics


def bradley_terry_loss(
    chosen_rewards: jax.Array,
    rejected_rewards: jax.Array,
    *,
    margin: jax.Array | None = None,
    center_rewards_coef: float = 0.0,
) -> tuple[jax.Array, Metrics]:
    """Pairwise Bradley-Terry loss for a scalar reward model.

    Args:
        chosen_rewards: ``[B]`` rewards of the preferred responses.
        rejected_rewards: ``[B]`` rewards of the other responses.
        margin: ``[B]`` required margins, or ``None`` for 0.
        center_rewards_coef: weight ``c >= 0`` of ``mean (r_w + r_l)^2``.

    Returns:
        ``(loss, metrics)``: metrics ``loss``, ``bt_loss``, ``accuracy``
        (``r_w > r_l``), ``reward_margin``, ``rewards_chosen``,
        ``rewards_rejected``.
    """
    _checks.check_nonnegative("center_rewards_coef", center_rewards_coef)
    _checks.check_shapes(
        chosen_rewards=(chosen_rewards, "B"),
        rejected_rewards=(rejected_rewards, "B"),
        margin=None if margin is None else (margin, "B"),
    )
    diff = chosen_rewards - rejected_rewards
    shifted = diff if margin is None else diff - jax.lax.stop_gradient(margin)
    bt_loss = jnp.mean(-jax.nn.log_sigmoid(shifted))
    loss = bt_loss
    if not (_checks.is_concrete_number(center_rewards_coef) and center_rewards_coef == 0):
        loss = loss + center_rewards_coef * jnp.mean(jnp.square(chosen_rewards + rejected_rewards))
    metrics = dict(
        loss=loss,
        bt_loss=bt_loss,
        accuracy=jnp.mean((diff > 0).astype(diff.dtype)),
        reward_margin=jnp.mean(diff),
        rewards_chosen=jnp.mean(chosen_rewards),
        rewards_rejected=jnp.mean(rejected_rewards),
    )
    return loss, jax.tree.map(jax.lax.stop_gradient, metrics)
