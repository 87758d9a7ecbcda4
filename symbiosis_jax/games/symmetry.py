"""Left-right mirror symmetry of pgx board games, for training-data augmentation.

Every game the AlphaZero loop plays has the same rules after reflecting the board
left to right, so a position, its search policy and its outcome stay a valid
training sample when the board (the observation), the action indices and the
legal-action mask are mirrored together; the value target is unchanged. Mirrored
samples double the distinct positions the network sees at no self-play cost
(AlphaGo Zero's dihedral augmentation, Silver et al. 2017, restricted to the one
reflection that connect four has).

Observations are pgx's ``[..., H, W, C]`` boards. Actions are either a column
(connect four: ``A = W``) or a board cell in row-major order, possibly followed by
extra actions such as "pass" after the cells (tic-tac-toe).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# (board height, board width, action kind) per game.
_BOARDS = {
    "tic_tac_toe": (3, 3, "cell"),
    "connect_four": (6, 7, "column"),
}
# Othello's mirror image of its start position is not its start position (the four
# centre discs swap colours), so mirrored positions would never occur in play; go
# is not covered by the tests yet. Neither is listed.
MIRROR_GAMES = tuple(sorted(_BOARDS))


def mirror_permutation(game: str, num_actions: int) -> np.ndarray:
    """The action index each action maps to under the left-right mirror.

    Args:
        game: a pgx game id from ``("tic_tac_toe", "connect_four")``.
        num_actions: the game's number of actions ``A``.

    Returns:
        ``[A]`` int array ``perm`` with ``mirrored_policy = policy[..., perm]``; the
        permutation is its own inverse.

    Raises:
        ValueError: unknown game, or ``num_actions`` too small for the board.
    """
    if game not in MIRROR_GAMES:
        raise ValueError(f"game={game!r} has no mirror symmetry defined; allowed: {MIRROR_GAMES}")
    height, width, kind = _BOARDS[game]
    num_board = width if kind == "column" else height * width
    if num_actions < num_board:
        raise ValueError(f"num_actions={num_actions} is smaller than the {num_board} board actions of {game!r}")
    perm = np.arange(num_actions)
    board = np.arange(num_board)
    if kind == "column":
        perm[:num_board] = width - 1 - board
    else:
        row, col = np.divmod(board, width)
        perm[:num_board] = row * width + (width - 1 - col)
    return perm


def mirror(game: str, observation: jax.Array, policy: jax.Array, legal_action_mask: jax.Array):
    """Mirrors positions left to right.

    Args:
        game: the pgx game id.
        observation: ``[..., H, W, C]`` boards.
        policy: ``[..., A]`` policy (or any per-action array).
        legal_action_mask: ``[..., A]`` bool.

    Returns:
        ``(observation, policy, legal_action_mask)`` of the mirrored positions.
    """
    perm = jnp.asarray(mirror_permutation(game, policy.shape[-1]))
    return jnp.flip(observation, axis=-2), policy[..., perm], legal_action_mask[..., perm]


def random_mirror(key: jax.Array, game: str, observation, policy, legal_action_mask):
    """Mirrors each position of a ``[N, ...]`` batch independently with probability 1/2."""
    flip_n = jax.random.bernoulli(key, 0.5, (observation.shape[0],))
    mirrored = mirror(game, observation, policy, legal_action_mask)

    def pick(new, old):
        return jnp.where(flip_n.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)

    return tuple(pick(n, o) for n, o in zip(mirrored, (observation, policy, legal_action_mask)))
