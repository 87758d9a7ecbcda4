"""Board symmetries: hand-worked permutations, and pgx's own rules agree with every symmetry listed."""

import jax
import jax.numpy as jnp
import numpy as np
import pgx
import pytest

from symbiosis_jax.games.symmetry import (
    SYMMETRY_GAMES, TRANSFORMS, action_permutation, board_permutation, random_symmetry, symmetries, transform)
from symbiosis_jax.mcts.env import pgx_trace_context


def test_permutations_by_hand():
    np.testing.assert_array_equal(action_permutation("connect_four", "mirror", 7), [6, 5, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(action_permutation("connect_four", "identity", 7), np.arange(7))
    # Tic-tac-toe cells 0 1 2 / 3 4 5 / 6 7 8.
    expected = {
        "identity": [0, 1, 2, 3, 4, 5, 6, 7, 8],
        "mirror": [2, 1, 0, 5, 4, 3, 8, 7, 6],
        "flip": [6, 7, 8, 3, 4, 5, 0, 1, 2],
        "rot90": [2, 5, 8, 1, 4, 7, 0, 3, 6],  # the top row of the turned board is the old right column
        "rot180": [8, 7, 6, 5, 4, 3, 2, 1, 0],
        "rot270": [6, 3, 0, 7, 4, 1, 8, 5, 2],
        "transpose": [0, 3, 6, 1, 4, 7, 2, 5, 8],
        "anti_transpose": [8, 5, 2, 7, 4, 1, 6, 3, 0],
    }
    assert tuple(expected) == TRANSFORMS == symmetries("tic_tac_toe")
    for name, perm in expected.items():
        np.testing.assert_array_equal(action_permutation("tic_tac_toe", name, 9), perm, err_msg=name)
    # Extra actions after the board (go's pass) stay in place.
    perm = action_permutation("go_9x9", "rot90", 82)
    assert perm[81] == 81 and sorted(perm[:81]) == list(range(81)) and perm[0] == 8
    assert symmetries("othello") == ("identity", "rot180", "transpose", "anti_transpose")


def test_the_transforms_form_a_group():
    """Each game's symmetries are closed under composition and inverses (else the
    augmented data would not be a mix of equally likely copies)."""
    for game in SYMMETRY_GAMES:
        perms = {name: board_permutation(game, name) for name in symmetries(game)}
        as_tuples = {tuple(p) for p in perms.values()}
        assert len(as_tuples) == len(perms), game
        for p in perms.values():
            assert tuple(np.argsort(p)) in as_tuples, game
            for q in perms.values():
                assert tuple(p[q]) in as_tuples, game


# go 19x19 and hex (in no config) only with -m slow: 8-14 s each, mostly compiling pgx.
@pytest.mark.parametrize("game", [pytest.param(g, marks=pytest.mark.slow) if g in ("go_19x19", "hex") else g
                                  for g in SYMMETRY_GAMES])
def test_symmetric_play_matches_pgx(game):
    """For every symmetry of the game, playing the moved moves from the same start gives the
    transformed observation and legal mask, and the same rewards."""
    with pgx_trace_context(game):
        _play_symmetric_twins(game)


def _play_symmetric_twins(game):
    env = pgx.make(game)
    names = symmetries(game)
    # perm[a] is where action a of a transformed position comes from, so the transformed
    # move of a is argsort(perm)[a].
    moved = [np.argsort(action_permutation(game, n, env.num_actions)) for n in names]
    num_board = min(env.num_actions, len(board_permutation(game, "identity")))
    step = jax.jit(jax.vmap(env.step))
    key = jax.random.PRNGKey(0)
    twins = jax.vmap(env.init)(jnp.stack([key] * len(names)))
    rng = np.random.default_rng(0)
    for ply in range(14):
        first = jax.tree.map(lambda x: x[0], twins)
        for i, name in enumerate(names):
            obs, _, mask = transform(game, name, first.observation, jnp.zeros(env.num_actions), first.legal_action_mask)
            np.testing.assert_array_equal(np.asarray(obs), np.asarray(twins.observation[i]), err_msg=f"{name} ply {ply}")
            np.testing.assert_array_equal(np.asarray(mask), np.asarray(twins.legal_action_mask[i]), err_msg=name)
            np.testing.assert_array_equal(np.asarray(first.rewards), np.asarray(twins.rewards[i]), err_msg=name)
        if bool(first.terminated):
            break
        # Board moves while there are any (a pass or swap tests no permutation).
        legal = np.flatnonzero(np.asarray(first.legal_action_mask))
        on_board = legal[legal < num_board]
        action = int(rng.choice(on_board if len(on_board) else legal))
        twins = step(twins, jnp.asarray([m[action] for m in moved], jnp.int32))


def test_a_non_symmetry_fails_the_pgx_check():
    """The check above can fail: othello's left-right mirror swaps the colours of its start."""
    env = pgx.make("othello")
    state = env.init(jax.random.PRNGKey(0))
    cells = np.asarray(state.observation).reshape(64, 2)[np.fliplr(np.arange(64).reshape(8, 8)).reshape(-1)]
    assert not np.array_equal(cells.reshape(8, 8, 2), np.asarray(state.observation))


def test_transform_values_and_random_symmetry():
    obs = jnp.arange(2 * 6 * 7 * 2, dtype=jnp.float32).reshape(2, 6, 7, 2)
    policy = jnp.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0]] * 2)
    mask = jnp.array([[True, True, True, True, True, True, False]] * 2)
    o, p, m = transform("connect_four", "mirror", obs, policy, mask)
    np.testing.assert_array_equal(np.asarray(o[0, 2, 0]), np.asarray(obs[0, 2, 6]))
    np.testing.assert_allclose(np.asarray(p[0]), [0.0, 0.05, 0.05, 0.1, 0.1, 0.2, 0.5])
    assert not bool(m[0, 0]) and bool(m[0, 6])

    # Tic-tac-toe: each row of random_symmetry is one of the eight transforms applied whole,
    # and over many rows every transform is drawn about equally often.
    n = 4000
    board = jnp.broadcast_to(jnp.arange(9, dtype=jnp.float32).reshape(1, 3, 3, 1), (n, 3, 3, 1))
    pol = jnp.broadcast_to(jnp.arange(9, dtype=jnp.float32) / 36, (n, 9))
    legal = jnp.broadcast_to(jnp.arange(9) % 2 == 0, (n, 9))
    o2, p2, m2 = random_symmetry(jax.random.PRNGKey(3), "tic_tac_toe", board, pol, legal)
    perms = np.stack([action_permutation("tic_tac_toe", name, 9) for name in TRANSFORMS])  # [8, 9]
    cells = np.asarray(o2).reshape(n, 9).astype(int)
    which = (cells[:, None, :] == perms[None]).all(-1)  # [n, 8]: row i is transform k
    assert (which.sum(1) == 1).all()
    k = which.argmax(1)
    np.testing.assert_allclose(np.asarray(p2), np.take_along_axis(np.asarray(pol), perms[k], axis=1))
    np.testing.assert_array_equal(np.asarray(m2), np.take_along_axis(np.asarray(legal), perms[k], axis=1))
    counts = np.bincount(k, minlength=8)
    assert counts.min() > n / 8 - 4 * np.sqrt(n / 8), counts  # ~8 standard deviations wide in total


def test_unknown_game_or_symmetry():
    with pytest.raises(ValueError, match="game='chess' has no symmetries"):
        symmetries("chess")
    with pytest.raises(ValueError, match="'mirror' is not a symmetry of game='othello'"):
        action_permutation("othello", "mirror", 65)
    with pytest.raises(ValueError, match="num_actions=5"):
        action_permutation("connect_four", "mirror", 5)
