"""Sampler: exact log-probs, sampling statistics, truncation, stop tokens, padding."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from symbiosis_jax import models, sampling

# One layer keeps compiles short; multi-layer caches are covered by
# tests/models (cached decode, HF greedy parity).
CFG = models.TransformerConfig(vocab_size=16, num_layers=1, embed_dim=32, num_heads=4,
                               num_kv_heads=2, head_dim=8, mlp_dim=48, qkv_bias=True)
PROMPTS = [[3, 4, 5], [7], [9, 10, 11, 12, 13], [6, 6], [1, 2, 3, 4], [15, 14, 13]]


def _numpy_model(cfg, seed=0, scale=1.0):
    """A model with numpy-drawn weights: no JAX RNG compile (slow on a busy CPU).

    Norm scales are near 1; other weights are 0.02 * scale * N(0, 1). Larger
    `scale` gives peaked, context-dependent logits, so comparisons are not
    trivially met by near-uniform outputs.
    """
    graphdef, state = nnx.split(nnx.eval_shape(
        lambda: models.Transformer(cfg, rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(seed)

    def draw(path, x):
        z = rng.normal(size=x.shape).astype(np.float32)
        if "norm" in jax.tree_util.keystr(path):
            return jnp.asarray(1.0 + 0.1 * z)
        return jnp.asarray(0.02 * scale * z)

    return nnx.merge(graphdef, jax.tree_util.tree_map_with_path(draw, state))


@functools.lru_cache(maxsize=None)
def _model(scale=6.0):
    return _numpy_model(CFG, 0, scale)


@functools.lru_cache(maxsize=None)
def _jitted_logits():
    graphdef, state = nnx.split(_model())
    fwd = jax.jit(lambda s, t, m: nnx.merge(graphdef, s)(t, None, m))
    return lambda t, m: np.asarray(fwd(state, jnp.asarray(t), jnp.asarray(m)),
                                   np.float64)


@functools.partial(nnx.jit, static_argnames=("temperature",))
def _logprobs(model, toks, mask, temperature):
    return models.token_logprobs(model, toks, mask, temperature=temperature)


def _full_sequences(prompts_bp, lengths_b, out):
    p = prompts_bp.shape[1]
    prompt_mask = (np.arange(p)[None] >= (p - np.asarray(lengths_b))[:, None])
    toks = np.concatenate([prompts_bp, np.asarray(out.tokens)], axis=1)
    mask = np.concatenate([prompt_mask.astype(np.int32),
                           np.asarray(out.completion_mask)], axis=1)
    return toks, mask


@pytest.mark.parametrize("kwargs", [
    dict(temperature=1.0),
    dict(temperature=0.7, top_k=5, top_p=0.9, stop_tokens=(2,)),
], ids=["t1", "t0.7-topk-topp-stop"])
def test_sampler_logprobs_equal_bridge(kwargs):
    model = _model()
    prompts, lengths = sampling.left_pad(PROMPTS, pad_id=0)
    out = sampling.sample(model, jax.random.key(1), prompts, lengths, max_new_tokens=10,
                          pad_id=0, **kwargs)
    toks, mask = sampling.full_sequences(prompts, lengths, out)
    np.testing.assert_array_equal((toks, mask), _full_sequences(prompts, lengths, out))
    logp = _logprobs(model, toks, mask, temperature=kwargs["temperature"])
    got = np.asarray(out.logprobs)
    np.testing.assert_allclose(got, np.asarray(logp)[:, prompts.shape[1]:], atol=1e-5,
                               rtol=1e-5)
    assert np.all(got[np.asarray(out.completion_mask) == 0] == 0)
    assert got.min() < -0.5  # real sampled tokens, not only near-certain ones


def test_temperature_one_matches_softmax_chi_square():
    model = _model()
    n = 3000
    prompts = np.tile(np.array([[3, 8, 5]], np.int32), (n, 1))
    lengths = np.full((n,), 3, np.int32)
    out = sampling.sample(model, jax.random.key(7), prompts, lengths, max_new_tokens=1)
    counts = np.bincount(np.asarray(out.tokens)[:, 0], minlength=CFG.vocab_size)
    logits = _jitted_logits()(prompts[:1], np.ones((1, 3), np.int32))[0, -1]

    def p_value(temperature):
        probs = np.exp(logits / temperature - np.logaddexp.reduce(logits / temperature))
        expected = probs * n
        big = expected >= 5  # pool the rare tokens into one bin
        obs = np.append(counts[big], counts[~big].sum())
        exp = np.append(expected[big], expected[~big].sum())
        if exp[-1] == 0:
            obs, exp = obs[:-1], exp[:-1]
        return stats.chisquare(obs, exp).pvalue

    assert p_value(1.0) > 1e-3
    # The test has power: the same counts reject a slightly different temperature.
    assert p_value(1.3) < 1e-6
    assert (counts > 0).sum() >= 4


def test_top_k_and_top_p_never_emit_excluded_tokens():
    model = _model()
    prompts, lengths = sampling.left_pad(PROMPTS * 8, pad_id=0)
    logits_fn = _jitted_logits()
    p = prompts.shape[1]

    def emitted(out):
        toks, mask = _full_sequences(prompts, lengths, out)
        logits = logits_fn(toks, mask)[:, p - 1:-1]  # predicts each new token
        keep = np.asarray(out.completion_mask) == 1
        return np.asarray(out.tokens)[keep], logits[keep]

    free_tok, free_logits = emitted(sampling.sample(
        model, jax.random.key(3), prompts, lengths, max_new_tokens=8))
    free_rank = (free_logits > free_logits[np.arange(len(free_tok)), free_tok][:, None]
                 ).sum(-1)
    assert free_rank.max() >= 3  # without truncation, low-ranked tokens do appear

    tok, logits = emitted(sampling.sample(model, jax.random.key(3), prompts, lengths,
                                          max_new_tokens=8, top_k=3))
    rank = (logits > logits[np.arange(len(tok)), tok][:, None]).sum(-1)
    assert rank.max() <= 2 and len(tok) == prompts.shape[0] * 8

    top_p = 0.6
    tok, logits = emitted(sampling.sample(model, jax.random.key(3), prompts, lengths,
                                          max_new_tokens=8, top_p=top_p))
    probs = np.exp(logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True))
    order = np.argsort(-probs, axis=-1)
    sorted_p = np.take_along_axis(probs, order, axis=-1)
    in_nucleus = (np.cumsum(sorted_p, -1) - sorted_p) < top_p
    allowed = np.zeros_like(in_nucleus)
    np.put_along_axis(allowed, order, in_nucleus, axis=-1)
    assert allowed[np.arange(len(tok)), tok].all()
    assert (~allowed).sum() > len(tok)  # the nucleus really excluded tokens


def test_stop_tokens_end_rows():
    model = _model()
    prompts, lengths = sampling.left_pad(PROMPTS * 4, pad_id=0)
    stop = (4, 9, 12)
    n = 16
    out = sampling.sample(model, jax.random.key(5), prompts, lengths, max_new_tokens=n,
                          stop_tokens=stop, pad_id=0)
    toks, mask = np.asarray(out.tokens), np.asarray(out.completion_mask)
    logp, lens, stopped = np.asarray(out.logprobs), np.asarray(out.lengths), np.asarray(
        out.stopped)
    stop_at = []
    for b in range(toks.shape[0]):
        hits = np.flatnonzero(np.isin(toks[b], stop))
        end = hits[0] + 1 if len(hits) else n
        stop_at.append(end)
        assert stopped[b] == bool(len(hits)) and lens[b] == end
        assert np.all(mask[b, :end] == 1) and np.all(mask[b, end:] == 0)
        assert np.all(toks[b, end:] == 0) and np.all(logp[b, end:] == 0)
    assert stopped.sum() >= toks.shape[0] // 2 and len(set(stop_at)) >= 3


def test_prompt_padding_does_not_change_completions():
    model = _model()
    key = jax.random.key(11)
    short, lengths = sampling.left_pad(PROMPTS, pad_id=0)
    long, lengths2 = sampling.left_pad(PROMPTS, pad_id=0, length=9)
    a = sampling.sample(model, key, short, lengths, max_new_tokens=10)
    b = sampling.sample(model, key, long, lengths2, max_new_tokens=10)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
    assert np.asarray(a.lengths).tolist() == [10] * len(PROMPTS)


def test_sample_inside_jit_and_greedy_is_argmax():
    model = _model()
    graphdef, state = nnx.split(model)
    prompts, lengths = sampling.left_pad(PROMPTS, pad_id=0)

    @jax.jit
    def run(state, key):
        return sampling.sample((graphdef, state), key, prompts, lengths,
                               max_new_tokens=5, greedy=True)

    out = run(state, jax.random.key(0))
    toks = np.asarray(out.tokens)
    full, mask = _full_sequences(prompts, lengths, out)
    p = prompts.shape[1]
    argmax = _jitted_logits()(full, mask)[:, p - 1:-1].argmax(-1)
    np.testing.assert_array_equal(toks, argmax)


@pytest.mark.parametrize("kwargs,match", [
    (dict(temperature=0.0), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=17), "top_k"),
    (dict(top_p=1.5), "top_p"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(stop_tokens=3), "stop_tokens"),
])
def test_bad_arguments_raise_before_compiling(kwargs, match):
    prompts, lengths = sampling.left_pad(PROMPTS, pad_id=0)
    kwargs = {"max_new_tokens": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        sampling.sample(_model(), jax.random.key(0), prompts, lengths, **kwargs)
    with pytest.raises(ValueError, match="prompt_lengths_b"):
        sampling.sample(_model(), jax.random.key(0), prompts, np.zeros(6, np.int32),
                        max_new_tokens=4)
    with pytest.raises(ValueError, match="longest prompt"):
        sampling.left_pad(PROMPTS, pad_id=0, length=2)


def test_bad_prompt_tokens_raise_before_compiling():
    # Were: ids outside the vocabulary clamped silently, floats truncated silently, and an
    # empty batch numpy's "zero-size array to reduction operation minimum".
    prompts, lengths = sampling.left_pad(PROMPTS, pad_id=0)
    bad = np.asarray(prompts).copy()
    bad[0, -1] = 99
    with pytest.raises(ValueError, match=r"prompt_tokens_bp holds ids \[99\] outside 0..vocab_size-1"):
        sampling.sample(_model(), jax.random.key(0), bad, lengths, max_new_tokens=4)
    with pytest.raises(ValueError, match=r"prompt_tokens_bp has dtype float32; token ids must be ints"):
        sampling.sample(_model(), jax.random.key(0), np.asarray(prompts, np.float32), lengths,
                        max_new_tokens=4)
    with pytest.raises(ValueError, match=r"prompt_tokens_bp has shape \(0, 3\): no prompts"):
        sampling.sample(_model(), jax.random.key(0), np.zeros((0, 3), np.int32),
                        np.zeros((0,), np.int32), max_new_tokens=4)


def test_prompt_groups_prefill_once_and_draw_the_same():
    model = _model()
    prompts, lengths = sampling.left_pad(PROMPTS[:3], pad_id=0)
    g = 4
    prompts, lengths = np.repeat(prompts, g, 0), np.repeat(lengths, g, 0)
    kw = dict(max_new_tokens=6, temperature=0.8, stop_tokens=(2,), pad_id=0)
    plain = sampling.sample(model, jax.random.key(3), prompts, lengths, **kw)
    grouped = sampling.sample(model, jax.random.key(3), prompts, lengths,
                              prompt_group_size=g, **kw)
    np.testing.assert_array_equal(grouped.tokens, plain.tokens)
    np.testing.assert_array_equal(grouped.completion_mask, plain.completion_mask)
    np.testing.assert_allclose(grouped.logprobs, plain.logprobs, atol=1e-5, rtol=1e-5)
    # The rows of a group differ (independent draws from one prompt).
    assert len({tuple(r) for r in np.asarray(plain.tokens)[:g]}) > 1
    with pytest.raises(ValueError, match="prompt_group_size"):
        sampling.sample(model, jax.random.key(3), prompts, lengths, prompt_group_size=5,
                        **kw)


def test_predrawn_noise_equals_per_step_categorical(monkeypatch):
    # Step i's draw is jax.random.categorical(fold_in(key, i), filtered logits), whether
    # the Gumbel noise of all steps is drawn before the loop or inside it.
    from symbiosis_jax.sampling import sampler as sampler_module

    model = _model()
    prompts, lengths = sampling.left_pad(PROMPTS, pad_id=0)
    kw = dict(max_new_tokens=5, temperature=0.9, top_k=6, pad_id=0)
    pre = sampling.sample(model, jax.random.key(7), prompts, lengths, **kw)
    monkeypatch.setattr(sampler_module, "_PREDRAW_MAX_ELEMENTS", 0)
    per_step = sampling.sample(model, jax.random.key(7), prompts, lengths, **kw)
    np.testing.assert_array_equal(pre.tokens, per_step.tokens)
    np.testing.assert_array_equal(pre.logprobs, per_step.logprobs)
    # First step by hand: categorical over the top-6 tempered logits of the prompt.
    logits = _jitted_logits()(prompts, sampling.prompt_mask(lengths, prompts.shape[1]))
    scaled = jnp.asarray(logits[:, -1] / 0.9, jnp.float32)
    kth = jax.lax.top_k(scaled, 6)[0][:, -1:]
    want = jax.random.categorical(jax.random.fold_in(jax.random.key(7), 0),
                                  jnp.where(scaled >= kth, scaled, -jnp.inf))
    np.testing.assert_array_equal(np.asarray(pre.tokens)[:, 0], np.asarray(want))
