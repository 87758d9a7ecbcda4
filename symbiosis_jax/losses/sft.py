"""Supervised fine-tuning: masked next-token cross-entropy.

    L = agg_{b,t} -log softmax(z_bt)[y_bt]   over tokens with loss_mask = 1

(prompt tokens and padding are masked out; aggregation as in ``aggregate``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks
from symbiosis_jax.losses.aggregate import AGGREGATION_MODES, aggregate, masked_mean
from symbiosis_jax.losses.logits import token_logprobs
from symbiosis_jax.losses.surrogate import Metrics


def sft_loss(
    logits: jax.Array,
    targets: jax.Array,
    loss_mask: jax.Array,
    *,
    aggregation: str = "token-mean",
    norm_length: float | None = None,
) -> tuple[jax.Array, Metrics]:
    """Masked cross-entropy of target tokens.

    Args:
        logits: ``[B, T, V]``; position ``t`` predicts ``targets[:, t]`` (shift
            before calling).
        targets: ``[B, T]`` int token ids.
        loss_mask: ``[B, T]``, 1 = token is trained on.
        aggregation: one of ``AGGREGATION_MODES`` (default ``token-mean``).
        norm_length: constant of ``seq-mean-token-sum-norm``.

    Returns:
        ``(loss, metrics)``: metrics ``loss``, ``nll`` (token-mean),
        ``perplexity`` (``exp(nll)``), ``token_accuracy`` (argmax = target),
        ``num_tokens``.
    """
    _checks.check_choice("aggregation", aggregation, AGGREGATION_MODES)
    _checks.check_shapes(
        logits=(logits, "BTV"), targets=(targets, "BT"), loss_mask=(loss_mask, "BT")
    )
    nll = -token_logprobs(logits, targets)
    loss = aggregate(nll, loss_mask, mode=aggregation, norm_length=norm_length)
    mask = loss_mask > 0
    token_nll = masked_mean(nll, mask)
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(nll.dtype)
    metrics = dict(
        loss=loss,
        nll=token_nll,
        perplexity=jnp.exp(token_nll),
        token_accuracy=masked_mean(correct, mask),
        num_tokens=jnp.sum(mask.astype(nll.dtype)),
    )
    return loss, jax.tree.map(jax.lax.stop_gradient, metrics)
