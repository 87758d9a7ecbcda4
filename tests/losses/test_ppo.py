"""PPO value loss, full objective, KL folded into rewards, adaptive KL controller."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def test_value_loss_hand_worked():
    # V_old = 0, R = 1, c = 0.2. V = 0.5: clipped V = 0.2 -> max(0.25, 0.64)/2 = 0.32 (clip active).
    # V = 0.1: both branches 0.81 -> 0.405.  V = 2.0: clipped 0.2 -> max(1, 0.64)/2 = 0.5.
    values = jnp.array([[0.5, 0.1, 2.0, 99.0]])
    mask = jnp.array([[1, 1, 1, 0]])
    loss, metrics = losses.ppo_value_loss(values, jnp.zeros((1, 4)), jnp.ones((1, 4)), mask)
    np.testing.assert_allclose(loss, (0.32 + 0.405 + 0.5) / 3, rtol=1e-6)
    np.testing.assert_allclose(metrics["value_clip_fraction"], 1 / 3, rtol=1e-6)
    grad = jax.grad(
        lambda v: losses.ppo_value_loss(v, jnp.zeros((1, 4)), jnp.ones((1, 4)), mask)[0]
    )(values)
    # Only unclipped branches carry gradient: (V - R) / 3 for tokens 1 and 2.
    np.testing.assert_allclose(grad, [[0.0, -0.9 / 3, 1.0 / 3, 0.0]], rtol=1e-6)
    loss, _ = losses.ppo_value_loss(values, jnp.zeros((1, 4)), jnp.ones((1, 4)), mask, value_clip=None)
    np.testing.assert_allclose(loss, (0.125 + 0.405 + 0.5) / 3, rtol=1e-6)


def test_ppo_loss_is_sum_of_parts(x64):
    rng = np.random.default_rng(0)
    shape = (3, 5)
    logp, old, ref, values, old_values, returns, entropy, adv = (
        jnp.asarray(rng.normal(size=shape)) for _ in range(8)
    )
    mask = jnp.asarray(rng.random(shape) < 0.8)
    loss, metrics = losses.ppo_loss(
        logp, old, adv, mask, values=values, old_values=old_values, returns=returns,
        entropy=entropy, ref_logp=ref, value_coef=0.7, entropy_coef=0.01, kl_coef=0.05,
        kl_estimator="k1", dual_clip=3.0,
    )
    pg, _ = losses.ppo_policy_loss(logp, old, adv, mask, dual_clip=3.0)
    vl, _ = losses.ppo_value_loss(values, old_values, returns, mask)
    kl = losses.aggregate(losses.kl_estimate(logp, ref, estimator="k1"), mask)
    ent = losses.aggregate(entropy, mask)
    np.testing.assert_allclose(loss, pg + 0.05 * kl - 0.01 * ent + 0.7 * vl, rtol=1e-12)
    np.testing.assert_allclose(metrics["value_loss"], vl, rtol=1e-12)
    np.testing.assert_allclose(metrics["pg_loss"], pg, rtol=1e-12)
    np.testing.assert_allclose(metrics["entropy"], ent, rtol=1e-12)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-12)
    # Gradient of the entropy bonus flows to the entropy input.
    grad = jax.grad(
        lambda e: losses.ppo_loss(logp, old, adv, mask, entropy=e, entropy_coef=0.5)[0]
    )(entropy)
    np.testing.assert_allclose(grad, -0.5 * mask / mask.sum(), rtol=1e-12)


def test_fold_kl_into_rewards_hand_worked():
    logp = jnp.log(jnp.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]))
    ref = jnp.log(jnp.array([[0.25, 0.5, 1.0, 0.5], [0.25, 0.5, 1.0, 0.5]]))
    mask = jnp.array([[1, 1, 1, 0], [1, 0, 1, 1]])
    rewards = losses.fold_kl_into_rewards(jnp.array([2.0, -1.0]), logp, ref, mask, kl_coef=0.1)
    k1 = np.log([2.0, 1.0, 0.5, 1.0])  # logp - ref
    expected = np.array([
        [-0.1 * k1[0], -0.1 * k1[1], -0.1 * k1[2] + 2.0, 0.0],
        [-0.1 * k1[0], 0.0, -0.1 * k1[2], -0.1 * k1[3] - 1.0],
    ])
    np.testing.assert_allclose(rewards, expected, rtol=1e-6, atol=1e-7)


def test_adaptive_kl_controller_hand_worked():
    state = losses.init_kl_controller(0.2)
    # KL 12 vs target 6: error clipped to 0.2; beta *= 1 + 0.2 * 500 / 10000.
    up = losses.adaptive_kl_update(state, 12.0, 500, target_kl=6.0, horizon=10000)
    np.testing.assert_allclose(up.kl_coef, 0.2 * 1.01, rtol=1e-6)
    # KL 5.4: error -0.1; beta *= 1 - 0.1 * 1000 / 10000.
    down = losses.adaptive_kl_update(state, 5.4, 1000, target_kl=6.0, horizon=10000)
    np.testing.assert_allclose(down.kl_coef, 0.2 * 0.99, rtol=1e-6)
    # It is a pure function of its state: works under jit and in a scan.
    step = jax.jit(lambda s, kl: losses.adaptive_kl_update(s, kl, 100))
    final, _ = jax.lax.scan(lambda s, kl: (step(s, kl), None), state, jnp.full(10, 12.0))
    np.testing.assert_allclose(final.kl_coef, 0.2 * (1 + 0.2 * 100 / 10000) ** 10, rtol=1e-5)


def test_bad_input():
    z = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="values, old_values and returns"):
        losses.ppo_loss(z, z, jnp.ones(2), z, values=z)
    with pytest.raises(ValueError, match="value_clip=0"):
        losses.ppo_value_loss(z, z, z, z, value_clip=0.0)
    with pytest.raises(ValueError, match="ref_logp is required when kl_coef=0.1"):
        losses.ppo_loss(z, z, jnp.ones(2), z, kl_coef=0.1)
    with pytest.raises(ValueError, match="kl_coef=-0.1 must be >= 0"):
        losses.ppo_loss(z, z, jnp.ones(2), z, ref_logp=z, kl_coef=-0.1)
    with pytest.raises(ValueError, match="target_kl=0"):
        losses.adaptive_kl_update(losses.init_kl_controller(0.1), 1.0, 1, target_kl=0)
    with pytest.raises(ValueError, match="kl_coef=-1"):
        losses.fold_kl_into_rewards(jnp.ones(2), z, z, z, kl_coef=-1)
