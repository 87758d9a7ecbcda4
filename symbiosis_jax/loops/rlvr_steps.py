"""The jitted pieces of the RLVR loop: sampling, the SFT step and the policy update.

Everything here is a pure function of arrays; `rlvr._Runner._build_jits` closes them over the model's
graphdef, the optimizer and the static hyperparameters, and jits them with explicit shardings
(batch on the mesh's data axes, parameters per their logical axes) and donated state.

Batch layout: `B = P * G` rows, the `G` samples of a prompt contiguous. Token layout per row:
`[left-padded prompt (P_len) | completion (N)]`, as produced by `symbiosis_jax.sampling.sample`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import chex
import flax
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from symbiosis_jax import losses, models, sampling
from symbiosis_jax.models import logprobs as model_logprobs


@flax.struct.dataclass
class TrainState:
    """Everything the update changes, plus the frozen reference.

    Attributes:
        step: `[]` int32, RL updates done.
        params: policy parameters (`nnx.State`).
        opt_state: optax state of `params`.
        ref_params: reference-policy parameters (`nnx.State`), or an empty dict.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    ref_params: Any


@flax.struct.dataclass
class PromptBatch:
    """Left-padded prompts.

    Attributes:
        tokens: `[B, P_len]` int32 prompt ids, left-padded.
        lengths: `[B]` int32 true prompt lengths.
    """

    tokens: jax.Array
    lengths: jax.Array


@flax.struct.dataclass
class RolloutBatch:
    """What the update consumes: prompts, sampled completions and their rewards.

    Attributes:
        prompt_tokens: `[B, P_len]` int32, left-padded.
        prompt_lengths: `[B]` int32.
        completion_tokens: `[B, N]` int32.
        completion_mask: `[B, N]` int32, 1 = generated token (eos included).
        sample_logp: `[B, N]` float32 behaviour log-probs from the sampler.
        rewards: `[B]` float32 (shaped) rewards; rows grouped `G` per prompt.
    """

    prompt_tokens: jax.Array
    prompt_lengths: jax.Array
    completion_tokens: jax.Array
    completion_mask: jax.Array
    sample_logp: jax.Array
    rewards: jax.Array


@flax.struct.dataclass
class SFTBatch:
    """Prompt plus demonstration.

    Attributes:
        prompt_tokens: `[B, P_len]` int32, left-padded.
        prompt_lengths: `[B]` int32.
        completion_tokens: `[B, N]` int32 demonstration (eos included), right-padded.
        completion_mask: `[B, N]` int32, 1 = demonstration token.
    """

    prompt_tokens: jax.Array
    prompt_lengths: jax.Array
    completion_tokens: jax.Array
    completion_mask: jax.Array


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """Static settings of the jitted steps (hashable)."""

    group_size: int
    num_iterations: int
    num_minibatches: int
    temperature: float
    normalize_std: bool
    use_reference: bool
    max_new_tokens: int
    eos_id: int
    pad_id: int
    # Rows come in groups of `group_size` with one prompt: run each prompt through the
    # model once (sampler prefill and update), not once per row. Used by the update when
    # it takes one full-batch step (num_iterations == num_minibatches == 1); minibatches
    # drawn from shuffled rows do not keep groups together.
    share_prompt: bool = False


def completion_logprobs(graphdef, params, prompt_tokens_bp, prompt_lengths_b, completion_bn,
                        completion_mask_bn, *, temperature: float, return_entropy: bool = False):
    """Log-probs (and entropies) of the completion tokens under `params`.

    Args:
        graphdef: the model's graph definition.
        params: its parameters.
        prompt_tokens_bp: `[B, P_len]` left-padded prompts.
        prompt_lengths_b: `[B]` prompt lengths.
        completion_bn: `[B, N]` completion tokens.
        completion_mask_bn: `[B, N]`, 1 = completion token.
        temperature: the sampling temperature (log-probs of `softmax(logits / temperature)`).
        return_entropy: also return per-token entropies.

    Returns:
        `logp_bn` `[B, N]` (zero where the mask is 0), or `(logp_bn, entropy_bn)`.
    """
    chex.assert_rank([prompt_tokens_bp, completion_bn, completion_mask_bn], 2)
    num_prompt = prompt_tokens_bp.shape[1]
    prompt_mask_bp = models.prompt_mask(prompt_lengths_b, num_prompt)
    tokens_bt = jnp.concatenate([prompt_tokens_bp, completion_bn], axis=1)
    mask_bt = jnp.concatenate([prompt_mask_bp, completion_mask_bn.astype(jnp.int32)], axis=1)
    model = nnx.merge(graphdef, params)
    out = models.token_logprobs(model, tokens_bt, mask_bt, temperature=temperature,
                                return_entropy=return_entropy)
    if return_entropy:
        return out[0][:, num_prompt:], out[1][:, num_prompt:]
    return out[:, num_prompt:]


def grouped_completion_logprobs(graphdef, params, prompt_tokens_bp, prompt_lengths_b,
                                completion_bn, completion_mask_bn, *, group_size: int,
                                temperature: float, return_entropy: bool = False):
    """`completion_logprobs` for rows grouped `group_size` per prompt, each prompt run once.

    Same arguments and result as `completion_logprobs`; rows `i * G .. i * G + G - 1` must
    share their prompt (only the first row of each group is read). See
    `symbiosis_jax.models.logprobs.grouped_completion_logprobs`.
    """
    chex.assert_rank([prompt_tokens_bp, completion_bn, completion_mask_bn], 2)
    model = nnx.merge(graphdef, params)
    return model_logprobs.grouped_completion_logprobs(
        model, prompt_tokens_bp[::group_size], prompt_lengths_b[::group_size], completion_bn,
        completion_mask_bn, group_size=group_size, temperature=temperature,
        return_entropy=return_entropy)


def sample_rollouts(graphdef, params, key, prompts: PromptBatch, *, settings: StepSettings,
                    greedy: bool = False, prompt_group_size: int = 1) -> sampling.SampleOutput:
    """Samples one completion per prompt row with the compiled KV-cache sampler.

    `prompt_group_size=G` says the rows come in groups of G equal prompts (as the RL batch
    does); each group's prompt is then prefilled once (see `sampling.sample`).
    """
    return sampling.sample((graphdef, params), key, prompts.tokens, prompts.lengths,
                           max_new_tokens=settings.max_new_tokens,
                           temperature=settings.temperature, greedy=greedy,
                           stop_tokens=(settings.eos_id,), pad_id=settings.pad_id,
                           prompt_group_size=prompt_group_size)


def sft_step(graphdef, optimizer, params, opt_state, batch: SFTBatch):
    """One supervised step: mean negative log-likelihood of the demonstration tokens."""

    def loss_fn(p):
        logp_bn = completion_logprobs(graphdef, p, batch.prompt_tokens, batch.prompt_lengths,
                                      batch.completion_tokens, batch.completion_mask,
                                      temperature=1.0)
        return -losses.masked_mean(logp_bn, batch.completion_mask.astype(jnp.float32))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, {"sft_loss": loss, "sft_grad_norm": optax.global_norm(grads)}


def _reduce_metrics(metrics: dict) -> dict:
    """Averages metrics stacked over minibatch updates (min/max for ratio extremes)."""
    out = {}
    for k, v in metrics.items():
        if k.endswith("_min"):
            out[k] = jnp.min(v)
        elif k.endswith("_max"):
            out[k] = jnp.max(v)
        else:
            out[k] = jnp.mean(v)
    return out


def rl_update(graphdef, optimizer, loss_fn: Callable, settings: StepSettings,
              state: TrainState, batch: RolloutBatch, key: jax.Array):
    """Advantages, then `mu` passes of `num_minibatches` clipped-policy updates.

    With `mu = 1` the behaviour log-probs are the current ones with gradients stopped (ratio 1,
    as on-policy GRPO); with `mu > 1` they are the sampler's, so later passes are off-policy and
    the ratio and its clipping matter.

    Args:
        graphdef: model graph definition.
        optimizer: optax transformation.
        loss_fn: `(logp, old_logp, advantages, mask, *, ref_logp) -> (loss, metrics)`.
        settings: static settings.
        state: the train state.
        batch: rollouts, `B = P * G` rows.
        key: PRNG key for minibatch shuffling.

    Returns:
        `(state, metrics)`.
    """
    b = batch.rewards.shape[0]
    g = settings.group_size
    rewards_pg = batch.rewards.reshape(b // g, g)
    adv_b = losses.group_advantages(
        rewards_pg, normalize_std=settings.normalize_std).reshape(b)
    logp_fn = functools.partial(completion_logprobs, graphdef, temperature=settings.temperature)
    num_updates = settings.num_iterations * settings.num_minibatches
    if settings.share_prompt and num_updates == 1:
        logp_fn = functools.partial(grouped_completion_logprobs, graphdef, group_size=g,
                                    temperature=settings.temperature)
    data = {"prompt_tokens": batch.prompt_tokens, "prompt_lengths": batch.prompt_lengths,
            "completion": batch.completion_tokens, "mask": batch.completion_mask,
            "old_logp": batch.sample_logp, "adv": adv_b}
    if settings.use_reference:
        data["ref_logp"] = jax.lax.stop_gradient(logp_fn(
            state.ref_params, batch.prompt_tokens, batch.prompt_lengths,
            batch.completion_tokens, batch.completion_mask))

    def loss_of(params, mb):
        logp_bn, entropy_bn = logp_fn(params, mb["prompt_tokens"], mb["prompt_lengths"],
                                      mb["completion"], mb["mask"], return_entropy=True)
        # One update per batch is on-policy: the behaviour log-probs are the current ones (ratio
        # exactly 1). With several, each update after the first sees a policy that has moved
        # since sampling: the sampler's log-probs are the behaviour, and the clip acts.
        old = mb["old_logp"] if num_updates > 1 else jax.lax.stop_gradient(logp_bn)
        loss, metrics = loss_fn(logp_bn, old, mb["adv"], mb["mask"],
                                ref_logp=mb.get("ref_logp"))
        metrics = dict(metrics)
        metrics["entropy"] = losses.masked_mean(entropy_bn, mb["mask"].astype(jnp.float32))
        return loss, metrics

    grad_fn = jax.value_and_grad(loss_of, has_aux=True)
    mb_size = b // settings.num_minibatches
    if num_updates > 1:
        perms = [jax.random.permutation(jax.random.fold_in(key, i), b)
                 for i in range(settings.num_iterations)]
        order = jnp.concatenate(perms).reshape(num_updates, mb_size)
        stacked = jax.tree.map(lambda x: x[order], data)

    def one_update(carry, mb):
        params, opt_state = carry
        (_, metrics), grads = grad_fn(params, mb)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics["grad_norm"] = optax.global_norm(grads)
        return (params, opt_state), metrics

    if num_updates == 1:
        # No loop: a one-trip scan keeps XLA from fusing the update into the gradient.
        (params, opt_state), metrics = one_update((state.params, state.opt_state), data)
    else:
        (params, opt_state), metrics = jax.lax.scan(
            one_update, (state.params, state.opt_state), stacked)
    metrics = _reduce_metrics(metrics)
    metrics["advantage_abs_mean"] = jnp.mean(jnp.abs(adv_b))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, metrics
