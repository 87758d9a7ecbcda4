"""A compiled, batched sampler with a KV cache.

Prefill and decode run in one `jax.jit`: the prompt fills a cache, then
`lax.while_loop`s feed one token per step and stop as soon as every row has
emitted a stop token (or `max_new_tokens` is reached). Prompts are left-padded
so that all rows write the same cache slot at each step; RoPE positions come
from the true prompt lengths, so a padded row gets exactly the numbers of its
unpadded version. Because the written slots are the same for every row, the
decode runs in a few segments with static cache sizes (P + 8, P + 16, ...), so
attention reads only the filled part of the cache. Rows that share a prompt
(`prompt_group_size`) are prefilled once per group.

Log-probs returned are those of the sampled token under the *tempered, untruncated*
model distribution `softmax(logits / temperature)`; top-k and top-p only choose
which tokens may be drawn. `symbiosis_jax.models.token_logprobs(..., temperature=t)`
recomputes the same numbers, which is what importance ratios in RL need.

Dimension letters: B batch, P prompt slots, N new tokens, V vocab, S cache slots.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from symbiosis_jax.models.logprobs import prompt_mask
from symbiosis_jax.models.transformer import KVCache, init_cache


@flax.struct.dataclass
class SampleOutput:
    """What `sample` returns.

    Attributes:
        tokens: `[B, N]` int32 completion tokens, `pad_id` after a row stops.
        logprobs: `[B, N]` float32 log-prob of each token under
            `softmax(logits / temperature)` (0 where the mask is 0).
        completion_mask: `[B, N]` int32, 1 for generated tokens (the stop
            token included), 0 after it.
        lengths: `[B]` int32 number of generated tokens (stop token included).
        stopped: `[B]` bool, True where the row emitted a stop token (False
            where it ran out of `max_new_tokens`).
    """

    tokens: jax.Array
    logprobs: jax.Array
    completion_mask: jax.Array
    lengths: jax.Array
    stopped: jax.Array


class _Carry(NamedTuple):
    step: jax.Array
    last_b: jax.Array
    cache: KVCache
    done_b: jax.Array
    tokens_bn: jax.Array
    logp_bn: jax.Array
    mask_bn: jax.Array


def left_pad(prompts: Sequence[Sequence[int]], *, pad_id: int,
             length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Left-pads token lists into `([B, P] int32 tokens, [B] int32 lengths)`.

    Args:
        prompts: B lists of token ids (each non-empty).
        pad_id: the padding id.
        length: P; default the longest prompt (a fixed P avoids recompiles).
    """
    lengths = np.array([len(p) for p in prompts], np.int32)
    if len(prompts) == 0 or lengths.min() < 1:
        raise ValueError("prompts must be a non-empty list of non-empty token lists")
    p = int(lengths.max()) if length is None else int(length)
    if lengths.max() > p:
        raise ValueError(f"length={length} is shorter than the longest prompt "
                         f"({lengths.max()} tokens)")
    out = np.full((len(prompts), p), pad_id, np.int32)
    for i, toks in enumerate(prompts):
        out[i, p - len(toks):] = np.asarray(toks, np.int32)
    return out, lengths


def full_sequences(prompt_tokens_bp: jax.Array, prompt_lengths_b: jax.Array,
                   out: SampleOutput) -> tuple[jax.Array, jax.Array]:
    """Joins prompts and completions for `models.token_logprobs`.

    Args:
        prompt_tokens_bp: `[B, P]` the left-padded prompts given to `sample`.
        prompt_lengths_b: `[B]` their lengths.
        out: what `sample` returned.

    Returns:
        `(tokens_bt, attention_mask_bt)`, both `[B, P + N]`. Then
        `token_logprobs(model, tokens_bt, attention_mask_bt, temperature=t)[:, P:]`
        equals `out.logprobs`, and `out.completion_mask` masks it.
    """
    p = prompt_tokens_bp.shape[1]
    tokens_bt = jnp.concatenate(
        [jnp.asarray(prompt_tokens_bp, jnp.int32), out.tokens], axis=1)
    mask_bt = jnp.concatenate([prompt_mask(prompt_lengths_b, p), out.completion_mask],
                              axis=1)
    return tokens_bt, mask_bt


def _filter_logits(logits_bv, *, top_k, top_p):
    """Sets to -inf every logit outside the top-k and outside the top-p nucleus."""
    neg_inf = jnp.array(-jnp.inf, logits_bv.dtype)
    if top_k is not None:
        kth_b = jax.lax.top_k(logits_bv, top_k)[0][:, -1]
        logits_bv = jnp.where(logits_bv >= kth_b[:, None], logits_bv, neg_inf)
    if top_p is not None:
        sorted_bv = jnp.sort(logits_bv, axis=-1)[:, ::-1]
        probs_bv = jax.nn.softmax(sorted_bv, axis=-1)
        # A token is kept when the mass strictly before it is below top_p, so
        # the most likely token is always kept.
        mass_before_bv = jnp.cumsum(probs_bv, axis=-1) - probs_bv
        keep_bv = mass_before_bv < top_p
        threshold_b = jnp.min(jnp.where(keep_bv, sorted_bv, jnp.inf), axis=-1)
        logits_bv = jnp.where(logits_bv >= threshold_b[:, None], logits_bv, neg_inf)
    return logits_bv


# Up to this many `[N, B, V]` noise values, all steps' Gumbel noise is drawn before the
# decode loop in one vectorised call; above it, each step draws its own.
_PREDRAW_MAX_ELEMENTS = 1 << 22


def _segment_sizes(num_prompt: int, num_slots: int) -> list[int]:
    """Cache sizes of the decode segments: P + 8, P + 16, P + 32, ..., then all slots."""
    sizes, extra = [], 8
    while num_prompt + extra < num_slots:
        sizes.append(num_prompt + extra)
        extra *= 2
    return sizes + [num_slots]


def _gumbel_bv(key, step, shape):
    """Step `step`'s noise: exactly what `jax.random.categorical(fold_in(key, step), .)` adds."""
    return jax.random.gumbel(jax.random.fold_in(key, step), shape, jnp.float32)


def _choose(noise_bv, logits_bv, *, temperature, top_k, top_p, greedy):
    """Picks one token per row; returns `(tokens_b, logp_b)`.

    `noise_bv` is `_gumbel_bv(key, step, [B, V])` (unused when greedy): the argmax of
    noise plus the filtered logits is `jax.random.categorical`'s draw, bit for bit.
    """
    scaled_bv = logits_bv.astype(jnp.float32) / temperature
    if greedy:
        tokens_b = jnp.argmax(scaled_bv, axis=-1)
    else:
        filtered_bv = _filter_logits(scaled_bv, top_k=top_k, top_p=top_p)
        tokens_b = jnp.argmax(noise_bv + filtered_bv, axis=-1)
    tokens_b = tokens_b.astype(jnp.int32)
    logp_bv = jax.nn.log_softmax(scaled_bv, axis=-1)
    logp_b = jnp.take_along_axis(logp_bv, tokens_b[:, None], axis=-1)[:, 0]
    return tokens_b, logp_b


@functools.partial(jax.jit, static_argnames=(
    "graphdef", "max_new_tokens", "top_k", "use_top_p", "greedy", "stop_tokens",
    "pad_id", "prompt_group_size"))
def _sample_jit(graphdef, state, key, prompt_tokens_bp, prompt_lengths_b,
                temperature, top_p, *, max_new_tokens, top_k, use_top_p, greedy,
                stop_tokens, pad_id, prompt_group_size):
    model = nnx.merge(graphdef, state)
    b, p = prompt_tokens_bp.shape
    n = max_new_tokens
    num_slots = p + n - 1  # the last sampled token is never fed back
    choose = functools.partial(_choose, temperature=temperature, top_k=top_k,
                               top_p=top_p if use_top_p else None, greedy=greedy)
    stop_arr = jnp.asarray(stop_tokens if stop_tokens else (-1,), jnp.int32)

    pad_count_b = p - prompt_lengths_b
    slot_p = jnp.arange(p)
    prompt_mask_bp = prompt_mask(prompt_lengths_b, p) > 0
    positions_bp = jnp.maximum(slot_p[None, :] - pad_count_b[:, None], 0)
    kv_mask_bs = jnp.concatenate(
        [prompt_mask_bp, jnp.ones((b, num_slots - p), jnp.bool_)], axis=1)
    g = prompt_group_size
    # Prefill one row per group of equal prompts, then repeat its cache to the group.
    sizes = _segment_sizes(p, num_slots)
    cache = init_cache(model.config, b // g, sizes[0])
    hidden, cache = model.decode(prompt_tokens_bp[::g], positions_bp[::g], cache,
                                 cache_index=0, kv_mask_bs=kv_mask_bs[::g, : sizes[0]])
    logits_bv = model.logits(hidden[:, -1])
    if g > 1:
        logits_bv = jnp.repeat(logits_bv, g, axis=0)
        cache = jax.tree.map(lambda x: jnp.repeat(x, g, axis=0), cache)

    vocab = logits_bv.shape[-1]
    predraw = not greedy and n * b * vocab <= _PREDRAW_MAX_ELEMENTS
    if predraw:
        # Threefry per step is a small loop of its own on XLA CPU (a fifth of a decode
        # step at batch 64); one vmapped call draws the same numbers for all steps.
        noise_nbv = jax.vmap(lambda i: _gumbel_bv(key, i, (b, vocab)))(jnp.arange(n))

    def emit(step, logits_bv, done_b, tokens_bn, logp_bn, mask_bn):
        if greedy:
            noise_bv = None
        elif predraw:
            noise_bv = jax.lax.dynamic_index_in_dim(noise_nbv, step, keepdims=False)
        else:
            noise_bv = _gumbel_bv(key, step, (b, vocab))
        tok_b, logp_b = choose(noise_bv, logits_bv)
        live_b = ~done_b
        tok_b = jnp.where(live_b, tok_b, pad_id)
        logp_b = jnp.where(live_b, logp_b, 0.0)
        done_b = done_b | (live_b & jnp.isin(tok_b, stop_arr))
        tokens_bn = jax.lax.dynamic_update_slice(tokens_bn, tok_b[:, None], (0, step))
        logp_bn = jax.lax.dynamic_update_slice(logp_bn, logp_b[:, None], (0, step))
        mask_bn = jax.lax.dynamic_update_slice(
            mask_bn, live_b.astype(jnp.int32)[:, None], (0, step))
        return tok_b, done_b, tokens_bn, logp_bn, mask_bn

    def body(carry: _Carry):
        # Feed the previous token (slot p + step - 1), then draw the next one.
        step = carry.step
        size = carry.cache.k[0].shape[2]
        positions_b1 = (prompt_lengths_b + step - 1)[:, None]
        hidden, cache = model.decode(carry.last_b[:, None], positions_b1, carry.cache,
                                     cache_index=p + step - 1,
                                     kv_mask_bs=kv_mask_bs[:, :size])
        logits_bv = model.logits(hidden[:, 0])
        outs = emit(step, logits_bv, carry.done_b, carry.tokens_bn, carry.logp_bn,
                    carry.mask_bn)
        return _Carry(step + 1, outs[0], cache, *outs[1:])

    first = emit(0, logits_bv, jnp.zeros((b,), jnp.bool_),
                 jnp.full((b, n), pad_id, jnp.int32), jnp.zeros((b, n), jnp.float32),
                 jnp.zeros((b, n), jnp.int32))
    out = _Carry(jnp.ones((), jnp.int32), first[0], cache, *first[1:])
    # Every row writes the same slot (left padding), so the decode runs in segments
    # whose cache holds only the slots written so far (static sizes), and attention
    # never reads the empty tail of the full-length cache.
    for j, size in enumerate(sizes):
        if j > 0:
            grow = ((0, 0), (0, 0), (0, size - sizes[j - 1]), (0, 0))
            out = out._replace(cache=jax.tree.map(lambda x: jnp.pad(x, grow), out.cache))
        limit = min(size - p + 1, n)  # steps whose fed slot p + step - 1 fits

        def cond(carry: _Carry, limit=limit):
            return (carry.step < limit) & ~jnp.all(carry.done_b)

        out = jax.lax.while_loop(cond, body, out)
    return SampleOutput(tokens=out.tokens_bn, logprobs=out.logp_bn,
                        completion_mask=out.mask_bn,
                        lengths=jnp.sum(out.mask_bn, axis=1),
                        stopped=out.done_b)


def sample(model, key: jax.Array, prompt_tokens_bp: jax.Array,
           prompt_lengths_b: jax.Array, *, max_new_tokens: int,
           temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, greedy: bool = False,
           stop_tokens: Sequence[int] = (), pad_id: int = 0,
           prompt_group_size: int = 1) -> SampleOutput:
    """Samples completions of a batch of left-padded prompts.

    Compiled once per (model structure, shapes, static knobs); `temperature`
    and `top_p` values are traced, so changing them does not recompile. Usable
    inside a jitted function when `model` is a `(graphdef, state)` pair.

    Args:
        model: a `Transformer`, or a `(graphdef, state)` pair from `nnx.split`.
        key: PRNG key; step i uses `jax.random.fold_in(key, i)`.
        prompt_tokens_bp: `[B, P]` int prompts, LEFT-padded (see `left_pad`).
        prompt_lengths_b: `[B]` int true prompt lengths, each in 1..P.
        max_new_tokens: N, the most tokens generated per row.
        temperature: positive divisor of the logits (also used for log-probs).
        top_k: if set, draw only among the k largest logits.
        top_p: if set, draw only from the smallest set of tokens whose
            probability (after temperature and top-k) reaches top_p.
        greedy: take the argmax instead of sampling.
        stop_tokens: ids that end a row (the stop token itself is kept).
        pad_id: id written after a row ends.
        prompt_group_size: G; rows come in groups of G equal prompts (rows
            `i * G .. i * G + G - 1`), as for GRPO. Each group's prompt is
            prefilled once and its cache repeated to the G rows; only the
            first row of a group is read. The draws equal those of G = 1.

    Returns:
        `SampleOutput` with `[B, N]` tokens, log-probs and completion mask,
        `[B]` lengths and stopped flags.
    """
    if isinstance(model, nnx.Module):
        graphdef, state = nnx.split(model)
    elif isinstance(model, (tuple, list)) and len(model) == 2:
        graphdef, state = model
    else:
        raise ValueError("model must be an nnx.Module or a (graphdef, state) pair, "
                         f"got {type(model)}")
    vocab_size = None
    config = getattr(model, "config", None)
    if config is not None:
        vocab_size = config.vocab_size
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be a positive int")
    if not (isinstance(temperature, (int, float, np.floating)) and temperature > 0):
        raise ValueError(f"temperature={temperature!r} must be a float > 0 "
                         "(use greedy=True for argmax decoding; the log-probs are "
                         "still those of softmax(logits / temperature))")
    if top_k is not None:
        if not isinstance(top_k, (int, np.integer)) or top_k < 1 or (
                vocab_size is not None and top_k > vocab_size):
            raise ValueError(f"top_k={top_k!r} must be None or an int in "
                             f"1..vocab_size ({vocab_size})")
        top_k = int(top_k)
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p={top_p!r} must be None or in (0, 1]")
    try:
        stop_tokens = tuple(int(t) for t in stop_tokens)
    except TypeError as err:
        raise ValueError(f"stop_tokens={stop_tokens!r} must be a sequence of ints") from err
    dtype = getattr(prompt_tokens_bp, "dtype", None) or np.asarray(prompt_tokens_bp).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"prompt_tokens_bp has dtype {dtype}; token ids must be ints")
    prompt_tokens_bp = jnp.asarray(prompt_tokens_bp, jnp.int32)
    prompt_lengths_b = jnp.asarray(prompt_lengths_b, jnp.int32)
    chex.assert_rank(prompt_tokens_bp, 2)
    if prompt_tokens_bp.shape[0] == 0:
        raise ValueError(f"prompt_tokens_bp has shape {prompt_tokens_bp.shape}: no prompts "
                         "(need at least one row)")
    if (not isinstance(prompt_group_size, (int, np.integer)) or prompt_group_size < 1
            or prompt_tokens_bp.shape[0] % prompt_group_size):
        raise ValueError(f"prompt_group_size={prompt_group_size!r} must be a positive int "
                         f"dividing the batch ({prompt_tokens_bp.shape[0]} rows)")
    chex.assert_rank(prompt_lengths_b, 1)
    if prompt_lengths_b.shape[0] != prompt_tokens_bp.shape[0]:
        raise ValueError(f"prompt_lengths_b has shape {prompt_lengths_b.shape}, "
                         f"expected ({prompt_tokens_bp.shape[0]},)")
    if not isinstance(prompt_lengths_b, jax.core.Tracer):
        lengths = np.asarray(prompt_lengths_b)
        if lengths.min() < 1 or lengths.max() > prompt_tokens_bp.shape[1]:
            raise ValueError("prompt_lengths_b must lie in 1..P="
                             f"{prompt_tokens_bp.shape[1]}, got {lengths.tolist()}")
        if vocab_size is not None and not isinstance(prompt_tokens_bp, jax.core.Tracer):
            # Out-of-range ids are clamped by the embedding lookup: a silent wrong prompt.
            tokens = np.asarray(prompt_tokens_bp)
            p = tokens.shape[1]
            real = np.arange(p)[None, :] >= p - lengths[:, None]
            bad = real & ((tokens < 0) | (tokens >= vocab_size))
            if bad.any():
                raise ValueError(f"prompt_tokens_bp holds ids {sorted(set(tokens[bad].tolist()))[:8]} "
                                 f"outside 0..vocab_size-1 ({vocab_size - 1})")
    return _sample_jit(
        graphdef, state, key, prompt_tokens_bp, prompt_lengths_b,
        jnp.asarray(temperature, jnp.float32),
        jnp.asarray(1.0 if top_p is None else top_p, jnp.float32),
        max_new_tokens=int(max_new_tokens), top_k=top_k, use_top_p=top_p is not None,
        greedy=bool(greedy), stop_tokens=stop_tokens, pad_id=int(pad_id),
        prompt_group_size=int(prompt_group_size))
