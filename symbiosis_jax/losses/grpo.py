"""GRPO and its variants DAPO and Dr. GRPO: clipped policy losses with different defaults.

All three are ``clipped_policy_loss`` (see ``surrogate.py``) with the
settings of their papers; advantages come from ``advantages.py``
(``group_advantages`` with or without the std).

| loss          | aggregation              | clip (low, high) | KL            | advantages         |
| ------------- | ------------------------ | ---------------- | ------------- | ------------------ |
| GRPO          | seq-mean-token-mean      | 0.2, 0.2         | 0.04 * k3     | mean/std of group  |
| DAPO          | token-mean               | 0.2, 0.28        | none          | mean/std of group  |
| Dr. GRPO      | seq-mean-token-sum-norm  | 0.2, 0.2         | none          | mean of group only |
"""

from __future__ import annotations

import jax

from symbiosis_jax.losses.surrogate import Metrics, clipped_policy_loss


def grpo_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.04,
    kl_estimator: str = "k3",
    aggregation: str = "seq-mean-token-mean",
    dual_clip: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """GRPO loss (Shao et al., DeepSeekMath, arXiv:2402.03300, eq. 3).

        L = 1/G sum_i 1/|o_i| sum_t [ -min(r_it A_i, clip(r_it, 1-eps, 1+eps) A_i)
                                      + beta * D_KL,t ],
        D_KL,t = pi_ref/pi - log(pi_ref/pi) - 1   (k3, outside the clip).

    Args:
        logp: ``[B, T]`` current-policy log-probs of the sampled tokens.
        old_logp: ``[B, T]`` behaviour-policy log-probs (pass ``logp`` itself
            when on-policy: gradients through it are stopped).
        advantages: ``[B]`` (``group_advantages(...).reshape(-1)``) or ``[B, T]``.
        completion_mask: ``[B, T]``, 1 = completion token.
        ref_logp: ``[B, T]`` reference log-probs; required when ``beta > 0``.
        epsilon_low: lower clip range (paper: 0.2).
        epsilon_high: upper clip range (paper: same as the lower).
        beta: KL coefficient (paper: 0.04); 0 drops the KL term.
        kl_estimator: per-token KL estimator, one of ``KL_ESTIMATORS``.
        aggregation: one of ``AGGREGATION_MODES`` (paper: per-sequence mean).
        dual_clip: optional dual-clip constant ``c > 1``.

    Returns:
        ``(loss, metrics)`` as ``clipped_policy_loss``.
    """
    return clipped_policy_loss(
        logp,
        old_logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
    )


def dapo_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    aggregation: str = "token-mean",
    dual_clip: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """DAPO loss (Yu et al., arXiv:2503.14476, eq. 8): clip-higher, token-level mean, no KL.

        L = 1/sum_i |o_i| sum_i sum_t -min(r_it A_it, clip(r_it, 1-eps_low, 1+eps_high) A_it)

    Dynamic sampling (``zero_variance_group_mask``) and overlong shaping
    (``overlong_reward_shaping``) act on the batch and the rewards beforehand.

    Args:
        logp, old_logp, advantages, completion_mask: as ``grpo_loss``.
        ref_logp: optional; with ``beta = 0`` only reported as the ``kl`` metric.
        epsilon_low: lower clip range (paper: 0.2).
        epsilon_high: upper clip range (paper: 0.28).
        beta: KL coefficient (paper: 0, no KL).
        kl_estimator: per-token KL estimator.
        aggregation: one of ``AGGREGATION_MODES`` (paper: token-mean).
        dual_clip: optional dual-clip constant ``c > 1``.

    Returns:
        ``(loss, metrics)`` as ``clipped_policy_loss``.
    """
    return clipped_policy_loss(
        logp,
        old_logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation=aggregation,
    )


def dr_grpo_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    completion_mask: jax.Array,
    *,
    ref_logp: jax.Array | None = None,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    norm_length: float | None = None,
    dual_clip: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """Dr. GRPO loss (Liu et al., "Understanding R1-Zero-Like Training", arXiv:2503.20783).

    GRPO without the per-sequence length normalisation: token losses are summed
    per sequence and divided by a constant ``L`` (``seq-mean-token-sum-norm``),

        L = 1/B sum_i 1/L sum_t -min(r_it A_i, clip(r_it, 1-eps, 1+eps) A_i),

    and the advantages are not divided by the group std
    (``group_advantages(..., normalize_std=False)``).

    Args:
        logp, old_logp, advantages, completion_mask: as ``grpo_loss``.
        ref_logp: optional reference log-probs; required when ``beta > 0``.
        epsilon_low: lower clip range (0.2).
        epsilon_high: upper clip range (0.2).
        beta: KL coefficient (paper: 0).
        kl_estimator: per-token KL estimator.
        norm_length: the constant ``L`` (e.g. the generation budget
            ``max_completion_length``); default the padded length ``T``.
        dual_clip: optional dual-clip constant ``c > 1``.

    Returns:
        ``(loss, metrics)`` as ``clipped_policy_loss``.
    """
    return clipped_policy_loss(
        logp,
        old_logp,
        advantages,
        completion_mask,
        ref_logp=ref_logp,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip,
        beta=beta,
        kl_estimator=kl_estimator,
        aggregation="seq-mean-token-sum-norm",
        norm_length=norm_length,
    )
