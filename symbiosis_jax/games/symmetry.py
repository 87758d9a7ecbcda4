"""Board symmetries of pgx games, for training-data augmentation.

A symmetry of a game maps every reachable position to a reachable position with the
same rules: reflecting or rotating the board, with the action indices and the
legal-action mask moved along, gives another position whose search policy is the
moved policy and whose value is unchanged. Training on a random symmetric copy of
each sampled position shows the network up to ``|group|`` times as many distinct
positions at no self-play cost (AlphaGo Zero's dihedral augmentation, Silver et al.
2017).

Which board transforms are symmetries depends on the game's start position, not only
on its board: an empty go board has all eight, connect four (not square, gravity) only
the left-right mirror, othello the four that keep its centre discs in place, hex only
the half turn.

Observations are pgx's ``[..., H, W, C]`` boards. Actions are either a column
(connect four: ``A = W``) or a board cell in row-major order, possibly followed by
extra actions after the cells (pass in othello and go, swap in hex), which every
symmetry leaves in place. ``tests/games/test_symmetry.py`` plays each game and each
transform against pgx's own rules.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# The eight transforms of a square board (the dihedral group), as what they do to an
# [H, W] array; `mirror` and `flip` also apply to rectangular boards.
_TRANSFORMS = {
    "identity": lambda b: b,
    "mirror": np.fliplr,  # left <-> right
    "flip": np.flipud,  # top <-> bottom
    "rot90": np.rot90,  # a quarter turn anticlockwise
    "rot180": lambda b: np.rot90(b, 2),
    "rot270": lambda b: np.rot90(b, 3),
    "transpose": np.transpose,  # about the main diagonal
    "anti_transpose": lambda b: np.rot90(b, 2).T,  # about the other diagonal
}
TRANSFORMS = tuple(_TRANSFORMS)

# (board height, board width, action kind, the game's symmetries).
_GAMES = {
    "tic_tac_toe": (3, 3, "cell", TRANSFORMS),
    "connect_four": (6, 7, "column", ("identity", "mirror")),
    # Othello starts with each colour on one diagonal of the centre square; the mirrors
    # and quarter turns would swap the colours, so only these four keep the start.
    "othello": (8, 8, "cell", ("identity", "rot180", "transpose", "anti_transpose")),
    # Hex joins top-bottom for one player and left-right for the other: a half turn keeps
    # both goals; the other seven would exchange them or break the rhombus.
    "hex": (11, 11, "cell", ("identity", "rot180")),
    "go_9x9": (9, 9, "cell", TRANSFORMS),
    "go_19x19": (19, 19, "cell", TRANSFORMS),
}
SYMMETRY_GAMES = tuple(sorted(_GAMES))


def symmetries(game: str) -> tuple[str, ...]:
    """The names of the game's symmetries (``"identity"`` first)."""
    if game not in _GAMES:
        raise ValueError(f"game={game!r} has no symmetries defined; allowed: {SYMMETRY_GAMES}")
    return _GAMES[game][3]


def board_permutation(game: str, name: str) -> np.ndarray:
    """Where each cell of the transformed board comes from.

    Returns:
        ``[H * W]`` int array ``src``: cell ``i`` (row-major) of the transformed board
        holds cell ``src[i]`` of the original.
    """
    if name not in symmetries(game):
        raise ValueError(f"{name!r} is not a symmetry of game={game!r}; allowed: {symmetries(game)}")
    height, width = _GAMES[game][:2]
    return np.ascontiguousarray(_TRANSFORMS[name](np.arange(height * width).reshape(height, width))).reshape(-1)


def action_permutation(game: str, name: str, num_actions: int) -> np.ndarray:
    """Where each action of the transformed position comes from.

    Args:
        game: a pgx game id from ``SYMMETRY_GAMES``.
        name: one of ``symmetries(game)``.
        num_actions: the game's number of actions ``A``.

    Returns:
        ``[A]`` int array ``perm`` with ``transformed_policy = policy[..., perm]``;
        ``argsort(perm)[a]`` is where the symmetry takes move ``a``.

    Raises:
        ValueError: unknown game or symmetry, or ``num_actions`` too small for the board.
    """
    src = board_permutation(game, name)
    height, width, kind = _GAMES[game][:3]
    num_board = width if kind == "column" else height * width
    if num_actions < num_board:
        raise ValueError(f"num_actions={num_actions} is smaller than the {num_board} board actions of {game!r}")
    perm = np.arange(num_actions)
    # A column's cells all move to one column (the mirror is the only column symmetry).
    perm[:num_board] = src[:width] if kind == "column" else src
    return perm


@functools.lru_cache(maxsize=None)
def _tables(game: str, num_actions: int) -> tuple[np.ndarray, np.ndarray]:
    names = symmetries(game)
    return (np.stack([board_permutation(game, n) for n in names]),
            np.stack([action_permutation(game, n, num_actions) for n in names]))


def transform(game: str, name: str, observation: jax.Array, policy: jax.Array, legal_action_mask: jax.Array):
    """Applies one symmetry to positions.

    Args:
        game: the pgx game id.
        name: one of ``symmetries(game)``.
        observation: ``[..., H, W, C]`` boards.
        policy: ``[..., A]`` policy (or any per-action array).
        legal_action_mask: ``[..., A]`` bool.

    Returns:
        ``(observation, policy, legal_action_mask)`` of the transformed positions.
    """
    src = jnp.asarray(board_permutation(game, name))
    perm = jnp.asarray(action_permutation(game, name, policy.shape[-1]))
    *lead, height, width, channels = observation.shape
    cells = observation.reshape(*lead, height * width, channels)[..., src, :]
    return cells.reshape(observation.shape), policy[..., perm], legal_action_mask[..., perm]


def random_symmetry(key: jax.Array, game: str, observation, policy, legal_action_mask):
    """Applies to each position of a ``[N, ...]`` batch a symmetry drawn uniformly from the game's."""
    boards, actions = _tables(game, policy.shape[-1])
    n, height, width, channels = observation.shape
    pick = jax.random.randint(key, (n,), 0, len(boards))
    src = jnp.asarray(boards)[pick]  # [N, H * W]
    perm = jnp.asarray(actions)[pick]  # [N, A]
    cells = jnp.take_along_axis(observation.reshape(n, height * width, channels), src[:, :, None], axis=1)
    return (cells.reshape(observation.shape), jnp.take_along_axis(policy, perm, axis=1),
            jnp.take_along_axis(legal_action_mask, perm, axis=1))
