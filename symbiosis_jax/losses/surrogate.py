"""The clipped importance-sampling surrogate and the policy loss built on it.

PPO's clipped surrogate (Schulman et al., arXiv:1707.06347) per token, with
separate lower and upper clip ranges (DAPO's clip-higher, arXiv:2503.14476) and
an optional dual clip for negative advantages (Ye et al., arXiv:1912.09729):

    l_t = max(-A_t r_t, -A_t clip(r_t, 1 - eps_low, 1 + eps_high))
    l_t = min(l_t, -c A_t)            if dual_clip = c > 1 and A_t < 0

``clipped_policy_loss`` adds the per-token KL to a reference (``beta`` times a
``kl_estimate``, outside the clip as in GRPO) and an entropy bonus, and reduces
with an aggregation mode. PPO, GRPO, DAPO, Dr. GRPO and GSPO are thin wrappers
around it with their defaults.
"""

from __future__ import annotations

from typing import Mapping

import flax
import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.aggregate import AGGREGATION_MODES, aggregate, masked_mean
from symbiosis_jax.losses.kl import KL_ESTIMATORS, kl_estimate

Metrics = Mapping[str, jax.Array]


@flax.struct.dataclass
class SurrogateTerms:
    """Per-token pieces of the clipped surrogate.

    Attributes:
        loss: ``[B, T]`` per-token surrogate loss (to be minimised).
        ratio: ``[B, T]`` importance ratio ``pi / pi_old``.
        clipped_low: ``[B, T]`` bool, the lower clip is active (``r < 1 - eps_low``
            and ``A < 0``: the token gets no gradient).
        clipped_high: ``[B, T]`` bool, the upper clip is active (``r > 1 + eps_high``
            and ``A > 0``).
        clipped_dual: ``[B, T]`` bool, the dual clip is active (``A < 0`` and
            ``r > c``); all False without a dual clip.
    """

    loss: jax.Array
    ratio: jax.Array
    clipped_low: jax.Array
    clipped_high: jax.Array
    clipped_dual: jax.Array


def _check_clip(epsilon_low, epsilon_high, dual_clip) -> None:
    _checks.check_positive("epsilon_low", epsilon_low)
    _checks.check_positive("epsilon_high", epsilon_high)
    if _checks.is_concrete_number(epsilon_low) and epsilon_low >= 1:
        raise ValueError(f"epsilon_low={epsilon_low!r} must be in (0, 1)")
    if dual_clip is not None:
        _checks.check_greater("dual_clip", dual_clip, 1.0)


def clipped_surrogate(
    log_ratio: jax.Array,
    advantages: jax.Array,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    dual_clip: float | None = None,
) -> SurrogateTerms:
    """Per-token clipped surrogate loss (see the module docstring).

    Args:
        log_ratio: ``[B, T]`` ``log pi(y_t) - log pi_old(y_t)``.
        advantages: ``[B, T]`` advantages.
        epsilon_low: lower clip range, ratio floor ``1 - epsilon_low``; in (0, 1).
        epsilon_high: upper clip range, ratio ceiling ``1 + epsilon_high``; > 0.
        dual_clip: constant ``c > 1`` bounding the loss of negative-advantage
            tokens by ``-c A``; ``None`` disables it.

    Returns:
        A ``SurrogateTerms`` with ``[B, T]`` fields.
    """
    _check_clip(epsilon_low, epsilon_high, dual_clip)
    _checks.check_shapes(log_ratio=(log_ratio, "BT"), advantages=(advantages, "BT"))
    ratio = jnp.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * jnp.clip(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    loss = jnp.maximum(unclipped, clipped)
    negative = advantages < 0
    if dual_clip is not None:
        dual = -advantages * dual_clip
        clipped_dual = negative & (loss > dual)
        loss = jnp.where(negative, jnp.minimum(loss, dual), loss)
    else:
        clipped_dual = jnp.zeros(ratio.shape, dtype=bool)
    return SurrogateTerms(
        loss=loss,
        ratio=ratio,
        clipped_low=(ratio < 1.0 - epsilon_low) & negative,
        clipped_high=(ratio > 1.0 + epsilon_high) & (advantages > 0),
        clipped_dual=clipped_dual,
    )


def broadcast_advantages(advantages: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """``[B]`` sequence advantages to ``[B, T]`` tokens; ``[B, T]`` passes through."""
    if advantages.ndim == 1:
        return jnp.broadcast_to(advantages[:, None], shape)
    return advantages


def _check_policy_args(
    *, ref_logp, beta, kl_estimator, aggregation, norm_length, entropy_coef, entropy
) -> None:
    _checks.check_nonnegative("beta", beta)
    _checks.check_choice("kl_estimator", kl_estimator, KL_ESTIMATORS)
    _checks.check_choice("aggregation", aggregation, AGGREGATION_MODES)
    if norm_length is not None:
        _checks.check_positive("norm_length", norm_length)
    if ref_logp is None and not (_checks.is_concrete_number(beta) and beta == 0):
        raise ValueError(f"ref_logp is required when beta={beta!r} is not 0")
    if entropy is None and not (
        _checks.is_concrete_number(entropy_coef) and entropy_coef == 0
    ):
        raise ValueError(f"entropy is required when entropy_coef={entropy_coef!r} is not 0")


def policy_loss_from_log_ratio(
    log_ratio: jax.Array,
    logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    entropy: jax.Array | None = None,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    dual_clip: float | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    entropy_coef: float = 0.0,
    aggregation: str = "token-mean",
    norm_length: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """``clipped_policy_loss`` given an already formed per-token log-ratio.

    The shared core of the token-level (PPO/GRPO) and sequence-level (GSPO)
    losses. Inputs must already be shape-checked and zeroed under the mask.
    """
    mask = completion_mask > 0
    terms = clipped_surrogate(
        log_ratio,
        advantages,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
    )
    per_token = terms.loss
    metrics = {}
    agg = dict(mode=aggregation, norm_length=norm_length)
    metrics["pg_loss"] = aggregate(terms.loss, completion_mask, **agg)
    if ref_logp is not None:
        kl = kl_estimate(logp, ref_logp, estimator=kl_estimator)
        per_token = per_token + beta * kl
        metrics["kl"] = masked_mean(kl, completion_mask)
    if entropy is not None:
        per_token = per_token - entropy_coef * entropy
        metrics["entropy"] = masked_mean(entropy, completion_mask)
    loss = aggregate(per_token, completion_mask, **agg)
    ratio = terms.ratio
    any_valid = jnp.any(mask)
    metrics.update(
        loss=loss,
        clip_fraction_low=masked_mean(terms.clipped_low.astype(ratio.dtype), mask),
        clip_fraction_high=masked_mean(terms.clipped_high.astype(ratio.dtype), mask),
        clip_fraction=masked_mean(
            (terms.clipped_low | terms.clipped_high).astype(ratio.dtype), mask
        ),
        dual_clip_fraction=masked_mean(terms.clipped_dual.astype(ratio.dtype), mask),
        # k3 estimate of KL(pi_old || pi) from tokens sampled from pi_old.
        approx_kl=masked_mean(jnp.expm1(-log_ratio) + log_ratio, mask),
        ratio_mean=masked_mean(ratio, mask),
        ratio_min=jnp.where(any_valid, jnp.min(jnp.where(mask, ratio, jnp.inf)), 0.0),
        ratio_max=jnp.where(any_valid, jnp.max(jnp.where(mask, ratio, -jnp.inf)), 0.0),
        num_tokens=jnp.sum(mask.astype(ratio.dtype)),
    )
    metrics = jax.tree.map(jax.lax.stop_gradient, metrics)
    return loss, metrics


def check_and_mask_policy_inputs(
    logp, old_logp, advantages, completion_mask, ref_logp=None, entropy=None
):
    """Shape-checks the policy-loss inputs and zeroes them under the mask.

    Zeroing (with ``jnp.where``, before any ``exp``) makes padded positions
    harmless for both the value and the gradient, whatever they contain.
    ``old_logp``, ``advantages`` and ``ref_logp`` are constants of the loss
    (gradients are stopped), so passing ``old_logp=logp`` gives the on-policy loss.

    Returns:
        ``(logp, old_logp, advantages_bt, ref_logp, entropy)`` masked, ``[B, T]``.
    """
    _checks.check_shapes(
        logp=(logp, "BT"),
        old_logp=(old_logp, "BT"),
        completion_mask=(completion_mask, "BT"),
        advantages=(advantages, _checks.advantage_spec(advantages)),
        ref_logp=None if ref_logp is None else (ref_logp, "BT"),
        entropy=None if entropy is None else (entropy, "BT"),
    )
    mask = completion_mask > 0
    # Low-precision inputs (bfloat16) are computed in float32 at least.
    dtype = jnp.promote_types(jnp.result_type(logp), jnp.float32)

    def zero(x):
        if x is None:
            return None
        x = jnp.asarray(x).astype(dtype)
        return jnp.where(mask, x, jnp.zeros((), dtype))

    def const(x):
        return None if x is None else jax.lax.stop_gradient(zero(x))

    advantages = broadcast_advantages(jnp.asarray(advantages), logp.shape)
    return zero(logp), const(old_logp), const(advantages), const(ref_logp), zero(entropy)


def clipped_policy_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    entropy: jax.Array | None = None,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    dual_clip: float | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    entropy_coef: float = 0.0,
    aggregation: str = "token-mean",
    norm_length: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """Token-level clipped policy-gradient loss with optional KL and entropy terms.

        L = agg_{b,t}[ l_t(r_t, A_t) + beta * KL_t - entropy_coef * H_t ],
        r_t = exp(logp_t - old_logp_t),

    with ``l_t`` the clipped surrogate (PPO, arXiv:1707.06347), ``KL_t`` a
    per-token ``kl_estimate`` of KL(pi || pi_ref) and ``agg`` an aggregation mode.

    Args:
        logp: ``[B, T]`` log-probs of the sampled tokens under the current policy.
        old_logp: ``[B, T]`` log-probs under the behaviour policy (constants).
        advantages: ``[B]`` per sequence or ``[B, T]`` per token.
        completion_mask: ``[B, T]``, 1 = token counts.
        ref_logp: ``[B, T]`` reference log-probs; needed when ``beta > 0`` (when
            given with ``beta = 0`` only the ``kl`` metric is computed).
        entropy: ``[B, T]`` per-token policy entropy (``entropy_from_logits``);
            needed when ``entropy_coef != 0``, else only reported.
        epsilon_low: lower clip range, in (0, 1).
        epsilon_high: upper clip range, > 0.
        dual_clip: dual-clip constant ``c > 1`` or ``None``.
        beta: KL coefficient, >= 0.
        kl_estimator: one of ``KL_ESTIMATORS``.
        entropy_coef: weight of the entropy bonus (subtracted from the loss).
        aggregation: one of ``AGGREGATION_MODES``.
        norm_length: constant of ``seq-mean-token-sum-norm`` (default ``T``).

    Returns:
        ``(loss, metrics)``: scalar loss; metrics ``loss``, ``pg_loss``,
        ``clip_fraction_low``, ``clip_fraction_high``, ``clip_fraction``,
        ``dual_clip_fraction``, ``approx_kl``, ``ratio_mean``, ``ratio_min``,
        ``ratio_max``, ``num_tokens``, plus ``kl`` and ``entropy`` when given.
        Fractions and means are over valid tokens.
    """
    _check_clip(epsilon_low, epsilon_high, dual_clip)
    _check_policy_args(
        ref_logp=ref_logp,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
        norm_length=norm_length,
        entropy_coef=entropy_coef,
        entropy=entropy,
    )
    logp, old_logp, advantages, ref_logp, entropy = check_and_mask_policy_inputs(
        logp, old_logp, advantages, completion_mask, ref_logp, entropy
    )
    return policy_loss_from_log_ratio(
        logp - old_logp,
        logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        entropy=entropy,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
        beta=beta,
        kl_estimator=kl_estimator,
        entropy_coef=entropy_coef,
        aggregation=aggregation,
        norm_length=norm_length,
    )
