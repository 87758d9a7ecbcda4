"""AlphaZero loss (Silver et al., Science 2018; arXiv:1712.01815).

    L = mean_b w_b [ c_p * -sum_a pi_ba log p_ba + c_v * (v_b - z_b)^2 ]

``p = softmax`` of the policy logits restricted to legal actions, ``pi`` the
search policy (visit distribution), ``z`` the game outcome (or value target)
and ``w`` optional per-sample weights (e.g. 0 for padded self-play steps).
Weight decay is left to the optimiser.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.aggregate import safe_divide
from symbiosis_jax.losses.surrogate import Metrics


def alphazero_loss(
    policy_logits: jax.Array,
    value: jax.Array,
    target_policy: jax.Array,
    target_value: jax.Array,
    legal_action_mask: jax.Array,
    *,
    sample_weights: jax.Array | None = None,
    policy_coef: float = 1.0,
    value_coef: float = 1.0,
) -> tuple[jax.Array, Metrics]:
    """AlphaZero policy cross-entropy plus value mean squared error.

    Illegal actions are removed from the softmax; target mass on illegal
    actions is ignored. A row without any legal action contributes no policy
    loss.

    Args:
        policy_logits: ``[B, A]`` network policy logits.
        value: ``[B]`` network value predictions.
        target_policy: ``[B, A]`` search policy (rows sum to 1 over legal actions).
        target_value: ``[B]`` outcomes in [-1, 1] (constants).
        legal_action_mask: ``[B, A]`` bool, True = legal.
        sample_weights: ``[B]`` non-negative weights, or ``None`` for 1.
        policy_coef: weight ``c_p >= 0`` of the policy term.
        value_coef: weight ``c_v >= 0`` of the value term.

    Returns:
        ``(loss, metrics)``: metrics ``loss``, ``policy_loss``, ``value_loss``,
        ``policy_entropy``, ``target_entropy``, ``policy_kl`` (KL(target || p)),
        ``policy_accuracy`` (argmax agreement), ``value_mean``, and
        ``value_explained_variance``, ``1 - value_loss / Var(target_value)`` (1: the
        value predicts its targets; 0: no better than their mean; 0 when the targets do
        not vary). All are weighted over the batch.
    """
    _checks.check_nonnegative("policy_coef", policy_coef)
    _checks.check_nonnegative("value_coef", value_coef)
    _checks.check_shapes(
        policy_logits=(policy_logits, "BA"),
        value=(value, "B"),
        target_policy=(target_policy, "BA"),
        target_value=(target_value, "B"),
        legal_action_mask=(legal_action_mask, "BA"),
        sample_weights=None if sample_weights is None else (sample_weights, "B"),
    )
    legal = legal_action_mask.astype(bool)
    has_legal = jnp.any(legal, axis=-1)
    # Rows without legal actions use all actions so no -inf/NaN appears; they are
    # weighted out of the policy terms below.
    legal = jnp.where(has_legal[:, None], legal, True)
    dtype = jnp.promote_types(policy_logits.dtype, jnp.float32)
    logits = jnp.where(legal, policy_logits.astype(dtype), -jnp.inf)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    log_p = jnp.where(legal, log_p, 0.0)
    target = jax.lax.stop_gradient(jnp.where(legal, target_policy.astype(dtype), 0.0))
    target_value = jax.lax.stop_gradient(target_value.astype(dtype))
    policy_ce = -jnp.sum(target * log_p, axis=-1)
    policy_ce = jnp.where(has_legal, policy_ce, 0.0)
    value_se = jnp.square(value.astype(dtype) - target_value)
    if sample_weights is None:
        weights = jnp.ones(value.shape, dtype)
    else:
        weights = jax.lax.stop_gradient(sample_weights.astype(dtype))
    total = jnp.sum(weights)

    def wmean(x):
        return safe_divide(jnp.sum(weights * x), total)

    policy_loss = wmean(policy_ce)
    value_loss = wmean(value_se)
    target_var = wmean(jnp.square(target_value - wmean(target_value)))
    explained = jnp.where(target_var > 0, 1.0 - safe_divide(value_loss, target_var), 0.0)
    loss = policy_coef * policy_loss + value_coef * value_loss
    p = jnp.exp(log_p) * legal
    policy_entropy = -jnp.sum(p * log_p, axis=-1)
    safe_target_log = jnp.log(jnp.where(target > 0, target, 1.0))
    target_entropy = -jnp.sum(target * safe_target_log, axis=-1)
    agree = jnp.argmax(logits, axis=-1) == jnp.argmax(
        jnp.where(legal, target, -1.0), axis=-1
    )
    metrics = dict(
        loss=loss,
        policy_loss=policy_loss,
        value_loss=value_loss,
        policy_entropy=wmean(jnp.where(has_legal, policy_entropy, 0.0)),
        target_entropy=wmean(jnp.where(has_legal, target_entropy, 0.0)),
        policy_kl=wmean(jnp.where(has_legal, policy_ce - target_entropy, 0.0)),
        policy_accuracy=wmean(agree.astype(dtype)),
        value_mean=wmean(value.astype(dtype)),
        value_explained_variance=explained,
    )
    return loss, jax.tree.map(jax.lax.stop_gradient, metrics)
