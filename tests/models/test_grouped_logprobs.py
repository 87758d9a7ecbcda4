"""Prompt sharing: `grouped_completion_logprobs` equals the plain bridge, values and gradients."""

import functools
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from symbiosis_jax import models
from symbiosis_jax.models import logprobs

CFG = models.TransformerConfig(vocab_size=24, num_layers=2, embed_dim=32, num_heads=4,
                               num_kv_heads=2, head_dim=8, mlp_dim=48, rope_theta=500.0,
                               qkv_bias=True)
P, G, L, N = 3, 4, 6, 5


def _batch(seed=0):
    """Left-padded prompts of lengths 1..L, completions with masks of lengths 1..N."""
    rng = np.random.default_rng(seed)
    lengths = np.array([L, 1, 4], np.int32)
    prompts = np.zeros((P, L), np.int32)
    for i, n in enumerate(lengths):
        prompts[i, L - n:] = rng.integers(1, CFG.vocab_size, n)
    comp_len = np.array([N, 1, 3, N, 2, N, 4, 1, N, 3, 2, N])
    mask = (np.arange(N)[None] < comp_len[:, None]).astype(np.int32)
    comp = np.where(mask > 0, rng.integers(1, CFG.vocab_size, (P * G, N)), 0).astype(np.int32)
    return prompts, lengths, comp, mask


@functools.lru_cache(maxsize=None)
def _state():
    # Built in one compiled call: op by op, the model's init alone took 8 s.
    def init():
        _, state = nnx.split(models.Transformer(CFG, rngs=nnx.Rngs(3)))
        # Larger weights than the init so attention and SwiGLU are far from linear.
        return jax.tree.map(lambda x: x * 10.0 if x.ndim > 1 else x + 0.3, state)

    graphdef = nnx.graphdef(nnx.eval_shape(lambda: models.Transformer(CFG, rngs=nnx.Rngs(3))))
    return graphdef, jax.jit(init)()


@functools.partial(jax.jit, static_argnums=(0, 6))
def _plain(graphdef, state, prompts, lengths, comp, mask, temperature):
    """The bridge on `[repeat(prompt, G) | completion]`, completion columns."""
    prompts_b, lengths_b = np.repeat(prompts, G, 0), np.repeat(lengths, G, 0)
    prompt_mask = (np.arange(L)[None] >= (L - lengths_b)[:, None]).astype(np.int32)
    toks = jnp.concatenate([prompts_b, comp], axis=1)
    full_mask = jnp.concatenate([prompt_mask, mask], axis=1)
    logp, ent = models.token_logprobs(nnx.merge(graphdef, state), toks, full_mask,
                                      temperature=temperature, return_entropy=True)
    return logp[:, L:], ent[:, L:]


@functools.partial(jax.jit, static_argnums=(0, 6))
def _grouped(graphdef, state, prompts, lengths, comp, mask, temperature):
    return logprobs.grouped_completion_logprobs(
        nnx.merge(graphdef, state), prompts, lengths, comp, mask, group_size=G,
        temperature=temperature, return_entropy=True)


def test_grouped_logprobs_and_gradients_equal_bridge():
    # One temperature other than 1, so the division is checked too (1.0: the next test);
    # each temperature compiles all four functions again (a static argument).
    temperature = 0.7
    graphdef, state = _state()
    prompts, lengths, comp, mask = _batch()
    ref_logp, ref_ent = _plain(graphdef, state, prompts, lengths, comp, mask, temperature)
    logp, ent = _grouped(graphdef, state, prompts, lengths, comp, mask, temperature)
    np.testing.assert_allclose(logp, ref_logp, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ent, ref_ent, atol=1e-5, rtol=1e-5)
    assert np.all(np.asarray(logp)[mask == 0] == 0)
    assert float(jnp.min(logp)) < -1.0  # peaked, context-dependent predictions

    w = jnp.asarray(np.random.default_rng(1).normal(size=(P * G, N)), jnp.float32)

    def loss(fn, s):
        lp, en = fn(graphdef, s, prompts, lengths, comp, mask, temperature)
        return jnp.sum(lp * w) + 0.1 * jnp.sum(en)

    g_ref = jax.grad(lambda s: loss(_plain, s))(state)
    g_got = jax.grad(lambda s: loss(_grouped, s))(state)
    leaves = list(zip(jax.tree.leaves(g_ref), jax.tree.leaves(g_got)))
    assert len(leaves) == 2 + CFG.num_layers * 12 + 1
    for a, b in leaves:
        scale = float(jnp.abs(a).max())
        assert scale > 1e-4
        np.testing.assert_allclose(b, a, atol=1e-5 * scale, rtol=1e-4)


def test_single_new_token_and_bad_group_size():
    graphdef, state = _state()
    prompts, lengths, comp, mask = _batch()
    ref, _ = _plain(graphdef, state, prompts, lengths, comp[:, :1], mask[:, :1], 1.0)
    got, _ = _grouped(graphdef, state, prompts, lengths, comp[:, :1], mask[:, :1], 1.0)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="group_size"):
        logprobs.grouped_completion_logprobs(nnx.merge(graphdef, state), prompts, lengths,
                                             comp, mask, group_size=5)


def test_prompt_mask_hand_worked_and_bad_lengths():
    # Width 4: a length-2 prompt is padded by two slots on the left, 0 and 4 are the ends.
    np.testing.assert_array_equal(
        models.prompt_mask(np.array([2, 0, 4]), 4),
        [[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    # Traced lengths cannot be checked, but give the same mask.
    np.testing.assert_array_equal(
        jax.jit(models.prompt_mask, static_argnums=1)(jnp.array([1, 3]), 3),
        [[0, 0, 1], [1, 1, 1]])
    for bad in ([5], [-1, 2]):
        with pytest.raises(ValueError, match=r"prompt_lengths_b must lie in 0..4"):
            models.prompt_mask(np.array(bad), 4)
