"""Per-token estimators of KL(pi || pi_ref) from tokens sampled from pi.

With ``log r = log pi_ref(y_t) - log pi(y_t)`` (Schulman, "Approximating KL
divergence", 2020, http://joschu.net/blog/kl-approx.html):

* ``k1 = -log r``: unbiased for the KL value, high variance, can be negative.
* ``k2 = (log r)^2 / 2``: biased value; its gradient is the unbiased gradient
  of the KL (the "k2 gradient" of verl's ``mse``).
* ``k3 = (r - 1) - log r``: unbiased, non-negative, low variance; used by GRPO
  (arXiv:2402.03300) and verl's ``low_var_kl``. Its gradient w.r.t. the policy
  log-prob is biased as a gradient of the KL.
* ``k3+``: the value of ``k3`` with the gradient of ``k2`` (straight-through),
  as verl's ``k3+``: ``k2 + stop_gradient(k3 - k2)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks

KL_ESTIMATORS = ("k1", "k2", "k3", "k3+")


def kl_estimate(
    logp: jax.Array, ref_logp: jax.Array, *, estimator: str = "k3"
) -> jax.Array:
    """Per-token KL estimate; see the module docstring for the estimators.

    Args:
        logp: ``[...]`` log-probs of the sampled tokens under the policy.
        ref_logp: same shape, log-probs under the reference policy.
        estimator: one of ``KL_ESTIMATORS``.

    Returns:
        Same shape as ``logp``: the per-token estimate (not masked; the caller
        aggregates with its completion mask).

    Raises:
        ValueError: unknown ``estimator`` or mismatched shapes.
    """
    _checks.check_choice("estimator", estimator, KL_ESTIMATORS)
    if jnp.shape(logp) != jnp.shape(ref_logp):
        raise ValueError(
            f"ref_logp has shape {jnp.shape(ref_logp)}, expected the shape of "
            f"logp {jnp.shape(logp)}"
        )
    log_r = ref_logp - logp
    if estimator == "k1":
        return -log_r
    k2 = 0.5 * jnp.square(log_r)
    if estimator == "k2":
        return k2
    k3 = jnp.expm1(log_r) - log_r
    if estimator == "k3":
        return k3
    return k2 + jax.lax.stop_gradient(k3 - k2)
