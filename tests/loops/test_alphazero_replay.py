"""On-device replay buffer: ring insertion by hand, overflow, sampling from filled slots only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax.loops.replay import replay_add, replay_init, replay_sample


def _buffer(capacity=4):
    return replay_init({"x": jnp.zeros(2), "y": jnp.zeros((), jnp.int32)}, capacity=capacity)


def test_insertion_by_hand():
    b = _buffer()
    x = jnp.arange(10.0).reshape(5, 2)
    b = replay_add(b, {"x": x, "y": jnp.arange(5)}, jnp.array([1, 0, 1, 1, 0], bool))
    np.testing.assert_array_equal(b.data["x"], [[0, 1], [4, 5], [6, 7], [0, 0]])
    np.testing.assert_array_equal(b.data["y"], [0, 2, 3, 0])
    assert int(b.insert_pos) == 3 and int(b.size) == 3
    # Wraps around: the 4th slot, then slots 0 and 1.
    b = jax.jit(replay_add)(b, {"x": x + 100, "y": jnp.arange(5) + 10}, jnp.array([1, 1, 0, 0, 1], bool))
    np.testing.assert_array_equal(b.data["y"], [11, 14, 3, 10])
    assert int(b.insert_pos) == 2 and int(b.size) == 4


def test_overflow_keeps_the_last_capacity_samples():
    b = _buffer(capacity=3)
    b = replay_add(b, {"x": jnp.zeros((2, 2)), "y": jnp.array([7, 8])}, jnp.ones(2, bool))
    y = jnp.arange(6)
    b = replay_add(b, {"x": jnp.zeros((6, 2)), "y": y}, jnp.array([1, 1, 0, 1, 1, 1], bool))
    # Five valid samples 0, 1, 3, 4, 5 into a ring of 3 starting at slot 2: only 3, 4, 5 survive.
    assert sorted(np.asarray(b.data["y"]).tolist()) == [3, 4, 5]
    assert int(b.size) == 3 and int(b.insert_pos) == (2 + 5) % 3
    # The order continues: slot (2 + 2) % 3 = 1 holds 3.
    assert int(b.data["y"][1]) == 3


def test_sample_only_filled_slots_and_errors():
    b = _buffer(capacity=8)
    x = jnp.array([[5.0, 50.0], [6.0, 60.0], [7.0, 70.0]])
    b = replay_add(b, {"x": x, "y": jnp.array([5, 6, 7])}, jnp.ones(3, bool))
    batch = jax.jit(replay_sample, static_argnames="batch_size")(jax.random.PRNGKey(0), b, batch_size=3000)
    assert batch["y"].shape == (3000,) and batch["x"].shape == (3000, 2)
    y = np.asarray(batch["y"])
    # Every field of a sample comes from the same slot, and only filled slots are drawn.
    np.testing.assert_array_equal(np.asarray(batch["x"]), np.stack([y, 10 * y], axis=1).astype(np.float32))
    # Uniformly: chi-square of the three counts against 1000 each, 2 degrees of freedom
    # (13.8 is the 0.999 quantile).
    counts = np.array([(y == v).sum() for v in (5, 6, 7)])
    assert counts.sum() == 3000 and ((counts - 1000) ** 2 / 1000).sum() < 13.8
    with pytest.raises(ValueError, match="capacity=0 must be a positive int"):
        replay_init({"x": jnp.zeros(2)}, capacity=0)
    with pytest.raises(ValueError, match="sample shape"):
        replay_add(b, {"x": jnp.ones((3, 5)), "y": jnp.zeros(3, jnp.int32)}, jnp.ones(3, bool))
