"""Advantage estimators against hand-worked values and naive numpy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def test_group_advantages_hand_worked():
    # Group (1, 0, 0, 0): mean 0.25, unbiased std sqrt(0.75 / 3) = 0.5.
    rewards = jnp.array([[1.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    got = losses.group_advantages(rewards, epsilon=1e-4)
    np.testing.assert_allclose(got[0], np.array([0.75, -0.25, -0.25, -0.25]) / 0.5001, rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.zeros(4))
    np.testing.assert_allclose(
        losses.group_advantages(rewards, normalize_std=False)[0], [0.75, -0.25, -0.25, -0.25]
    )


def test_group_advantages_match_numpy_and_by_id(x64):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(3, 5))
    expected = np.zeros_like(rewards)
    for p in range(3):
        row = rewards[p]
        mean = sum(row) / len(row)
        std = np.sqrt(sum((r - mean) ** 2 for r in row) / (len(row) - 1))
        expected[p] = (row - mean) / (std + 1e-4)
    got = losses.group_advantages(jnp.asarray(rewards))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The same groups, shuffled into a flat batch with ids.
    order = rng.permutation(15)
    ids = np.repeat(np.arange(3), 5)[order]
    flat = rewards.reshape(-1)[order]
    by_id = losses.group_advantages_by_id(jnp.asarray(flat), jnp.asarray(ids), num_groups=3)
    np.testing.assert_allclose(by_id, expected.reshape(-1)[order], rtol=1e-12)
    no_std = losses.group_advantages_by_id(
        jnp.asarray(flat), jnp.asarray(ids), num_groups=3, normalize_std=False
    )
    np.testing.assert_allclose(
        no_std, (rewards - rewards.mean(1, keepdims=True)).reshape(-1)[order], atol=1e-12
    )


def test_group_by_id_singleton_group_is_zero():
    got = losses.group_advantages_by_id(
        jnp.array([1.0, 0.0, 5.0]), jnp.array([0, 0, 1]), num_groups=2
    )
    np.testing.assert_allclose(got, [1.0 / (np.sqrt(0.5) + 1e-4) * 0.5, -0.5 / (np.sqrt(0.5) + 1e-4), 0.0], rtol=1e-5)


def test_rloo_hand_worked():
    # r_0 - mean(r_1, r_2) = 3 - 1.5; r_1 - mean(3, 2) = 1 - 2.5; r_2 - mean(3, 1) = 2 - 2
    got = losses.rloo_advantages(jnp.array([[3.0, 1.0, 2.0]]))
    np.testing.assert_allclose(got, [[1.5, -1.5, 0.0]], rtol=1e-6)


def test_zero_variance_group_mask():
    rewards = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(losses.zero_variance_group_mask(rewards), [True, True, False])


def test_overlong_reward_shaping_hand_worked():
    # L_max = 20, buffer 4: no penalty up to 16, linear to -1 at 20, -1 beyond.
    got = losses.overlong_reward_shaping(
        jnp.array([5, 16, 17, 18, 20, 21]), max_length=20, buffer_length=4
    )
    np.testing.assert_allclose(got, [0.0, 0.0, -0.25, -0.5, -1.0, -1.0], rtol=1e-6)


def _np_gae(rewards, values, mask, gamma, lam, bootstrap):
    batch, length = rewards.shape
    adv = np.zeros_like(rewards)
    for b in range(batch):
        valid = [t for t in range(length) if mask[b, t]]
        next_value, next_adv = bootstrap[b], 0.0
        for t in reversed(valid):
            delta = rewards[b, t] + gamma * next_value - values[b, t]
            adv[b, t] = delta + gamma * lam * next_adv
            next_value, next_adv = values[b, t], adv[b, t]
    return adv


def test_gae_hand_worked():
    # One sequence, V = 0, reward 1 at the end, gamma = 1, lam = 0.5: A = (0.25, 0.5, 1).
    adv, ret = losses.gae_advantages(
        jnp.array([[0.0, 0.0, 1.0]]), jnp.zeros((1, 3)), jnp.ones((1, 3)), gamma=1.0, lam=0.5
    )
    np.testing.assert_allclose(adv, [[0.25, 0.5, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(ret, [[0.25, 0.5, 1.0]], rtol=1e-6)


def test_gae_matches_numpy_with_interior_mask_and_padding(x64):
    rng = np.random.default_rng(3)
    rewards = rng.normal(size=(4, 9))
    values = rng.normal(size=(4, 9))
    mask = rng.random((4, 9)) < 0.7
    mask[1] = False
    bootstrap = rng.normal(size=4)
    expected = _np_gae(rewards, values, mask, 0.9, 0.8, bootstrap)
    adv, ret = losses.gae_advantages(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.asarray(mask),
        gamma=0.9,
        lam=0.8,
        bootstrap_value=jnp.asarray(bootstrap),
    )
    np.testing.assert_allclose(adv, expected, atol=1e-12)
    np.testing.assert_allclose(ret, np.where(mask, expected + values, 0.0), atol=1e-12)
    # Garbage under the mask changes nothing.
    garbage = np.where(mask, rewards, 1e6)
    adv2, _ = losses.gae_advantages(
        jnp.asarray(garbage),
        jnp.asarray(np.where(mask, values, -1e6)),
        jnp.asarray(mask),
        gamma=0.9,
        lam=0.8,
        bootstrap_value=jnp.asarray(bootstrap),
    )
    np.testing.assert_allclose(adv2, expected, atol=1e-12)
    jitted = jax.jit(lambda r, v, m: losses.gae_advantages(r, v, m, gamma=0.9, lam=0.8)[0])
    np.testing.assert_allclose(
        jitted(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(mask)),
        _np_gae(rewards, values, mask, 0.9, 0.8, np.zeros(4)),
        atol=1e-12,
    )


def test_whiten():
    values = jnp.array([[1.0, 2.0, 3.0, 100.0]])
    mask = jnp.array([[1, 1, 1, 0]])
    got = losses.whiten(values, mask, epsilon=1e-12)
    # mean 2, population variance 2/3
    np.testing.assert_allclose(got, [[-np.sqrt(1.5), 0.0, np.sqrt(1.5), 0.0]], rtol=1e-5)
    kept = losses.whiten(values, mask, shift_mean=False, epsilon=1e-12)
    np.testing.assert_allclose(kept, [[2 - np.sqrt(1.5), 2.0, 2 + np.sqrt(1.5), 0.0]], rtol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="normalize_std=True needs G >= 2"):
        losses.group_advantages(jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="epsilon=0"):
        losses.group_advantages(jnp.ones((3, 2)), epsilon=0)
    with pytest.raises(ValueError, match="rewards_pg has shape"):
        losses.group_advantages(jnp.ones(3))
    with pytest.raises(ValueError, match="buffer_length=30"):
        losses.overlong_reward_shaping(jnp.ones(3), max_length=20, buffer_length=30)
    with pytest.raises(ValueError, match="lam=1.5"):
        losses.gae_advantages(jnp.ones((1, 2)), jnp.ones((1, 2)), jnp.ones((1, 2)), lam=1.5)
    with pytest.raises(ValueError, match="values has shape"):
        losses.gae_advantages(jnp.ones((1, 2)), jnp.ones((1, 3)), jnp.ones((1, 2)))
