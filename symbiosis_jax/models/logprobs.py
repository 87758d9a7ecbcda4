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
import numpy as np

from symbiosis_jax.models.transformer import KVCache, init_cache, positions_from_mask


def prompt_mask(prompt_lengths_b: jax.Array, num_slots: int) -> jax.Array:
    """`[B, P]` int32 mask of a left-padded prompt batch (1 = real token).

    Args:
        prompt_lengths_b: `[B]` number of real tokens of each prompt; row `b` gets ones in
            its last `prompt_lengths_b[b]` columns. Concrete lengths must lie in
            `0..num_slots` (traced ones are not checked).
        num_slots: P, width of the padded prompt batch (its number of columns).

    Returns:
        `[B, P]` int32, 0 on the left padding and 1 on the prompt tokens.

    Raises:
        ValueError: a concrete length is negative or above `num_slots`.
    """
    if not isinstance(prompt_lengths_b, jax.core.Tracer):
        lengths = np.asarray(prompt_lengths_b)
        if lengths.size and (lengths.min() < 0 or lengths.max() > num_slots):
            raise ValueError(f"prompt_lengths_b must lie in 0..{num_slots} (the prompt "
                             f"width); got {lengths.min()}..{lengths.max()}")
    pad_count_b = num_slots - jnp.asarray(prompt_lengths_b, jnp.int32)
    return (jnp.arange(num_slots)[None, :] >= pad_count_b[:, None]).astype(jnp.int32)


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


def grouped_completion_logprobs(model, prompt_tokens_pl: jax.Array,
                                prompt_lengths_p: jax.Array, completion_bn: jax.Array,
                                completion_mask_bn: jax.Array, *, group_size: int,
                                temperature: float = 1.0, return_entropy: bool = False):
    """Completion log-probs when every prompt is shared by `group_size` rows.

    Equal to `token_logprobs` on `[repeat(prompt, G) | completion]` restricted to the
    completion columns, but each prompt runs through the model once: its keys and
    values (from `Transformer.decode` over the prompt) are repeated to the G rows of
    its group, and the completions are decoded as one chunk against them. Gradients
    flow through both passes, so the prompt's share is summed over its group. With
    a prompt of length L and N new tokens this is `P * L + B * (N - 1)` token
    positions instead of `B * (L + N)`.

    Args:
        model: a `Transformer` (needs `decode`, `logits` and `config`).
        prompt_tokens_pl: `[P, L]` int distinct prompts, left-padded.
        prompt_lengths_p: `[P]` int their lengths, each in 1..L.
        completion_bn: `[B, N]` int completions, `B = P * G`, the G rows of
            prompt i being rows `i * G .. i * G + G - 1`.
        completion_mask_bn: `[B, N]`, 1 for completion tokens (a prefix of
            each row, as `sample` returns).
        group_size: G.
        temperature: the sampling temperature.
        return_entropy: also return per-token entropies.

    Returns:
        `logp_bn` `[B, N]` float32 (0 where the mask is 0), or
        `(logp_bn, entropy_bn)`.
    """
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")
    chex.assert_rank([prompt_tokens_pl, completion_bn, completion_mask_bn], 2)
    chex.assert_rank(prompt_lengths_p, 1)
    chex.assert_equal_shape([completion_bn, completion_mask_bn])
    p, num_prompt = prompt_tokens_pl.shape
    b, n = completion_bn.shape
    if not isinstance(group_size, int) or group_size < 1 or b != p * group_size:
        raise ValueError(f"group_size={group_size!r} must be a positive int with "
                         f"B = P * group_size (B={b}, P={p})")
    lengths_p = jnp.asarray(prompt_lengths_p, jnp.int32)
    prompt_mask_pl = prompt_mask(lengths_p, num_prompt) > 0
    positions_pl = positions_from_mask(prompt_mask_pl)
    hidden_pld, cache = model.decode(
        prompt_tokens_pl, positions_pl, init_cache(model.config, p, num_prompt),
        cache_index=0, kv_mask_bs=prompt_mask_pl)

    def rep(x):
        return jnp.repeat(x, group_size, axis=0)

    logits_b1v = rep(model.logits(hidden_pld[:, -1:]))
    if n > 1:
        # Completion token j (< N - 1) sits in slot L + j; the last one is never fed.
        def extend(x_bkle):
            x_bkle = rep(x_bkle)
            pad = jnp.zeros(x_bkle.shape[:2] + (n - 1,) + x_bkle.shape[3:], x_bkle.dtype)
            return jnp.concatenate([x_bkle, pad], axis=2)

        cache = KVCache(k=tuple(extend(k) for k in cache.k),
                        v=tuple(extend(v) for v in cache.v))
        kv_mask_bs = jnp.concatenate(
            [rep(prompt_mask_pl), completion_mask_bn[:, : n - 1] > 0], axis=1)
        positions_bn = rep(lengths_p)[:, None] + jnp.arange(n - 1)[None, :]
        hidden_bnd, _ = model.decode(completion_bn[:, : n - 1], positions_bn, cache,
                                     cache_index=num_prompt, kv_mask_bs=kv_mask_bs)
        logits_bnv = jnp.concatenate([logits_b1v, model.logits(hidden_bnd)], axis=1)
    else:
        logits_bnv = logits_b1v
    out = logprobs_from_logits(logits_bnv, completion_bn, temperature=temperature,
                               return_entropy=return_entropy)
    # The token before column 0 is the prompt's last, always real (left padding).
    keep_bn = completion_mask_bn > 0
    if return_entropy:
        return jnp.where(keep_bn, out[0], 0.0), jnp.where(keep_bn, out[1], 0.0)
    return jnp.where(keep_bn, out, 0.0)
