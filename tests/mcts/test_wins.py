"""The searches find wins with a uniform prior and a zero value: only the
terminal rewards in the tree tell them what to play.

The winning moves are checked against an exhaustive search (below, plain
numpy over independently written rules) so the positions' labels are not taken on trust.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import mcts


def _play(env, moves, first_player=0):
    """The state after `moves` from the empty board, `first_player` moving first."""
    state = env.init(jax.random.key(0))
    state = state.replace(current_player=jnp.int32(first_player))
    step = jax.jit(env.step)
    for a in moves:
        state, _ = step(state, jnp.int32(a))
    return state


class _Board:
    """Independent numpy rules: tic-tac-toe (3x3, any line of 3) or connect four
    (6x7, pieces drop, any line of 4). Players 1 and 2 alternate, 1 first."""

    def __init__(self, game):
        self.rows, self.cols, self.k = (3, 3, 3) if game == "tic_tac_toe" else (6, 7, 4)
        self.drop = game == "connect_four"

    def play(self, moves):
        board = np.zeros((self.rows, self.cols), np.int8)
        for i, a in enumerate(moves):
            board = self.step(board, a, 1 + i % 2)
        return board

    def legal(self, board):
        if self.drop:
            return [c for c in range(self.cols) if board[0, c] == 0]
        return [a for a in range(board.size) if board.flat[a] == 0]

    def step(self, board, a, player):
        board = board.copy()
        if self.drop:
            r = max(r for r in range(self.rows) if board[r, a] == 0)
            board[r, a] = player
        else:
            board.flat[a] = player
        return board

    def won(self, board, player):
        mine = board == player
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            for r in range(self.rows):
                for c in range(self.cols):
                    cells = [(r + i * dr, c + i * dc) for i in range(self.k)]
                    if all(0 <= y < self.rows and 0 <= x < self.cols and mine[y, x] for y, x in cells):
                        return True
        return False


def winning_moves(game, moves, plies):
    """Moves after which the player to move wins within `plies` of its own moves."""
    rules = _Board(game)
    board = rules.play(moves)
    me = 1 + len(moves) % 2

    def wins(board, a, plies):
        after = rules.step(board, a, me)
        if rules.won(after, me):
            return True
        replies = rules.legal(after)
        if plies == 1 or not replies:
            return False
        for b in replies:  # every reply must leave a win, and not win itself
            reply = rules.step(after, b, 3 - me)
            if rules.won(reply, 3 - me) or not any(wins(reply, c, plies - 1) for c in rules.legal(reply)):
                return False
        return True

    return [a for a in rules.legal(board) if wins(board, a, plies)]


# (moves from the empty board, plies of the mover to the win)
TIC_TAC_TOE = [
    ([0, 3, 1, 4], 1),  # X: 0 1 _, O: 3 4 _ ; X wins at 2, O threatens 5
    ([4, 1, 8, 0], 2),  # X: 4 8, O: 0 1 ; X must block at 2, which forks 5 and 6
]
CONNECT_FOUR = [
    ([0, 0, 1, 1, 2, 2], 1),  # X on the bottom row at 0 1 2: 3 wins
    ([1, 1, 2, 2], 2),  # X at 1 2 bottom: 3 makes two open ends (0 and 4)
]
GAMES = {"tic_tac_toe": TIC_TAC_TOE, "connect_four": CONNECT_FOUR}


def _zero_evaluator(env):
    def evaluate_fn(params, key, states):
        del params, key
        b = jax.tree.leaves(states)[0].shape[0]
        return jnp.zeros((b, env.num_actions)), jnp.zeros((b,))

    return evaluate_fn


VARIANTS = {
    "puct": lambda: functools.partial(mcts.puct_search, dirichlet_fraction=0.0, temperature=0.0),
    "puct_min_max": lambda: functools.partial(
        mcts.puct_search, dirichlet_fraction=0.0, temperature=0.0,
        qtransform_fn=mcts.qtransform_by_min_max,
    ),
    "gumbel": lambda: functools.partial(mcts.gumbel_search, gumbel_scale=1.0),
}


_CACHE = {}


def _positions(game):
    """(env, states, winning moves per state), checked by exhaustion once per session."""
    if game not in _CACHE:
        env = mcts.pgx_env(game)
        positions = GAMES[game]
        states = [_play(env, moves) for moves, _ in positions]
        expected = [winning_moves(game, moves, plies) for moves, plies in positions]
        # The labels above are right, and the two-move wins have no one-move win.
        assert all(expected), expected
        for moves, plies in positions:
            if plies == 2:
                assert winning_moves(game, moves, 1) == []
        _CACHE[game] = env, states, expected
    return _CACHE[game]


@pytest.mark.parametrize("game", ["tic_tac_toe", "connect_four"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_finds_wins(game, variant):
    env, states, expected = _positions(game)
    batch = jax.tree.map(lambda *x: jnp.stack(x), *states)
    search = jax.jit(
        functools.partial(
            VARIANTS[variant](), env=env, evaluate_fn=_zero_evaluator(env), num_simulations=256
        )
    )
    out = search(None, jax.random.key(0), batch)
    plies = [p for _, p in GAMES[game]]
    for i, moves in enumerate(expected):
        action = int(out.action[i])
        assert action in moves, (i, moves, out.tree.root_visit_counts[i])
        # The chosen edge is known to win. A one-move win ends the game: its Q is the
        # reward, exactly 1; a two-move win's Q is a mean over replies, positive.
        q = float(out.tree.children_qvalues[i, mcts.ROOT, action])
        assert q == 1.0 if plies[i] == 1 else q > 0.0, (i, q)
