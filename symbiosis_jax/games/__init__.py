"""Exact game solvers used as opponents and references (plain functions of arrays)."""

from symbiosis_jax.games.minimax import (
    TicTacToeSolution,
    board_index,
    minimax_action,
    minimax_action_mask,
    solve_tic_tac_toe,
)

__all__ = [
    "TicTacToeSolution",
    "board_index",
    "minimax_action",
    "minimax_action_mask",
    "solve_tic_tac_toe",
]
