"""Arena: two agents play batches of games from both sides; win/draw/loss and Elo.

An *agent* is a jittable function ``agent_fn(params, key, state) -> action`` from a
batch of pgx states ``[B]`` to actions ``[B]`` int32 for the player to move; ``params``
is whatever pytree the agent needs (network parameters, or ``None``) and is traced,
so new parameters never cause a recompile. This module makes the simple agents
(random, raw network, exact tic-tac-toe minimax); search agents come from
:mod:`symbiosis_jax.loops.alphazero`.

It also walks the whole game tree of tic-tac-toe against a deterministic agent,
trying every reply of the opponent (:func:`tic_tac_toe_every_reply`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pgx

from symbiosis_jax.games import minimax_action, solve_tic_tac_toe

AgentFn = Callable[[Any, jax.Array, pgx.State], jax.Array]


@flax.struct.dataclass
class ArenaResult:
    """Outcome counts for agent A against agent B.

    Attributes:
        wins: ``[2]`` int32, A's wins with A moving first (index 0) and second (index 1).
        draws: ``[2]`` int32, draws, same layout.
        losses: ``[2]`` int32, A's losses, same layout.
    """

    wins: jax.Array
    draws: jax.Array
    losses: jax.Array

    @property
    def num_games(self) -> int:
        return int(np.sum(self.wins) + np.sum(self.draws) + np.sum(self.losses))

    @property
    def score(self) -> float:
        """A's mean score: 1 per win, 1/2 per draw."""
        return float((np.sum(self.wins) + 0.5 * np.sum(self.draws)) / max(self.num_games, 1))

    def summary(self) -> dict[str, float]:
        """Flat metrics for logging (rates per side and overall, and the Elo difference)."""
        out = {}
        for i, side in enumerate(("first", "second")):
            n = max(int(self.wins[i] + self.draws[i] + self.losses[i]), 1)
            out[f"win_rate_{side}"] = float(self.wins[i]) / n
            out[f"draw_rate_{side}"] = float(self.draws[i]) / n
            out[f"loss_rate_{side}"] = float(self.losses[i]) / n
        n = max(self.num_games, 1)
        out["win_rate"] = float(np.sum(self.wins)) / n
        out["loss_rate"] = float(np.sum(self.losses)) / n
        out["elo"] = elo_difference(np.sum(self.wins), np.sum(self.draws), np.sum(self.losses))
        return out


def elo_difference(wins: int, draws: int, losses: int) -> float:
    """Elo difference of a player over its opponent implied by its mean score.

    ``score = (wins + draws / 2) / n`` and ``elo = 400 * log10(score / (1 - score))``.
    A perfect or null score has no finite estimate; it is clipped half a game away
    from the limit, so ``n`` games bound the difference.

    Args:
        wins, draws, losses: counts for the player.

    Returns:
        The Elo difference (positive: the player is stronger).
    """
    n = int(wins) + int(draws) + int(losses)
    if n <= 0:
        raise ValueError(f"wins + draws + losses = {n} must be positive")
    score = (int(wins) + 0.5 * int(draws)) / n
    half = 0.5 / n
    score = min(max(score, half), 1.0 - half)
    return 400.0 * math.log10(score / (1.0 - score))


def elo_ratings(score: np.ndarray, games: np.ndarray, *, num_iters: int = 200, anchor: int = 0) -> np.ndarray:
    """Elo ratings of several players from pairwise results (Bradley-Terry, maximum likelihood).

    Args:
        score: ``[P, P]`` points player i scored against player j (wins + draws/2).
        games: ``[P, P]`` games played between i and j (symmetric).
        num_iters: minorisation-maximisation iterations.
        anchor: player whose rating is fixed at 0.

    Returns:
        ``[P]`` Elo ratings.
    """
    score = np.asarray(score, np.float64)
    games = np.asarray(games, np.float64)
    # Half a point of prior against every opponent keeps perfect scores finite.
    prior = 0.5 * (games > 0)
    score = score + prior
    games = games + 2 * prior
    strength = np.ones(score.shape[0])
    for _ in range(num_iters):
        denom = np.sum(games / (strength[:, None] + strength[None, :]), axis=1)
        strength = np.sum(score, axis=1) / np.maximum(denom, 1e-12)
        strength = strength / strength[anchor]
    return 400.0 * np.log10(strength)


@functools.lru_cache(maxsize=None)
def random_agent() -> AgentFn:
    """Plays a uniformly random legal move."""

    def agent_fn(params, key, state):
        del params
        logits = jnp.where(state.legal_action_mask, 0.0, -jnp.inf)
        return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)

    return agent_fn


def network_agent(apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]) -> AgentFn:
    """Plays the argmax of the network's policy over legal moves, without search.

    Args:
        apply_fn: ``(params, observations [B, ...]) -> (logits [B, A], value [B])``.
    """

    def agent_fn(params, key, state):
        del key
        logits, _ = apply_fn(params, state.observation)
        return jnp.argmax(jnp.where(state.legal_action_mask, logits, -jnp.inf), axis=-1).astype(jnp.int32)

    return agent_fn


@functools.lru_cache(maxsize=None)
def minimax_agent() -> AgentFn:
    """Exact tic-tac-toe player: a uniformly random choice among the optimal moves."""
    solution = solve_tic_tac_toe()

    def agent_fn(params, key, state):
        del params
        return minimax_action(key, solution, state._x.board)

    return agent_fn


def play(
    key: jax.Array,
    env: pgx.Env,
    agent_a: AgentFn,
    agent_b: AgentFn,
    *,
    num_games: int,
    max_num_steps: int,
    params_a: Any = None,
    params_b: Any = None,
    opening_moves: int = 0,
) -> ArenaResult:
    """Plays ``num_games`` games, half with A moving first, half with B moving first.

    Two deterministic agents (searches without noise) play one game per side over and
    over; ``opening_moves`` makes the games differ: the first plies are uniformly random
    legal moves, and game ``i`` and game ``i + num_games / 2`` start from the same random
    opening with the sides swapped, so neither agent is favoured by the openings it drew.

    Args:
        key: PRNG key.
        env: a two-player pgx environment.
        agent_a, agent_b: agents (see module docstring); pass the same function objects
            again to reuse the compiled arena.
        num_games: even number of games.
        max_num_steps: moves after which unfinished games count as draws.
        params_a, params_b: the agents' parameters.
        opening_moves: plies played at random (paired over the two halves) before the
            agents move; 0 = none (the games' start states then differ only as
            ``env.init`` makes them differ).

    Returns:
        A's results by side.
    """
    if num_games <= 0 or num_games % 2:
        raise ValueError(f"num_games={num_games} must be a positive even number")
    if not isinstance(opening_moves, int) or not 0 <= opening_moves < max_num_steps:
        raise ValueError(f"opening_moves={opening_moves!r} must be an int in [0, max_num_steps={max_num_steps})")
    return _play_jit(key, params_a, params_b, env, agent_a, agent_b, num_games, max_num_steps, opening_moves)


def _play(key, params_a, params_b, env, agent_a, agent_b, num_games, max_num_steps, opening_moves):
    init_key, key = jax.random.split(key)
    opening_key = jax.random.fold_in(init_key, 1)
    if opening_moves:
        # Game i and game i + num_games / 2 share their start state and opening.
        half_keys = jax.random.split(init_key, num_games // 2)
        state = jax.vmap(env.init)(jnp.concatenate([half_keys, half_keys]))
    else:
        state = jax.vmap(env.init)(jax.random.split(init_key, num_games))
    # Seat A at the player id that moves first in the first half of the games.
    a_first = jnp.arange(num_games) < num_games // 2
    a_player = jnp.where(a_first, state.current_player, 1 - state.current_player)

    def body(carry, step):
        state, total = carry
        ka, kb = jax.random.split(jax.random.fold_in(key, step))
        act_a = agent_a(params_a, ka, state)
        act_b = agent_b(params_b, kb, state)
        action = jnp.where(state.current_player == a_player, act_a, act_b)
        if opening_moves:
            pair_keys = jax.random.split(jax.random.fold_in(opening_key, step), num_games // 2)
            legal_logits = jnp.where(state.legal_action_mask, 0.0, -jnp.inf)
            opening = jax.vmap(jax.random.categorical)(jnp.concatenate([pair_keys, pair_keys]), legal_logits)
            action = jnp.where(step < opening_moves, opening.astype(action.dtype), action)
        state = jax.vmap(env.step)(state, action)
        return (state, total + state.rewards), None

    total = jnp.zeros((num_games, 2), jnp.float32)
    (state, total), _ = jax.lax.scan(body, (state, total), jnp.arange(max_num_steps))
    reward_a = jnp.take_along_axis(total, a_player[:, None], axis=1)[:, 0]
    sides = jnp.stack([a_first, ~a_first])  # [2, B]
    return ArenaResult(
        wins=jnp.sum(sides & (reward_a[None, :] > 0), axis=1).astype(jnp.int32),
        draws=jnp.sum(sides & (reward_a[None, :] == 0), axis=1).astype(jnp.int32),
        losses=jnp.sum(sides & (reward_a[None, :] < 0), axis=1).astype(jnp.int32),
    )


_play_jit = jax.jit(_play, static_argnums=(3, 4, 5, 6, 7, 8))


@flax.struct.dataclass
class EveryReplyResult:
    """Outcomes of a deterministic agent over every line of the opponent's replies.

    Attributes:
        wins, draws, losses: ``[2]`` counts of lines (leaves of the game tree) with the
            agent first (index 0) and second (index 1).
    """

    wins: np.ndarray
    draws: np.ndarray
    losses: np.ndarray


def _pad(tree, size):
    """Pads the leading axis of every leaf to ``size`` by repeating the first row."""
    return jax.tree.map(lambda x: np.concatenate([x, np.repeat(x[:1], size - x.shape[0], axis=0)]), tree)


_JIT_CACHE: dict = {}
_STEP_FNS: dict = {}


def _cached_jit(fn):
    if fn not in _JIT_CACHE:
        _JIT_CACHE[fn] = jax.jit(fn)
    return _JIT_CACHE[fn]


def tic_tac_toe_every_reply(
    agent_fn: AgentFn, params: Any = None, *, key: jax.Array | None = None, pad_to: int = 1024
) -> EveryReplyResult:
    """Plays a deterministic agent against every possible sequence of opponent moves.

    The agent moves once per position on its turn; on the opponent's turn the tree
    branches into every legal move. A line that the agent loses is a loss against
    some opponent, so ``losses == 0`` means the agent never loses to anyone,
    including the exact minimax player.

    Args:
        agent_fn: a deterministic agent (e.g. the search agent without noise).
        params: the agent's parameters.
        key: PRNG key passed to the agent (unused by deterministic agents).
        pad_to: fixed batch size of the agent's calls (avoids recompiling per level).

    Returns:
        Line counts with the agent moving first and second.
    """
    env = pgx.make("tic_tac_toe")
    key = jax.random.PRNGKey(0) if key is None else key
    step_fn = _cached_jit(_STEP_FNS.setdefault("tic_tac_toe", jax.vmap(env.step)))
    agent_jit = _cached_jit(agent_fn)
    result = {k: [0, 0] for k in ("wins", "draws", "losses")}
    for side in (0, 1):
        # The agent is pgx player 0; X moves first, so the agent is X when side == 0.
        root = env.init(jax.random.PRNGKey(0)).replace(current_player=jnp.int32(side))
        # Bookkeeping stays in numpy so that only the fixed-size agent and step calls compile.
        frontier = jax.tree.map(lambda x: np.asarray(x)[None], root)
        depth = 0
        while frontier.current_player.shape[0] > 0:
            num = frontier.current_player.shape[0]
            if num > pad_to:
                raise ValueError(f"pad_to={pad_to} is smaller than a frontier of {num} positions")
            agents_turn = int(frontier.current_player[0]) == 0
            if agents_turn:
                parents = frontier
                actions = np.asarray(agent_jit(params, jax.random.fold_in(key, depth), _pad(frontier, pad_to)))[:num]
            else:
                parent, action = np.nonzero(np.asarray(frontier.legal_action_mask))
                parents = jax.tree.map(lambda x: x[parent], frontier)
                actions = action.astype(np.int32)
            num = actions.shape[0]
            if num > pad_to:
                raise ValueError(f"pad_to={pad_to} is smaller than a frontier of {num} positions")
            children = jax.device_get(step_fn(_pad(parents, pad_to), _pad(actions, pad_to)))
            children = jax.tree.map(lambda x: x[:num], children)
            done = np.asarray(children.terminated)
            reward = np.asarray(children.rewards[:, 0])
            result["wins"][side] += int(np.sum(done & (reward > 0)))
            result["draws"][side] += int(np.sum(done & (reward == 0)))
            result["losses"][side] += int(np.sum(done & (reward < 0)))
            frontier = jax.tree.map(lambda x: x[~done], children)
            depth += 1
    return EveryReplyResult(**{k: np.asarray(v) for k, v in result.items()})


_BOARD_SHAPES = {"tic_tac_toe": (3, 3), "connect_four": (6, 7)}


def render_board(env_id: str, state: pgx.State) -> str:
    """Text picture of one tic-tac-toe or connect four position: X moved first, O second.

    Args:
        env_id: ``"tic_tac_toe"`` or ``"connect_four"``.
        state: one (unbatched) pgx state.
    """
    if env_id not in _BOARD_SHAPES:
        raise ValueError(f"env_id={env_id!r} is not one of {tuple(_BOARD_SHAPES)}")
    board = np.asarray(state._x.board).reshape(_BOARD_SHAPES[env_id])
    symbols = {-1: ".", 0: "X", 1: "O"}
    rows = [" ".join(symbols[int(c)] for c in row) for row in board]
    if env_id == "connect_four":
        rows.append(" ".join(str(i) for i in range(board.shape[1])))
    return "\n".join(rows)


def record_game(
    key: jax.Array,
    env: pgx.Env,
    agent_first: AgentFn,
    agent_second: AgentFn,
    *,
    params_first: Any = None,
    params_second: Any = None,
    max_num_steps: int = 1000,
) -> tuple[list[pgx.State], list[int], np.ndarray]:
    """Plays one game on the host, move by move, for display.

    Returns:
        ``(states, actions, rewards)``: the states from the start to the end (numpy
        leaves), the actions, and the final ``[2]`` rewards of (first, second) agent.
    """
    init_key, key = jax.random.split(key)
    # The state and actions stay in numpy between calls: an agent's output carries the
    # sharding of its parameters (a restored run's mesh), and a device state stepped with it
    # would change the agents' input types after the first move and compile each agent twice.
    state = jax.tree.map(lambda x: np.asarray(x)[None], env.init(init_key))
    first_player = int(state.current_player[0])
    step_fn = _cached_jit(_STEP_FNS.setdefault(env.id, jax.vmap(env.step)))
    first_jit, second_jit = _cached_jit(agent_first), _cached_jit(agent_second)
    states, actions = [jax.tree.map(lambda x: x[0], state)], []
    total = np.zeros(2, np.float32)
    for t in range(max_num_steps):
        if bool(state.terminated[0]) or bool(state.truncated[0]):
            break
        k = jax.random.fold_in(key, t)
        if int(state.current_player[0]) == first_player:
            action = np.asarray(first_jit(params_first, k, state))
        else:
            action = np.asarray(second_jit(params_second, k, state))
        state = jax.device_get(step_fn(state, action))
        total += state.rewards[0]
        actions.append(int(action[0]))
        states.append(jax.tree.map(lambda x: x[0], state))
    rewards = np.array([total[first_player], total[1 - first_player]])
    return states, actions, rewards
