"""The tic-tac-toe solver is exact: known counts, known positions, a naive reference, pgx play."""

import jax
import jax.numpy as jnp
import numpy as np
import pgx
import pytest

from symbiosis_jax.games import board_index, minimax_action, minimax_action_mask, solve_tic_tac_toe

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def _board(x=(), o=()):
    b = -np.ones(9, np.int32)
    b[list(x)] = 0
    b[list(o)] = 1
    return b


@pytest.fixture(scope="module")
def solution():
    return solve_tic_tac_toe()


def _value(solution, board):
    return int(solution.value[int(board_index(jnp.asarray(board)))])


def test_known_counts(solution):
    # 5,478 legal positions are reachable from the empty board (a classic count).
    assert int(solution.reachable.sum()) == 5478
    assert _value(solution, _board()) == 0  # perfect play draws
    assert solution.value.shape == (3**9,)


def test_known_positions(solution):
    # After X takes a corner, the centre is O's only reply that does not lose.
    for o in range(1, 9):
        expected = 0 if o == 4 else 1
        assert _value(solution, _board(x=[0], o=[o])) == expected, o
    # After X takes the centre, O must take a corner: an edge loses.
    for o in (1, 3, 5, 7):
        assert _value(solution, _board(x=[4], o=[o])) == 1
    for o in (0, 2, 6, 8):
        assert _value(solution, _board(x=[4], o=[o])) == 0
    # O to move facing two open X threats loses.
    assert _value(solution, _board(x=[0, 3, 4], o=[1, 2])) == -1
    # X to move with a completed X line is impossible; O completed a line: X (to move) lost.
    assert _value(solution, _board(x=[0, 4, 7], o=[2, 5, 8])) == -1
    # The only winning move is taken by the mask: X at 0 and 1, O at 3 and 4 -> 2 wins.
    mask = np.asarray(minimax_action_mask(solution, jnp.asarray(_board(x=[0, 1], o=[3, 4]))))
    np.testing.assert_array_equal(np.flatnonzero(mask), [2])


def _naive_negamax(board):
    to_move = 0 if (board == 0).sum() == (board == 1).sum() else 1
    for a, b, c in LINES:
        if board[a] >= 0 and board[a] == board[b] == board[c]:
            return -1
    empties = np.flatnonzero(board < 0)
    if len(empties) == 0:
        return 0
    best = -2
    for a in empties:
        child = board.copy()
        child[a] = to_move
        best = max(best, -_naive_negamax(child))
    return best


def test_matches_naive_negamax_on_random_positions(solution):
    reachable = np.flatnonzero(np.asarray(solution.reachable))
    rng = np.random.default_rng(0)
    checked = 0
    for idx in rng.permutation(reachable):
        board = np.array([(idx // 3**i) % 3 - 1 for i in range(9)], np.int32)
        if (board >= 0).sum() < 3:
            continue
        assert _naive_negamax(board) == int(solution.value[idx]), board
        checked += 1
        if checked == 150:
            break
    assert checked == 150


def _play(first_fn, second_fn, num_games, key):
    env = pgx.make("tic_tac_toe")

    @jax.jit
    def play(key):
        state = jax.vmap(env.init)(jax.random.split(key, num_games))
        # Seat the agents by pgx player id: the first agent is whoever moves first.
        first_player = state.current_player

        def body(carry, t):
            state, total = carry
            sub = jax.random.fold_in(key, t)
            action = jnp.where(state.current_player == first_player, first_fn(sub, state), second_fn(sub, state))
            state = jax.vmap(env.step)(state, action)
            return (state, total + state.rewards), None  # pgx zeroes rewards once a game has ended

        (state, total), _ = jax.lax.scan(body, (state, jnp.zeros_like(state.rewards)), jnp.arange(9))
        return state.terminated, jnp.take_along_axis(total, first_player[:, None], axis=1)[:, 0]

    done, reward_first = play(key)
    return np.asarray(done), np.asarray(reward_first)


def test_perfect_players_draw_and_never_lose_to_random(solution):
    def perfect(key, state):
        return minimax_action(key, solution, state._x.board)

    def random(key, state):
        return jax.random.categorical(key, jnp.where(state.legal_action_mask, 0.0, -jnp.inf)).astype(jnp.int32)

    done, r = _play(perfect, perfect, 64, jax.random.PRNGKey(0))
    assert done.all() and (r == 0).all()
    done, r = _play(perfect, random, 128, jax.random.PRNGKey(1))
    assert done.all() and (r >= 0).all() and (r > 0).mean() > 0.5
    done, r = _play(random, perfect, 128, jax.random.PRNGKey(2))
    assert done.all() and (r <= 0).all() and (r < 0).mean() > 0.3
