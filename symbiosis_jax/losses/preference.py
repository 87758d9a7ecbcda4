"""Offline preference losses from summed sequence log-probs: DPO and relatives.

All take the summed log-probs of the chosen (``y_w``) and rejected (``y_l``)
responses under the policy and the frozen reference, ``[B]`` each, and use

    h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)).

* DPO (Rafailov et al., arXiv:2305.18290): ``-log sigmoid(beta h)``.
* Conservative DPO (Mitchell, "A note on DPO with noisy preferences", 2023):
  ``-(1-eps) log sigmoid(beta h) - eps log sigmoid(-beta h)`` (label smoothing).
* Robust DPO (Chowdhury et al., arXiv:2403.00409):
  ``[-(1-eps) log sigmoid(beta h) + eps log sigmoid(-beta h)] / (1 - 2 eps)``.
* IPO (Azar et al., arXiv:2310.12036): ``(h - 1/(2 beta))^2``, optionally with
  each log-ratio divided by its response length.
* Hinge / SLiC (Zhao et al., arXiv:2305.10425): ``max(0, 1 - beta h)``.

Metrics follow TRL: implicit rewards ``beta (log pi - log pi_ref)`` of chosen and
rejected, their margin, and the accuracy ``reward_chosen > reward_rejected``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.surrogate import Metrics


def _check_preference_inputs(pc, pr, rc, rr, names=("policy_chosen_logp",
                                                      "policy_rejected_logp",
                                                      "ref_chosen_logp",
                                                      "ref_rejected_logp")):
    _checks.check_shapes(**{n: (x, "B") for n, x in zip(names, (pc, pr, rc, rr))})


def _preference_metrics(chosen_ratio, rejected_ratio, beta, losses, prefix=("chosen", "rejected")):
    chosen_reward = beta * chosen_ratio
    rejected_reward = beta * rejected_ratio
    c, r = prefix
    metrics = {
        "loss": jnp.mean(losses),
        f"rewards_{c}": jnp.mean(chosen_reward),
        f"rewards_{r}": jnp.mean(rejected_reward),
        "reward_margin": jnp.mean(chosen_reward - rejected_reward),
        "accuracy": jnp.mean((chosen_reward > rejected_reward).astype(losses.dtype)),
        "logit_mean": jnp.mean(chosen_ratio - rejected_ratio),
    }
    return jax.tree.map(jax.lax.stop_gradient, metrics)


def _sigmoid_loss(pc, pr, rc, rr, *, beta, label_smoothing, robust, prefix=("chosen", "rejected")):
    ref_c = jax.lax.stop_gradient(rc)
    ref_r = jax.lax.stop_gradient(rr)
    chosen_ratio = pc - ref_c
    rejected_ratio = pr - ref_r
    logits = beta * (chosen_ratio - rejected_ratio)
    if robust:
        losses = (
            -(1.0 - label_smoothing) * jax.nn.log_sigmoid(logits)
            + label_smoothing * jax.nn.log_sigmoid(-logits)
        ) / (1.0 - 2.0 * label_smoothing)
    else:
        losses = -(1.0 - label_smoothing) * jax.nn.log_sigmoid(
            logits
        ) - label_smoothing * jax.nn.log_sigmoid(-logits)
    loss = jnp.mean(losses)
    return loss, _preference_metrics(chosen_ratio, rejected_ratio, beta, losses, prefix)


def dpo_loss(
    policy_chosen_logp: jax.Array,
    policy_rejected_logp: jax.Array,
    ref_chosen_logp: jax.Array,
    ref_rejected_logp: jax.Array,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> tuple[jax.Array, Metrics]:
    """DPO loss (arXiv:2305.18290, eq. 7), ``mean_b -log sigmoid(beta h_b)``.

    With ``label_smoothing = eps > 0`` this is conservative DPO:
    ``-(1-eps) log sigmoid(beta h) - eps log sigmoid(-beta h)`` (TRL ``sigmoid``
    with ``label_smoothing``).

    Args:
        policy_chosen_logp: ``[B]`` summed log-probs of the chosen responses.
        policy_rejected_logp: ``[B]`` summed log-probs of the rejected responses.
        ref_chosen_logp: ``[B]`` under the reference (constants).
        ref_rejected_logp: ``[B]`` under the reference (constants).
        beta: inverse temperature, >= 0.
        label_smoothing: assumed label-flip probability, in [0, 0.5).

    Returns:
        ``(loss, metrics)``: scalar mean loss; metrics ``loss``,
        ``rewards_chosen``, ``rewards_rejected``, ``reward_margin``,
        ``accuracy``, ``logit_mean`` (mean of ``h``).
    """
    _checks.check_nonnegative("beta", beta)
    _checks.check_in_interval("label_smoothing", label_smoothing, 0.0, 0.5)
    _check_preference_inputs(
        policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp
    )
    return _sigmoid_loss(
        policy_chosen_logp,
        policy_rejected_logp,
        ref_chosen_logp,
        ref_rejected_logp,
        beta=beta,
        label_smoothing=label_smoothing,
        robust=False,
    )


def conservative_dpo_loss(
    policy_chosen_logp: jax.Array,
    policy_rejected_logp: jax.Array,
    ref_chosen_logp: jax.Array,
    ref_rejected_logp: jax.Array,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> tuple[jax.Array, Metrics]:
    """Conservative DPO (cDPO): ``dpo_loss`` with label smoothing (default 0.1).

        l = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)

    Args and returns as ``dpo_loss``.
    """
    return dpo_loss(
        policy_chosen_logp,
        policy_rejected_logp,
        ref_chosen_logp,
        ref_rejected_logp,
        beta=beta,
        label_smoothing=label_smoothing,
    )


def robust_dpo_loss(
    policy_chosen_logp: jax.Array,
    policy_rejected_logp: jax.Array,
    ref_chosen_logp: jax.Array,
    ref_rejected_logp: jax.Array,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> tuple[jax.Array, Metrics]:
    """Robust DPO (Chowdhury et al., arXiv:2403.00409, eq. 9): unbiased under label noise.

        l = [-(1 - eps) log sigmoid(beta h) + eps log sigmoid(-beta h)] / (1 - 2 eps)

    Args:
        label_smoothing: the label-flip rate ``eps`` in [0, 0.5).
        Others: as ``dpo_loss``.

    Returns:
        As ``dpo_loss``.
    """
    _checks.check_nonnegative("beta", beta)
    _checks.check_in_interval("label_smoothing", label_smoothing, 0.0, 0.5)
    _check_preference_inputs(
        policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp
    )
    return _sigmoid_loss(
        policy_chosen_logp,
        policy_rejected_logp,
        ref_chosen_logp,
        ref_rejected_logp,
        beta=beta,
        label_smoothing=label_smoothing,
        robust=True,
    )


def ipo_loss(
    policy_chosen_logp: jax.Array,
    policy_rejected_logp: jax.Array,
    ref_chosen_logp: jax.Array,
    ref_rejected_logp: jax.Array,
    *,
    beta: float = 0.1,
    chosen_lengths: jax.Array | None = None,
    rejected_lengths: jax.Array | None = None,
) -> tuple[jax.Array, Metrics]:
    """IPO loss (Azar et al., arXiv:2310.12036, eq. 17): ``mean_b (h_b - 1/(2 beta))^2``.

    With ``chosen_lengths`` and ``rejected_lengths`` each log-ratio is divided by
    its response length first (TRL's ``ipo``, which averages log-probs over tokens):
    ``h = (log pi(y_w) - log pi_ref(y_w)) / |y_w| - (log pi(y_l) - log pi_ref(y_l)) / |y_l|``.

    Args:
        beta: regularisation, > 0 (the target margin is ``1 / (2 beta)``).
        chosen_lengths: ``[B]`` token counts of the chosen responses, or ``None``.
        rejected_lengths: ``[B]`` token counts of the rejected responses, or ``None``.
        Others: as ``dpo_loss``.

    Returns:
        As ``dpo_loss`` (rewards use the length-normalised ratios when given).
    """
    _checks.check_positive("beta", beta)
    _check_preference_inputs(
        policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp
    )
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise ValueError("chosen_lengths and rejected_lengths must be given together")
    chosen_ratio = policy_chosen_logp - jax.lax.stop_gradient(ref_chosen_logp)
    rejected_ratio = policy_rejected_logp - jax.lax.stop_gradient(ref_rejected_logp)
    if chosen_lengths is not None:
        _checks.check_shapes(
            policy_chosen_logp=(policy_chosen_logp, "B"),
            chosen_lengths=(chosen_lengths, "B"),
            rejected_lengths=(rejected_lengths, "B"),
        )
        chosen_ratio = chosen_ratio / jnp.maximum(chosen_lengths, 1).astype(chosen_ratio.dtype)
        rejected_ratio = rejected_ratio / jnp.maximum(rejected_lengths, 1).astype(
            rejected_ratio.dtype
        )
    losses = jnp.square(chosen_ratio - rejected_ratio - 1.0 / (2.0 * beta))
    return jnp.mean(losses), _preference_metrics(chosen_ratio, rejected_ratio, beta, losses)


def preference_hinge_loss(
    policy_chosen_logp: jax.Array,
    policy_rejected_logp: jax.Array,
    ref_chosen_logp: jax.Array,
    ref_rejected_logp: jax.Array,
    *,
    beta: float = 0.1,
) -> tuple[jax.Array, Metrics]:
    """Hinge preference loss (SLiC, arXiv:2305.10425; TRL ``hinge``): ``max(0, 1 - beta h)``.

    Args and returns as ``dpo_loss`` (``beta`` > 0; the margin is ``1 / beta``).
    """
    _checks.check_positive("beta", beta)
    _check_preference_inputs(
        policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp
    )
    chosen_ratio = policy_chosen_logp - jax.lax.stop_gradient(ref_chosen_logp)
    rejected_ratio = policy_rejected_logp - jax.lax.stop_gradient(ref_rejected_logp)
    losses = jax.nn.relu(1.0 - beta * (chosen_ratio - rejected_ratio))
    return jnp.mean(losses), _preference_metrics(chosen_ratio, rejected_ratio, beta, losses)
