"""Reducing per-token losses to a scalar: the aggregation modes.

The same per-token loss gives different gradients depending on how tokens are
weighted. The modes follow verl's ``loss_agg_mode`` names:

* ``token-mean``: every valid token of the batch weighs the same,
  ``sum_bt m_bt l_bt / sum_bt m_bt`` (DAPO, arXiv:2503.14476; TRL ``dapo``/``bnpo``).
* ``seq-mean-token-mean``: mean over tokens within a sequence, then mean over
  sequences (GRPO, arXiv:2402.03300; TRL ``grpo``).
* ``seq-mean-token-sum``: sum over tokens within a sequence, then mean over
  sequences.
* ``seq-mean-token-sum-norm``: sum over tokens divided by a constant length
  ``L`` (default the padded length ``T``), then mean over sequences
  (Dr. GRPO, arXiv:2503.20783; TRL ``dr_grpo``).

Sequences without any valid token are left out of the sequence means, and a
batch without any valid token gives 0 rather than NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks

AGGREGATION_MODES = (
    "token-mean",
    "seq-mean-token-mean",
    "seq-mean-token-sum",
    "seq-mean-token-sum-norm",
)


def safe_divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """``numerator / denominator`` where the denominator is positive, else 0.

    Safe under ``jax.grad``: no NaN flows back from the masked branch.
    """
    ok = denominator > 0
    return jnp.where(ok, numerator / jnp.where(ok, denominator, 1), 0)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``values`` over entries where ``mask > 0`` (0 if none).

    Args:
        values: any shape, float.
        mask: same shape as ``values``; 1 (or True) = keep. Values under a zero
            mask may be anything finite or not; they never reach the result.

    Returns:
        Scalar.
    """
    weight = mask.astype(values.dtype)
    values = jnp.where(mask > 0, values, 0)
    return safe_divide(jnp.sum(values * weight), jnp.sum(weight))


def aggregate(
    values: jax.Array,
    mask: jax.Array,
    *,
    mode: str = "token-mean",
    norm_length: float | None = None,
) -> jax.Array:
    """Reduces per-token values ``[B, T]`` to a scalar with one of the modes.

    Args:
        values: ``[B, T]`` per-token values (e.g. a per-token loss).
        mask: ``[B, T]``, 1 = token counts (bool, int or float weights).
        mode: one of ``AGGREGATION_MODES`` (see the module docstring).
        norm_length: the constant ``L`` of ``seq-mean-token-sum-norm``; default
            the padded length ``T``. Ignored by the other modes.

    Returns:
        Scalar; 0 when no token is valid.

    Raises:
        ValueError: unknown ``mode``, ``norm_length <= 0`` or mismatched shapes.
    """
    _checks.check_choice("mode", mode, AGGREGATION_MODES)
    if norm_length is not None:
        _checks.check_positive("norm_length", norm_length)
    _checks.check_shapes(values=(values, "BT"), mask=(mask, "BT"))
    weight = mask.astype(values.dtype)
    values = jnp.where(mask > 0, values, 0)
    weighted = values * weight
    if mode == "token-mean":
        return safe_divide(jnp.sum(weighted), jnp.sum(weight))
    token_sum = jnp.sum(weighted, axis=-1)
    token_count = jnp.sum(weight, axis=-1)
    if mode == "seq-mean-token-mean":
        per_sequence = safe_divide(token_sum, token_count)
    elif mode == "seq-mean-token-sum":
        per_sequence = token_sum
    else:
        length = values.shape[-1] if norm_length is None else norm_length
        per_sequence = token_sum / length
    valid = (token_count > 0).astype(values.dtype)
    return safe_divide(jnp.sum(per_sequence * valid), jnp.sum(valid))
