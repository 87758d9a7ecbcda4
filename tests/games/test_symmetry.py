"""Mirror symmetry: hand-worked permutations, and pgx's own rules agree with the mirror."""

import jax
import jax.numpy as jnp
import numpy as np
import pgx
import pytest

from symbiosis_jax.games.symmetry import mirror, mirror_permutation, random_mirror


def test_permutations_by_hand():
    np.testing.assert_array_equal(mirror_permutation("connect_four", 7), [6, 5, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(mirror_permutation("tic_tac_toe", 9), [2, 1, 0, 5, 4, 3, 8, 7, 6])
    for game, a in (("connect_four", 7), ("tic_tac_toe", 9)):
        p = mirror_permutation(game, a)
        np.testing.assert_array_equal(p[p], np.arange(a))  # an involution


@pytest.mark.parametrize("game", ["connect_four", "tic_tac_toe"])
def test_mirrored_play_matches_pgx(game):
    """Playing mirrored moves gives the mirrored observation and legal mask, and the same rewards."""
    env = pgx.make(game)
    perm = mirror_permutation(game, env.num_actions)
    key = jax.random.PRNGKey(0)
    state = env.init(key)
    twin = env.init(key)
    rng = np.random.default_rng(0)
    for _ in range(12):
        if bool(state.terminated):
            break
        legal = np.flatnonzero(np.asarray(state.legal_action_mask))
        action = int(rng.choice(legal))
        state = env.step(state, action)
        twin = env.step(twin, int(perm[action]))
        obs, _, mask = mirror(game, state.observation, jnp.zeros(env.num_actions), state.legal_action_mask)
        np.testing.assert_array_equal(np.asarray(obs), np.asarray(twin.observation))
        np.testing.assert_array_equal(np.asarray(mask), np.asarray(twin.legal_action_mask))
        np.testing.assert_array_equal(np.asarray(state.rewards), np.asarray(twin.rewards))


def test_mirror_values_and_random_mirror():
    obs = jnp.arange(2 * 6 * 7 * 2, dtype=jnp.float32).reshape(2, 6, 7, 2)
    policy = jnp.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0]] * 2)
    mask = jnp.array([[True, True, True, True, True, True, False]] * 2)
    o, p, m = mirror("connect_four", obs, policy, mask)
    np.testing.assert_array_equal(np.asarray(o[0, 2, 0]), np.asarray(obs[0, 2, 6]))
    np.testing.assert_allclose(np.asarray(p[0]), [0.0, 0.05, 0.05, 0.1, 0.1, 0.2, 0.5])
    assert not bool(m[0, 0]) and bool(m[0, 6])
    # random_mirror flips each row either fully or not at all.
    o2, p2, m2 = random_mirror(jax.random.PRNGKey(3), "connect_four", obs, policy, mask)
    for i in range(2):
        flipped = bool(jnp.all(p2[i] == p[i]))
        np.testing.assert_array_equal(np.asarray(o2[i]), np.asarray(o[i] if flipped else obs[i]))
        np.testing.assert_array_equal(np.asarray(m2[i]), np.asarray(m[i] if flipped else mask[i]))


def test_unknown_game():
    with pytest.raises(ValueError, match="game='chess'"):
        mirror_permutation("chess", 10)
    with pytest.raises(ValueError, match="game='othello'"):
        mirror_permutation("othello", 65)
    with pytest.raises(ValueError, match="num_actions=5"):
        mirror_permutation("connect_four", 5)
