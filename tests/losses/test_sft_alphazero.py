"""SFT cross-entropy and the AlphaZero loss against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def _np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_sft_hand_worked():
    # Uniform over 4 tokens: nll = log 4 on each of 3 valid tokens.
    logits = jnp.zeros((1, 4, 4))
    loss, m = losses.sft_loss(logits, jnp.array([[0, 1, 2, 3]]), jnp.array([[1, 1, 1, 0]]))
    np.testing.assert_allclose(loss, np.log(4.0), rtol=1e-6)
    np.testing.assert_allclose(m["perplexity"], 4.0, rtol=1e-5)
    np.testing.assert_allclose(m["num_tokens"], 3.0)


def test_sft_matches_numpy(x64):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7))
    targets = rng.integers(0, 7, size=(3, 5))
    mask = rng.random((3, 5)) < 0.7
    mask[0, 0] = True
    logp = _np_log_softmax(logits)
    nll = [-logp[b, t, targets[b, t]] for b in range(3) for t in range(5) if mask[b, t]]
    acc = [logits[b, t].argmax() == targets[b, t] for b in range(3) for t in range(5) if mask[b, t]]
    fn = jax.jit(lambda z: losses.sft_loss(z, jnp.asarray(targets), jnp.asarray(mask)))
    loss, m = fn(jnp.asarray(logits))
    np.testing.assert_allclose(loss, np.mean(nll), rtol=1e-12)
    np.testing.assert_allclose(m["token_accuracy"], np.mean(acc), rtol=1e-12)
    grad = jax.grad(lambda z: fn(z)[0])(jnp.asarray(logits))
    expected = (np.exp(logp) - np.eye(7)[targets]) * mask[..., None] / mask.sum()
    np.testing.assert_allclose(grad, expected, atol=1e-12)


def test_sft_padding_invariance():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 3, 5))
    targets = rng.integers(0, 5, size=(2, 3))
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    pad_logits = np.concatenate([logits, np.full((2, 2, 5), 1e4)], axis=1)
    pad_targets = np.concatenate([targets, np.zeros((2, 2), int)], axis=1)
    pad_mask = np.concatenate([mask, np.zeros((2, 2), int)], axis=1)

    @jax.jit
    def value_grad(z, y, m):
        return jax.value_and_grad(lambda z: losses.sft_loss(z, y, m)[0])(z)

    value, grad = value_grad(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
    value_p, grad_p = value_grad(jnp.asarray(pad_logits), jnp.asarray(pad_targets), jnp.asarray(pad_mask))
    np.testing.assert_allclose(value_p, value, rtol=1e-6)
    np.testing.assert_allclose(grad_p[:, :3], grad, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(grad_p[:, 3:], 0.0)


def _np_alphazero(logits, value, target_pi, target_v, legal, weights, cp, cv):
    total, wsum = 0.0, 0.0
    for b in range(logits.shape[0]):
        idx = [a for a in range(logits.shape[1]) if legal[b, a]]
        z = logits[b, idx]
        logp = z - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        ce = -sum(target_pi[b, a] * lp for a, lp in zip(idx, logp))
        total += weights[b] * (cp * ce + cv * (value[b] - target_v[b]) ** 2)
        wsum += weights[b]
    return total / wsum


def test_alphazero_matches_numpy(x64, fd_grad):
    rng = np.random.default_rng(1)
    batch, actions = 4, 6
    logits = rng.normal(size=(batch, actions))
    legal = rng.random((batch, actions)) < 0.6
    legal[:, 0] = True
    target = rng.random((batch, actions)) * legal
    target /= target.sum(1, keepdims=True)
    value = np.tanh(rng.normal(size=batch))
    target_v = rng.choice([-1.0, 0.0, 1.0], size=batch)
    weights = np.array([1.0, 0.5, 0.0, 2.0])
    garbage_logits = np.where(legal, logits, 1e4)  # illegal logits must not matter

    def jax_loss(z, v):
        return losses.alphazero_loss(
            z, v, jnp.asarray(target), jnp.asarray(target_v), jnp.asarray(legal),
            sample_weights=jnp.asarray(weights), policy_coef=1.0, value_coef=0.5,
        )[0]

    value_fn = jax.jit(jax.value_and_grad(jax_loss, argnums=(0, 1)))
    loss, (grad_z, grad_v) = value_fn(jnp.asarray(garbage_logits), jnp.asarray(value))
    ref = lambda z, v: _np_alphazero(z, v, target, target_v, legal, weights, 1.0, 0.5)
    np.testing.assert_allclose(loss, ref(logits, value), rtol=1e-12)
    expected_z = fd_grad(lambda z: ref(z, value), logits) * legal
    np.testing.assert_allclose(grad_z, expected_z, atol=1e-6)
    np.testing.assert_allclose(grad_v, fd_grad(lambda v: ref(logits, v), value), atol=1e-6)


def test_alphazero_hand_worked_and_metrics():
    # Two legal actions with equal logits (p = 1/2 each), target (1, 0) -> CE log 2.
    logits = jnp.array([[0.0, 0.0, 5.0]])
    legal = jnp.array([[True, True, False]])
    loss, m = losses.alphazero_loss(
        logits, jnp.array([0.5]), jnp.array([[1.0, 0.0, 0.0]]), jnp.array([1.0]), legal
    )
    np.testing.assert_allclose(m["policy_loss"], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(m["value_loss"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(loss, np.log(2.0) + 0.25, rtol=1e-6)
    np.testing.assert_allclose(m["policy_entropy"], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(m["target_entropy"], 0.0, atol=1e-7)
    np.testing.assert_allclose(m["policy_kl"], np.log(2.0), rtol=1e-6)


def test_alphazero_value_explained_variance_hand_worked():
    logits, legal = jnp.zeros((4, 2)), jnp.ones((4, 2), bool)
    policy = jnp.full((4, 2), 0.5)
    target_v, value = jnp.array([1.0, -1.0, 1.0, 1.0]), jnp.array([0.5, -0.5, 0.5, 0.0])
    _, m = losses.alphazero_loss(logits, value, policy, target_v, legal)
    # Squared errors 0.25, 0.25, 0.25, 1 (mean 0.4375); targets' mean 0.5, variance 0.75.
    np.testing.assert_allclose(m["value_loss"], 0.4375, rtol=1e-6)
    np.testing.assert_allclose(m["value_explained_variance"], 1.0 - 0.4375 / 0.75, rtol=1e-6)
    # Weights (1, 1, 0, 2): squared errors mean (0.25 + 0.25 + 2) / 4 = 0.625; targets' mean
    # 0.5 and variance (0.25 + 2.25 + 2 * 0.25) / 4 = 0.75.
    _, m = losses.alphazero_loss(logits, value, policy, target_v, legal,
                                 sample_weights=jnp.array([1.0, 1.0, 0.0, 2.0]))
    np.testing.assert_allclose(m["value_explained_variance"], 1.0 - 0.625 / 0.75, rtol=1e-6)
    # Predicting the mean explains nothing; targets that do not vary report 0.
    _, m = losses.alphazero_loss(logits, jnp.full(4, 0.5), policy, target_v, legal)
    np.testing.assert_allclose(m["value_explained_variance"], 0.0, atol=1e-6)
    _, m = losses.alphazero_loss(logits, value, policy, jnp.ones(4), legal)
    assert float(m["value_explained_variance"]) == 0.0


def test_alphazero_row_without_legal_actions_is_finite():
    logits = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    legal = jnp.array([[False, False], [True, True]])
    target = jnp.array([[0.0, 0.0], [0.5, 0.5]])
    loss, grad = jax.value_and_grad(
        lambda z: losses.alphazero_loss(z, jnp.zeros(2), target, jnp.zeros(2), legal)[0]
    )(logits)
    np.testing.assert_allclose(loss, np.log(2.0) / 2, rtol=1e-6)
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[0], 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="aggregation='sum'"):
        losses.sft_loss(jnp.zeros((1, 2, 3)), jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2)), aggregation="sum")
    with pytest.raises(ValueError, match="targets has shape"):
        losses.sft_loss(jnp.zeros((1, 2, 3)), jnp.zeros((1, 3), jnp.int32), jnp.ones((1, 2)))
    with pytest.raises(ValueError, match="legal_action_mask has shape"):
        losses.alphazero_loss(jnp.zeros((2, 3)), jnp.zeros(2), jnp.zeros((2, 3)), jnp.zeros(2), jnp.ones((2, 4), bool))
    with pytest.raises(ValueError, match="value_coef=-1"):
        losses.alphazero_loss(jnp.zeros((2, 3)), jnp.zeros(2), jnp.zeros((2, 3)), jnp.zeros(2), jnp.ones((2, 3), bool), value_coef=-1)
