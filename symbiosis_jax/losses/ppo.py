"""PPO for language models: policy, value and entropy terms, KL in reward or loss.

PPO (Schulman et al., arXiv:1707.06347) as used for RLHF (Ziegler et al.,
arXiv:1909.08593; Ouyang et al., arXiv:2203.02155):

    L = L_clip + value_coef * L_V - entropy_coef * H [+ kl_coef * KL]

* ``ppo_policy_loss``: the clipped surrogate (``clipped_policy_loss`` with no KL).
* ``ppo_value_loss``: ``1/2 max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)``.
* KL to the reference either folded into per-token rewards
  (``fold_kl_into_rewards``, the k1 penalty ``-kl_coef (logp - ref_logp)``) or
  added to the loss (``ppo_loss(..., kl_coef > 0, ref_logp=...)``).
* The adaptive KL controller of Ziegler et al. (section 2.2) as a pure update
  ``adaptive_kl_update(state, observed_kl, num_steps)``.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.aggregate import AGGREGATION_MODES, aggregate, masked_mean
from symbiosis_jax.losses.kl import KL_ESTIMATORS, kl_estimate
from symbiosis_jax.losses.surrogate import Metrics, clipped_policy_loss


def ppo_policy_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    dual_clip: float | None = None,
    aggregation: str = "token-mean",
    norm_length: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """PPO's clipped policy loss (arXiv:1707.06347, eq. 7), per token then aggregated.

        L = agg_t -min(r_t A_t, clip(r_t, 1 - eps_low, 1 + eps_high) A_t)

    Args:
        logp: ``[B, T]`` current-policy log-probs.
        old_logp: ``[B, T]`` behaviour-policy log-probs (constants).
        advantages: ``[B, T]`` (e.g. ``gae_advantages``) or ``[B]``.
        completion_mask: ``[B, T]``, 1 = token counts.
        epsilon_low: lower clip range.
        epsilon_high: upper clip range.
        dual_clip: optional dual-clip constant ``c > 1`` (arXiv:1912.09729).
        aggregation: one of ``AGGREGATION_MODES``.
        norm_length: constant of ``seq-mean-token-sum-norm``.

    Returns:
        ``(loss, metrics)`` as ``clipped_policy_loss``.
    """
    return clipped_policy_loss(
        logp,
        old_logp,
        advantages,
        completion_mask,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
        aggregation=aggregation,
        norm_length=norm_length,
    )


def ppo_value_loss(
    values: jax.Array,
    old_values: jax.Array,
    returns: jax.Array,
    completion_mask: jax.Array,
    *,
    value_clip: float | None = 0.2,
    aggregation: str = "token-mean",
    norm_length: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """Clipped value loss.

        L_V = agg_t 1/2 max((V_t - R_t)^2, (V_old,t + clip(V_t - V_old,t, -c, c) - R_t)^2)

    Args:
        values: ``[B, T]`` current value predictions.
        old_values: ``[B, T]`` values at rollout time (constants).
        returns: ``[B, T]`` value targets (e.g. from ``gae_advantages``; constants).
        completion_mask: ``[B, T]``, 1 = token counts.
        value_clip: ``c > 0``, or ``None`` for the unclipped squared error.
        aggregation: one of ``AGGREGATION_MODES``.
        norm_length: constant of ``seq-mean-token-sum-norm``.

    Returns:
        ``(loss, metrics)`` with ``value_loss``, ``value_clip_fraction`` (tokens
        where the clipped branch is larger), ``value_mean``, ``return_mean``.
    """
    _checks.check_choice("aggregation", aggregation, AGGREGATION_MODES)
    if value_clip is not None:
        _checks.check_positive("value_clip", value_clip)
    _checks.check_shapes(
        values=(values, "BT"),
        old_values=(old_values, "BT"),
        returns=(returns, "BT"),
        completion_mask=(completion_mask, "BT"),
    )
    mask = completion_mask > 0
    values = jnp.where(mask, values, 0.0)
    old_values = jax.lax.stop_gradient(jnp.where(mask, old_values, 0.0))
    returns = jax.lax.stop_gradient(jnp.where(mask, returns, 0.0))
    unclipped = jnp.square(values - returns)
    if value_clip is None:
        per_token = 0.5 * unclipped
        clipped_more = jnp.zeros(values.shape, dtype=bool)
    else:
        clipped_values = old_values + jnp.clip(values - old_values, -value_clip, value_clip)
        clipped = jnp.square(clipped_values - returns)
        per_token = 0.5 * jnp.maximum(unclipped, clipped)
        clipped_more = clipped > unclipped
    loss = aggregate(per_token, completion_mask, mode=aggregation, norm_length=norm_length)
    metrics = dict(
        value_loss=loss,
        value_clip_fraction=masked_mean(clipped_more.astype(values.dtype), mask),
        value_mean=masked_mean(values, mask),
        return_mean=masked_mean(returns, mask),
    )
    return loss, jax.tree.map(jax.lax.stop_gradient, metrics)


def ppo_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    values: jax.Array | None = None,
    old_values: jax.Array | None = None,
    returns: jax.Array | None = None,
    entropy: jax.Array | None = None,
    ref_logp: jax.Array | None = None,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    dual_clip: float | None = None,
    value_clip: float | None = 0.2,
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    aggregation: str = "token-mean",
    norm_length: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """Full PPO objective (arXiv:1707.06347, eq. 9) with optional KL-in-loss.

        L = agg_t[ l_clip,t + kl_coef KL_t - entropy_coef H_t ] + value_coef L_V

    Args:
        logp, old_logp, advantages, completion_mask: as ``ppo_policy_loss``.
        values, old_values, returns: ``[B, T]`` for the value term; all three or
            none (then there is no value term).
        entropy: ``[B, T]`` per-token entropy; required if ``entropy_coef != 0``.
        ref_logp: ``[B, T]``; required if ``kl_coef > 0`` (KL in the loss). For
            the KL-in-reward form use ``fold_kl_into_rewards`` and keep 0 here.
        epsilon_low, epsilon_high, dual_clip: policy clipping.
        value_clip: value clip range or ``None``.
        value_coef: weight of the value loss, >= 0.
        entropy_coef: weight of the entropy bonus.
        kl_coef: weight of the KL term in the loss, >= 0 (may be a traced
            array from ``KLControllerState``).
        kl_estimator: per-token KL estimator.
        aggregation, norm_length: aggregation of all per-token terms.

    Returns:
        ``(loss, metrics)``: the metrics of ``clipped_policy_loss`` with its ``loss``
        renamed ``policy_loss``, the value metrics of ``ppo_value_loss`` when values
        are given, and ``loss``, the total.
    """
    _checks.check_nonnegative("value_coef", value_coef)
    _checks.check_nonnegative("kl_coef", kl_coef)
    if ref_logp is None and not (_checks.is_concrete_number(kl_coef) and kl_coef == 0):
        raise ValueError(f"ref_logp is required when kl_coef={kl_coef!r} is not 0")
    given = [x is not None for x in (values, old_values, returns)]
    if any(given) and not all(given):
        raise ValueError("values, old_values and returns must be given together or not at all")
    loss, metrics = clipped_policy_loss(
        logp,
        old_logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        entropy=entropy,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
        beta=kl_coef,
        kl_estimator=kl_estimator,
        entropy_coef=entropy_coef,
        aggregation=aggregation,
        norm_length=norm_length,
    )
    metrics = dict(metrics)
    metrics["policy_loss"] = metrics.pop("loss")
    if all(given):
        value_loss, value_metrics = ppo_value_loss(
            values,
            old_values,
            returns,
            completion_mask,
            value_clip=value_clip,
            aggregation=aggregation,
            norm_length=norm_length,
        )
        loss = loss + value_coef * value_loss
        metrics.update(value_metrics)
    metrics["loss"] = jax.lax.stop_gradient(loss)
    return loss, metrics


def fold_kl_into_rewards(
    scores: jax.Array,
    logp: jax.Array,
    ref_logp: jax.Array,
    completion_mask: jax.Array,
    *,
    kl_coef: float | jax.Array,
    kl_estimator: str = "k1",
) -> jax.Array:
    """Per-token rewards with the KL penalty folded in (Ziegler et al., arXiv:1909.08593).

        R_t = -kl_coef * KL_t + [t is the last valid token] * score

    with ``KL_t = logp_t - ref_logp_t`` (k1) by default. Feed the result to
    ``gae_advantages``.

    Args:
        scores: ``[B]`` sequence-level scores (reward model or verifier).
        logp: ``[B, T]`` rollout-policy log-probs (constants).
        ref_logp: ``[B, T]`` reference log-probs.
        completion_mask: ``[B, T]``, 1 = completion token.
        kl_coef: KL coefficient, >= 0 (may be an array).
        kl_estimator: one of ``KL_ESTIMATORS`` (default k1 as in the paper).

    Returns:
        ``[B, T]`` rewards, 0 under the mask. A row with no valid token gets no score.
    """
    _checks.check_nonnegative("kl_coef", kl_coef)
    _checks.check_choice("kl_estimator", kl_estimator, KL_ESTIMATORS)
    _checks.check_shapes(
        scores=(scores, "B"),
        logp=(logp, "BT"),
        ref_logp=(ref_logp, "BT"),
        completion_mask=(completion_mask, "BT"),
    )
    mask = completion_mask > 0
    logp = jnp.where(mask, logp, 0.0)
    ref_logp = jnp.where(mask, ref_logp, 0.0)
    kl = kl_estimate(logp, ref_logp, estimator=kl_estimator)
    num_steps = logp.shape[1]
    positions = jnp.arange(num_steps)[None, :]
    last = jnp.max(jnp.where(mask, positions, -1), axis=1)
    is_last = positions == last[:, None]
    rewards = -kl_coef * kl + jnp.where(is_last, scores[:, None], 0.0)
    return jax.lax.stop_gradient(jnp.where(mask, rewards, 0.0))


@flax.struct.dataclass
class KLControllerState:
    """State of the adaptive KL controller.

    Attributes:
        kl_coef: ``[]`` current KL coefficient.
    """

    kl_coef: jax.Array


def init_kl_controller(kl_coef: float) -> KLControllerState:
    """Initial controller state with coefficient ``kl_coef >= 0``."""
    _checks.check_nonnegative("kl_coef", kl_coef)
    return KLControllerState(kl_coef=jnp.asarray(kl_coef, jnp.float32))


def adaptive_kl_update(
    state: KLControllerState,
    observed_kl: jax.Array,
    num_steps: int | jax.Array,
    *,
    target_kl: float = 6.0,
    horizon: float = 10000.0,
) -> KLControllerState:
    """Ziegler et al.'s proportional KL controller (arXiv:1909.08593, sec. 2.2).

        e = clip(KL / KL_target - 1, -0.2, 0.2),   beta <- beta (1 + e n / horizon)

    Args:
        state: current ``KLControllerState``.
        observed_kl: ``[]`` measured KL (per sequence, summed over tokens).
        num_steps: ``n``, the number of samples (or steps) since the last update.
        target_kl: ``KL_target`` > 0 (paper: 6 nats for style tasks).
        horizon: ``K_beta`` > 0 (paper: 10000).

    Returns:
        The updated state.
    """
    _checks.check_positive("target_kl", target_kl)
    _checks.check_positive("horizon", horizon)
    error = jnp.clip(observed_kl / target_kl - 1.0, -0.2, 0.2)
    return KLControllerState(kl_coef=state.kl_coef * (1.0 + error * num_steps / horizon))
