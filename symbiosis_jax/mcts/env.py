"""The game protocol the tree search plugs into, and the adapter for pgx games.

The search stores one environment state per tree node and steps it with pure
functions, so any JAX environment whose state is a pytree of fixed-shape arrays
can plug in by implementing `GameEnv`. All functions take and return a *single*
(unbatched) state; the search `jax.vmap`s them over games.

Games are two-player, zero-sum and strictly alternating: the player to move
changes after every action (true for every game in `PGX_GAMES`; in othello and
go a pass is an action). Values are always from the point of view of the
player to move, and `step` returns the reward of the player who just moved.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

State = Any  # a pytree of arrays describing one game

# The pgx games the adapter (and the AlphaZero loop) accepts: two-player, deterministic,
# perfect-information and strictly alternating (a pass is an action), checked by random
# play in tests/mcts/test_env.py. Value: the longest game in plies (pgx ends or truncates
# a game there), the default length of a self-play scan. To add a pgx game that meets
# those conditions, add it here (and to PGX_IMPLICIT_RANK_PROMOTION if its pgx code
# needs that).
PGX_GAMES = {
    "tic_tac_toe": 9,
    "connect_four": 42,
    "othello": 80,
    "hex": 122,  # 11 x 11 cells and the swap move
    "go_9x9": 162,  # pgx truncates go at 2 x size^2 plies
    "go_19x19": 722,
    "animal_shogi": 256,
    "gardner_chess": 256,
    "chess": 512,
    "shogi": 512,
}
# Of those, the games whose pgx code broadcasts arrays of different rank implicitly:
# tracing them needs `jax.numpy_rank_promotion("allow")` when the option is "raise".
PGX_IMPLICIT_RANK_PROMOTION = ("go_9x9", "go_19x19", "animal_shogi", "gardner_chess", "chess")


def pgx_trace_context(name: str):
    """Context for tracing pgx code of game `name`: allows implicit rank promotion where
    that game's pgx implementation relies on it (`PGX_IMPLICIT_RANK_PROMOTION`)."""
    import contextlib

    if name in PGX_IMPLICIT_RANK_PROMOTION:
        return jax.numpy_rank_promotion("allow")
    return contextlib.nullcontext()


@runtime_checkable
class GameEnv(Protocol):
    """A two-player, alternating, zero-sum game as pure functions of one state.

    Attributes:
        num_actions: size A of the action space.
    """

    num_actions: int

    def init(self, key: jax.Array) -> State:
        """Returns the initial state (the key may pick the first player)."""

    def step(self, state: State, action: jax.Array) -> tuple[State, jax.Array]:
        """Plays a legal `action` (int32[]) and returns `(next_state, reward)`.

        `reward` (float32[]) is the reward of the player who took the action.
        The search never steps a terminal state or an illegal action.
        """

    def observation(self, state: State) -> jax.Array:
        """Returns the network input for the player to move."""

    def legal_action_mask(self, state: State) -> jax.Array:
        """Returns bool[A], True = legal. Must be all False at terminal states."""

    def terminated(self, state: State) -> jax.Array:
        """Returns bool[], True once the game is over."""


class PgxEnv:
    """`GameEnv` adapter for a pgx two-player game.

    Attributes:
        name: the pgx environment id, e.g. "connect_four".
        env: the underlying `pgx.Env`.
        num_actions: size A of the action space.
    """

    def __init__(self, name: str):
        if name not in PGX_GAMES:
            raise ValueError(f"name={name!r} is not one of {tuple(PGX_GAMES)} (the pgx games that "
                             "are two-player, deterministic and strictly alternating)")
        import pgx  # deferred: keep `import symbiosis_jax.mcts` light

        self.name = name
        self.env = pgx.make(name)
        with pgx_trace_context(name):  # pgx computes num_actions from an initial state
            self.num_actions = int(self.env.num_actions)

    def init(self, key: jax.Array) -> State:
        with pgx_trace_context(self.name):
            return self.env.init(key)

    def step(self, state: State, action: jax.Array) -> tuple[State, jax.Array]:
        mover = state.current_player
        with pgx_trace_context(self.name):
            next_state = self.env.step(state, action)
        return next_state, next_state.rewards[mover]

    def observation(self, state: State) -> jax.Array:
        return state.observation

    def legal_action_mask(self, state: State) -> jax.Array:
        # pgx marks every action legal at terminal states; the search wants none.
        return jnp.logical_and(state.legal_action_mask, ~self.terminated(state))

    def terminated(self, state: State) -> jax.Array:
        return jnp.logical_or(state.terminated, state.truncated)

    def current_player(self, state: State) -> jax.Array:
        """Returns int32[], the index (0 or 1) of the player to move."""
        return state.current_player

    def __repr__(self) -> str:
        return f"PgxEnv({self.name!r})"


def pgx_env(name: str) -> PgxEnv:
    """Returns the `GameEnv` adapter for a pgx game.

    Args:
        name: a pgx game in `PGX_GAMES`: tic-tac-toe, connect four, othello, hex, go 9x9
            and 19x19, animal shogi, gardner chess, chess, shogi.

    Returns:
        A `PgxEnv` whose functions act on one pgx `State`.
    """
    return PgxEnv(name)
