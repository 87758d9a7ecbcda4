"""Token log-probs and entropies from logits against a numpy log-softmax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def _np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_token_logprobs_hand_worked():
    # Uniform logits over 4 tokens: log(1/4); logits (0, log 3) over 2 tokens: log(3/4).
    logits = jnp.array([[[0.0, 0.0, 0.0, 0.0], [0.0, np.log(3.0), -1e9, -1e9]]])
    tokens = jnp.array([[2, 1]])
    np.testing.assert_allclose(
        losses.token_logprobs(logits, tokens), [[np.log(0.25), np.log(0.75)]], rtol=1e-6
    )
    np.testing.assert_allclose(
        losses.entropy_from_logits(logits),
        [[np.log(4.0), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))]],
        rtol=1e-6,
    )


def test_matches_numpy_with_temperature(x64):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)) * 3
    tokens = rng.integers(0, 7, size=(2, 3))
    for temperature in (1.0, 0.7):
        logp_ref = _np_log_softmax(logits / temperature)
        expected_logp = np.take_along_axis(logp_ref, tokens[..., None], axis=-1)[..., 0]
        expected_entropy = -np.sum(np.exp(logp_ref) * logp_ref, axis=-1)
        logp = losses.token_logprobs(jnp.asarray(logits), jnp.asarray(tokens), temperature=temperature)
        entropy = losses.entropy_from_logits(jnp.asarray(logits), temperature=temperature)
        both = losses.token_logprobs_and_entropy(
            jnp.asarray(logits), jnp.asarray(tokens), temperature=temperature
        )
        np.testing.assert_allclose(logp, expected_logp, rtol=1e-12)
        np.testing.assert_allclose(entropy, expected_entropy, rtol=1e-12)
        np.testing.assert_allclose(both[0], expected_logp, rtol=1e-12)
        np.testing.assert_allclose(both[1], expected_entropy, rtol=1e-12)


def test_gradients_match_softmax_formulas(x64):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 5))
    tokens = rng.integers(0, 5, size=(2, 3))
    probs = np.exp(_np_log_softmax(logits))
    grad = jax.grad(lambda z: jnp.sum(losses.token_logprobs(z, jnp.asarray(tokens))))(
        jnp.asarray(logits)
    )
    np.testing.assert_allclose(grad, np.eye(5)[tokens] - probs, atol=1e-12)
    # dH/dz_v = -p_v (z_v - sum_u p_u z_u)
    centred = logits - np.sum(probs * logits, axis=-1, keepdims=True)
    grad_h = jax.grad(lambda z: jnp.sum(losses.entropy_from_logits(z)))(jnp.asarray(logits))
    np.testing.assert_allclose(grad_h, -probs * centred, atol=1e-12)


def test_bfloat16_logits_are_upcast():
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(1, 2, 9)), dtype=jnp.bfloat16)
    tokens = jnp.array([[3, 4]])
    logp = losses.token_logprobs(logits, tokens)
    assert logp.dtype == jnp.float32
    expected = np.take_along_axis(
        _np_log_softmax(np.asarray(logits.astype(jnp.float32), np.float64)), np.asarray(tokens)[..., None], -1
    )[..., 0]
    np.testing.assert_allclose(logp, expected, rtol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="tokens has shape"):
        losses.token_logprobs(jnp.zeros((2, 3, 4)), jnp.zeros((2, 4), jnp.int32))
    with pytest.raises(ValueError, match="temperature=0"):
        losses.entropy_from_logits(jnp.zeros((2, 3, 4)), temperature=0)


def test_masked_vocabulary_entries_are_allowed():
    # Top-k style masking: -inf logits have probability 0 and must not give NaN.
    logits = jnp.array([[[0.0, 1.0, -jnp.inf, -jnp.inf]]])
    value, grad = jax.value_and_grad(lambda z: jnp.sum(losses.entropy_from_logits(z)))(logits)
    p = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    h = -(p * np.log(p)).sum()
    np.testing.assert_allclose(value, h, rtol=1e-6)
    # dH/dz_i = -p_i (log p_i + H) on the allowed entries, exactly 0 on the masked ones.
    np.testing.assert_allclose(np.asarray(grad)[0, 0], [*(-p * (np.log(p) + h)), 0.0, 0.0], atol=1e-7)
    logp, entropy = losses.token_logprobs_and_entropy(logits, jnp.array([[1]]))
    np.testing.assert_allclose(logp, [[np.log(p[1])]], rtol=1e-6)
    np.testing.assert_allclose(entropy, [[h]], rtol=1e-6)


def test_sequence_logprobs():
    logp = jnp.array([[-1.0, -2.0, np.nan], [-0.5, np.inf, -0.5], [1.0, 1.0, 1.0]])
    mask = jnp.array([[1, 1, 0], [1, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(losses.sequence_logprobs(logp, mask), [-3.0, -1.0, 0.0])
    np.testing.assert_allclose(
        losses.sequence_logprobs(logp, mask, average=True), [-1.5, -0.5, 0.0]
    )
    grad = jax.grad(lambda x: jnp.sum(losses.sequence_logprobs(x, mask)))(logp)
    np.testing.assert_array_equal(grad, mask)
