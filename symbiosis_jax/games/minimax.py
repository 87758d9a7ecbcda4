"""Exact tic-tac-toe solver: negamax over every reachable position, as lookup tables.

Boards follow pgx's ``tic_tac_toe`` layout: nine cells ``0..8`` row by row, each
``-1`` (empty), ``0`` (X, who moves first) or ``1`` (O). A board is indexed in base
three, ``sum_i (board[i] + 1) * 3**i``, into tables of ``3**9 = 19683`` entries. The
side to move is implied by the board (X when the counts are equal).

The tables are computed once on the host with numpy (about 5,500 positions) and
then used on the device by plain ``jnp`` indexing, so the exact opponent can play
inside jitted arena code.
"""

from __future__ import annotations

import functools

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

NUM_CELLS = 9
NUM_BOARDS = 3**NUM_CELLS
_LINES = np.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]]
)
_POWERS = 3 ** np.arange(NUM_CELLS)


@flax.struct.dataclass
class TicTacToeSolution:
    """Game-theoretic values of every reachable tic-tac-toe position.

    Attributes:
        value: ``[19683]`` int8, the value for the side to move under perfect play
            (+1 win, 0 draw, -1 loss); for terminal positions, the outcome for the
            side that would move; 0 for unreachable boards.
        optimal_action_mask: ``[19683, 9]`` bool, True for each legal move that keeps
            the value; all False at terminal and unreachable boards.
        reachable: ``[19683]`` bool, True for boards reachable from the empty board.
    """

    value: jax.Array
    optimal_action_mask: jax.Array
    reachable: jax.Array


def _winner(board: tuple[int, ...]) -> int:
    for a, b, c in _LINES:
        if board[a] >= 0 and board[a] == board[b] == board[c]:
            return board[a]
    return -1


@functools.lru_cache(maxsize=1)
def _solve_numpy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    value = np.zeros(NUM_BOARDS, np.int8)
    optimal = np.zeros((NUM_BOARDS, NUM_CELLS), bool)
    reachable = np.zeros(NUM_BOARDS, bool)

    def index(board):
        return int(np.dot(np.asarray(board) + 1, _POWERS))

    def negamax(board: tuple[int, ...]) -> int:
        idx = index(board)
        if reachable[idx]:
            return int(value[idx])
        reachable[idx] = True
        to_move = 0 if board.count(0) == board.count(1) else 1
        winner = _winner(board)
        if winner >= 0:
            # The previous mover completed a line, so the side to move has lost.
            value[idx] = -1
            return -1
        empties = [i for i in range(NUM_CELLS) if board[i] < 0]
        if not empties:
            value[idx] = 0
            return 0
        child_values = {}
        for a in empties:
            child = list(board)
            child[a] = to_move
            child_values[a] = -negamax(tuple(child))
        best = max(child_values.values())
        value[idx] = best
        for a, v in child_values.items():
            optimal[idx, a] = v == best
        return best

    negamax((-1,) * NUM_CELLS)
    return value, optimal, reachable


def solve_tic_tac_toe() -> TicTacToeSolution:
    """Solves tic-tac-toe exactly (host numpy, cached) and returns device tables."""
    value, optimal, reachable = _solve_numpy()
    return TicTacToeSolution(
        value=jnp.asarray(value), optimal_action_mask=jnp.asarray(optimal), reachable=jnp.asarray(reachable)
    )


def board_index(board: jax.Array) -> jax.Array:
    """Base-three index of boards.

    Args:
        board: ``[..., 9]`` int cells in ``{-1, 0, 1}`` (pgx ``state._x.board``).

    Returns:
        ``[...]`` int32 indices into the solution tables.
    """
    chex.assert_axis_dimension(board, -1, NUM_CELLS)
    powers = jnp.asarray(_POWERS, jnp.int32).reshape((1,) * (board.ndim - 1) + (NUM_CELLS,))
    return jnp.sum((board.astype(jnp.int32) + 1) * powers, axis=-1)


def minimax_action_mask(solution: TicTacToeSolution, board: jax.Array) -> jax.Array:
    """Optimal moves of boards.

    Args:
        solution: from :func:`solve_tic_tac_toe`.
        board: ``[..., 9]`` boards.

    Returns:
        ``[..., 9]`` bool, True for the moves a perfect player may choose.
    """
    return solution.optimal_action_mask[board_index(board)]


def minimax_action(key: jax.Array, solution: TicTacToeSolution, board: jax.Array) -> jax.Array:
    """A perfect player's move, drawn uniformly among the optimal ones.

    Args:
        key: PRNG key.
        solution: from :func:`solve_tic_tac_toe`.
        board: ``[B, 9]`` boards with at least one legal move.

    Returns:
        ``[B]`` int32 actions.
    """
    chex.assert_rank(board, 2)
    mask = minimax_action_mask(solution, board)
    logits = jnp.where(mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
