"""GSPO: group sequence policy optimisation with a sequence-level importance ratio.

GSPO (Zheng et al., arXiv:2507.18071) replaces the per-token ratio by the
length-normalised sequence ratio

    s_i = (pi(y_i|x) / pi_old(y_i|x))^(1/|y_i|) = exp(1/|y_i| sum_t (logp_it - old_logp_it)),

and clips it (paper ranges 3e-4 / 4e-4):

    L = 1/G sum_i -min(s_i A_i, clip(s_i, 1-eps_low, 1+eps_high) A_i).

GSPO-token allows per-token advantages with

    s_it = sg[s_i] * pi(y_it) / sg[pi(y_it)],

whose value equals ``s_i`` and whose gradient equals GSPO's when ``A_it = A_i``.
With ``seq-mean-token-mean`` aggregation the two give the same value and
gradient for sequence advantages.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses.aggregate import safe_divide
from symbiosis_jax.losses.surrogate import (
    Metrics,
    _check_clip,
    _check_policy_args,
    check_and_mask_policy_inputs,
    policy_loss_from_log_ratio,
)


def sequence_log_ratio(
    logp: jax.Array, old_logp: jax.Array, completion_mask: jax.Array
) -> jax.Array:
    """``log s_i``: the mean over valid tokens of ``logp - old_logp``.

    Args:
        logp: ``[B, T]``.
        old_logp: ``[B, T]``.
        completion_mask: ``[B, T]``, 1 = token counts.

    Returns:
        ``[B]``; 0 for a sequence without valid tokens.
    """
    mask = completion_mask > 0
    weight = mask.astype(logp.dtype)
    diff = jnp.where(mask, logp - old_logp, 0.0)
    return safe_divide(jnp.sum(diff * weight, axis=-1), jnp.sum(weight, axis=-1))


def _gspo(
    token_level,
    logp,
    old_logp,
    advantages,
    completion_mask,
    *,
    ref_logp,
    epsilon_low,
    epsilon_high,
    beta,
    kl_estimator,
    aggregation,
):
    _check_clip(epsilon_low, epsilon_high, None)
    _check_policy_args(
        ref_logp=ref_logp,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
        norm_length=None,
        entropy_coef=0.0,
        entropy=None,
    )
    if not token_level and jnp.ndim(advantages) != 1:
        raise ValueError(
            f"advantages has shape {jnp.shape(advantages)}, expected [B] for "
            "gspo_loss (use gspo_token_loss for [B, T] advantages)"
        )
    logp, old_logp, advantages, ref_logp, _ = check_and_mask_policy_inputs(
        logp, old_logp, advantages, completion_mask, ref_logp
    )
    log_s = sequence_log_ratio(logp, old_logp, completion_mask)
    if token_level:
        log_ratio = (
            jax.lax.stop_gradient(log_s)[:, None] + logp - jax.lax.stop_gradient(logp)
        )
    else:
        log_ratio = jnp.broadcast_to(log_s[:, None], logp.shape)
    mask = completion_mask > 0
    log_ratio = jnp.where(mask, log_ratio, 0.0)
    return policy_loss_from_log_ratio(
        log_ratio,
        logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
    )


def gspo_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    epsilon_low: float = 3e-4,
    epsilon_high: float = 4e-4,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    aggregation: str = "seq-mean-token-mean",
) -> tuple[jax.Array, Metrics]:
    """GSPO loss with the sequence-level ratio (arXiv:2507.18071, eq. 5).

    Args:
        logp: ``[B, T]`` current-policy log-probs.
        old_logp: ``[B, T]`` behaviour-policy log-probs (constants).
        advantages: ``[B]`` sequence advantages (``group_advantages``).
        completion_mask: ``[B, T]``, 1 = completion token.
        ref_logp: optional ``[B, T]`` reference log-probs (required if ``beta > 0``).
        epsilon_low: lower clip range of ``s_i`` (paper: 3e-4).
        epsilon_high: upper clip range of ``s_i`` (paper: 4e-4).
        beta: per-token KL coefficient (paper: 0).
        kl_estimator: per-token KL estimator.
        aggregation: aggregation of the (per-token broadcast) sequence loss;
            ``seq-mean-token-mean`` is the paper's ``1/G sum_i``.

    Returns:
        ``(loss, metrics)`` as ``clipped_policy_loss``; ratio and clip metrics
        are of ``s_i`` weighted by tokens.
    """
    return _gspo(
        False,
        logp,
        old_logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
    )


def gspo_token_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    epsilon_low: float = 3e-4,
    epsilon_high: float = 4e-4,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    aggregation: str = "seq-mean-token-mean",
) -> tuple[jax.Array, Metrics]:
    """GSPO-token loss (arXiv:2507.18071, eq. 13): per-token advantages allowed.

        s_it = sg[s_i] * pi(y_it) / sg[pi(y_it)]

    Args:
        advantages: ``[B]`` or ``[B, T]``.
        Others: as ``gspo_loss``.

    Returns:
        ``(loss, metrics)`` as ``gspo_loss``.
    """
    return _gspo(
        True,
        logp,
        old_logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
    )
