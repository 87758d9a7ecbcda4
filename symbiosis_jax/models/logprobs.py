"""The bridge from a model to the losses: per-token log-probs and entropies.

Alignment (the one convention used everywhere in symbiosis_jax): for tokens
`[B, T]`, `logp_bt[:, t] = log p(tokens[:, t] | tokens[:, :t])` for `t >= 1`,
and `logp_bt[:, 0] = 0`. Entries where `attention_mask_bt` is 0 are 0 as well,
and so is the first real token of a left-padded row (it has no context).
So a `[B, T]` completion mask lines up with `logp_bt` column for column.

Sequences must be contiguous: padding may only be on the left (before the
prompt) and on the right (after the completion), as produced by
`symbiosis_jax.sampling.sample` followed by `concatenate([prompt, completion])`.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from symbiosis_jax.models.transformer import positions_from_mask


def logprobs_from_logits(logits_btv: jax.Array, targets_bt: jax.Array, *,
                         temperature: float = 1.0, return_entropy: bool = False):
    """Log-prob of `targets_bt` under `softmax(logits_btv / temperature)`.

    Args:
        logits_btv: `[B, T, V]` logits (any float dtype; computed in float32).
        targets_bt: `[B, T]` int ids.
        temperature: positive divisor of the logits.
        return_entropy: also return the entropy of each distribution.

    Returns:
        `logp_bt` `[B, T]` float32, or `(logp_bt, entropy_bt)`.
    """
    chex.assert_rank(logits_btv, 3)
    chex.assert_rank(targets_bt, 2)
    logits = logits_btv.astype(jnp.float32) / temperature
    lse_bt = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, targets_bt[..., None].astype(jnp.int32),
                                 axis=-1)[..., 0]
    logp_bt = picked - lse_bt
    if not return_entropy:
        return logp_bt
    probs = jax.nn.softmax(logits, axis=-1)
    entropy_bt = lse_bt - jnp.sum(probs * logits, axis=-1)
    return logp_bt, entropy_bt


def token_logprobs(model, tokens_bt: jax.Array, attention_mask_bt: jax.Array, *,
                   temperature: float = 1.0, return_entropy: bool = False):
    """Per-token log-probs (and entropies) of `tokens_bt` under `model`.

    Args:
        model: a `Transformer` (any module with `__call__(tokens, positions,
            mask) -> logits [B, T, V]`).
        tokens_bt: `[B, T]` int ids, left-padded prompt then completion.
        attention_mask_bt: `[B, T]`, 1 for real tokens, 0 for padding.
        temperature: the sampling temperature; use the same value as in
            `sample` so these log-probs equal the sampler's.
        return_entropy: also return the entropy of the predictive distribution.

    Returns:
        `logp_bt` `[B, T]` float32 with `logp_bt[:, t] = log p(tokens[:, t] |
        tokens[:, :t])`, zero at column 0, where the mask is 0 and at the first
        real token of each row; or
        `(logp_bt, entropy_bt)`, `entropy_bt[:, t]` being the entropy of the
        distribution that predicts column t (same zeros).
    """
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")
    chex.assert_rank([tokens_bt, attention_mask_bt], 2)
    chex.assert_equal_shape([tokens_bt, attention_mask_bt])
    positions_bt = positions_from_mask(attention_mask_bt)
    logits_btv = model(tokens_bt, positions_bt, attention_mask_bt)
    out = logprobs_from_logits(logits_btv[:, :-1], tokens_bt[:, 1:],
                               temperature=temperature, return_entropy=return_entropy)
    # A token counts only if it and its predecessor are real: the first token
    # of a left-padded row has no context and gets 0, like column 0.
    keep_bt = (attention_mask_bt[:, 1:] > 0) & (attention_mask_bt[:, :-1] > 0)

    def _align(x_bt):
        x_bt = jnp.where(keep_bt, x_bt, 0.0)
        return jnp.pad(x_bt, ((0, 0), (1, 0)))

    if return_entropy:
        return _align(out[0]), _align(out[1])
    return _align(out)
