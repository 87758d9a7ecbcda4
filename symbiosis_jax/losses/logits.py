"""From logits to per-token log-probs and entropies.

Both use one ``logsumexp`` over the vocabulary and never keep a full
log-softmax copy: ``log pi(y_t) = z_{t, y_t} - logsumexp_v z_{t, v}`` and
``H_t = logsumexp_v z_{t, v} - sum_v softmax(z_t)_v z_{t, v}``. Low-precision
logits (bfloat16) are upcast to float32 first; logits of -inf (masked
vocabulary entries) are allowed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from symbiosis_jax.losses import _checks


def _prepare(logits: jax.Array, temperature: float) -> jax.Array:
    _checks.check_positive("temperature", temperature)
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    logits = logits.astype(dtype)
    if not (_checks.is_concrete_number(temperature) and temperature == 1.0):
        logits = logits / temperature
    return logits


def _finite(logits: jax.Array) -> jax.Array:
    # Logits masked to -inf (top-k / top-p, banned tokens) have probability 0;
    # zeroing them keeps p * z from being 0 * inf = NaN in value and gradient.
    return jnp.where(jnp.isfinite(logits), logits, 0.0)


def token_logprobs(
    logits: jax.Array, tokens: jax.Array, *, temperature: float = 1.0
) -> jax.Array:
    """Log-probs of the given tokens.

    Args:
        logits: ``[B, T, V]`` (any leading dims) unnormalised logits; the logits
            at position ``t`` score token ``tokens[..., t]``.
        tokens: ``[B, T]`` integer token ids.
        temperature: divides the logits first (sampling temperature).

    Returns:
        ``[B, T]`` float32 (or float64) ``log softmax(logits / temperature)[tokens]``.
    """
    if jnp.shape(logits)[:-1] != jnp.shape(tokens):
        raise ValueError(
            f"tokens has shape {jnp.shape(tokens)}, expected the leading shape of "
            f"logits {jnp.shape(logits)[:-1]}"
        )
    logits = _prepare(logits, temperature)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, tokens[..., None].astype(jnp.int32), axis=-1)
    return picked[..., 0] - lse


def entropy_from_logits(logits: jax.Array, *, temperature: float = 1.0) -> jax.Array:
    """Entropy of ``softmax(logits / temperature)`` at each position.

    Args:
        logits: ``[B, T, V]`` (any leading dims).
        temperature: divides the logits first.

    Returns:
        ``[B, T]`` entropies in nats.
    """
    logits = _prepare(logits, temperature)
    lse = jax.nn.logsumexp(logits, axis=-1)
    probs = jnp.exp(logits - lse[..., None])
    return lse - jnp.sum(probs * _finite(logits), axis=-1)


def token_logprobs_and_entropy(
    logits: jax.Array, tokens: jax.Array, *, temperature: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    """Both ``token_logprobs`` and ``entropy_from_logits``, sharing one logsumexp.

    Args:
        logits: ``[B, T, V]`` (any leading dims) unnormalised logits; the logits
            at position ``t`` score token ``tokens[..., t]``.
        tokens: ``[B, T]`` integer token ids (the leading shape of ``logits``).
        temperature: divides the logits first (sampling temperature); must be positive.

    Returns:
        ``(logp, entropy)``, each ``[B, T]``.

    Raises:
        ValueError: ``tokens``' shape is not the leading shape of ``logits``, or a concrete
            ``temperature`` is not positive.
    """
    if jnp.shape(logits)[:-1] != jnp.shape(tokens):
        raise ValueError(
            f"tokens has shape {jnp.shape(tokens)}, expected the leading shape of "
            f"logits {jnp.shape(logits)[:-1]}"
        )
    logits = _prepare(logits, temperature)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, tokens[..., None].astype(jnp.int32), axis=-1)
    probs = jnp.exp(logits - lse[..., None])
    return picked[..., 0] - lse, lse - jnp.sum(probs * _finite(logits), axis=-1)


def sequence_logprobs(logp: jax.Array, mask: jax.Array, *, average: bool = False) -> jax.Array:
    """Summed (or averaged) token log-probs of each sequence, for the preference losses.

    Args:
        logp: ``[B, T]`` per-token log-probs.
        mask: ``[B, T]``, 1 = the token belongs to the response.
        average: divide by the number of valid tokens (0 for an empty row).

    Returns:
        ``[B]`` ``sum_t m_t logp_t`` (or its mean over valid tokens).
    """
    _checks.check_shapes(logp=(logp, "BT"), mask=(mask, "BT"))
    valid = mask > 0
    total = jnp.sum(jnp.where(valid, logp, 0.0), axis=-1)
    if not average:
        return total
    count = jnp.sum(valid.astype(total.dtype), axis=-1)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)
