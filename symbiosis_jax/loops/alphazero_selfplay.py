"""AlphaZero self-play: a batch of games played to the end by network plus search, in one scan."""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from symbiosis_jax import mcts

Params = Any


@flax.struct.dataclass
class Sample:
    """One training position.

    Attributes:
        observation: ``[...]`` network input for the player to move.
        legal_action_mask: ``[A]`` bool, True = legal.
        target_policy: ``[A]`` search policy.
        target_value: ``[]`` value target for the player to move: the final outcome
            ``z`` in ``{-1, 0, 1}``, or ``(1 - w) z + w q`` with the search's root value
            ``q`` when ``selfplay.value_target_root_weight = w > 0``.
    """

    observation: jax.Array
    legal_action_mask: jax.Array
    target_policy: jax.Array
    target_value: jax.Array


class _MoveCarry(NamedTuple):
    state: Any  # batched pgx state [B]
    done: jax.Array  # [B] bool, game over (terminated or resigned) before this move
    total_rewards: jax.Array  # [B, 2] accumulated rewards per player id
    tree: Any  # with config.search.reuse_tree: the kept subtrees (mcts.Tree [B]), else None


def selfplay(key: jax.Array, params: Params, *, graphdef, env, search_fn, config) -> tuple[Sample, jax.Array, dict]:
    """Plays ``selfplay.batch_size`` games to the end with the network plus search.

    Args:
        key: PRNG key.
        params: network parameters.
        graphdef: the network's NNX graph definition.
        env: pgx environment.
        search_fn: ``(key, params, state, tree=None) -> SearchResult`` (see
            ``alphazero_search``).
        config: the experiment config. With ``config.search.reuse_tree`` each
            search continues the subtree of the move played before it (its
            visits are kept; a game's tree is emptied when it ends).

    Returns:
        ``(samples, valid, stats)``: ``Sample`` with ``[T, B, ...]`` fields, ``valid [T, B]``
        bool (False after a game ended) and scalar statistics.
    """
    cfg = config.selfplay
    num_games = cfg.batch_size
    init_key, noresign_key, key = jax.random.split(key, 3)
    state = jax.vmap(env.init)(jax.random.split(init_key, num_games))
    may_resign = jax.random.uniform(noresign_key, (num_games,)) >= cfg.resign_disabled_fraction
    resign_on = cfg.resign_threshold > -1.0

    reuse = config.search.get("reuse_tree", False)

    def body(carry: _MoveCarry, t):
        state, done, total, tree = carry
        search_key, act_key = jax.random.split(jax.random.fold_in(key, t))
        if reuse:
            result = search_fn(search_key, params, state, tree)
            # Root visits the search found already there (0 where the tree was empty).
            reused = jnp.where(tree.num_used > 0, tree.node_visits[:, 0], 0).astype(jnp.float32)
        else:
            result = search_fn(search_key, params, state)
            reused = jnp.zeros((num_games,), jnp.float32)
        explore = t < cfg.temperature_moves
        # After the temperature moves: the most visited action (PUCT) or the argmax
        # of the improved policy (Gumbel), both deterministic.
        greedy_scores = result.visit_counts if config.search.algorithm == "puct" else result.policy
        greedy = jnp.argmax(jnp.where(state.legal_action_mask, greedy_scores, -1), axis=-1)
        action = jnp.where(explore, result.action, greedy).astype(jnp.int32)
        # Epsilon-random moves show the network positions that good play never reaches
        # (an opponent's blunders); the search target is still recorded.
        random_action = jax.random.categorical(act_key, jnp.where(state.legal_action_mask, 0.0, -jnp.inf), axis=-1)
        is_random = jax.random.uniform(jax.random.fold_in(act_key, 1), (num_games,)) < cfg.random_move_prob
        action = jnp.where(is_random, random_action, action).astype(jnp.int32)
        player = state.current_player
        sample = Sample(
            observation=state.observation.astype(jnp.float32),
            legal_action_mask=state.legal_action_mask,
            target_policy=result.policy,
            target_value=jnp.zeros((num_games,), jnp.float32),
        )
        ended = state.terminated | state.truncated
        alive = ~(done | ended)
        resigns = alive & may_resign & resign_on & (result.root_value < cfg.resign_threshold)
        resign_rewards = jnp.where(
            jax.nn.one_hot(player, 2, dtype=bool), -1.0, 1.0
        ) * resigns[:, None].astype(jnp.float32)
        next_state = jax.vmap(env.step)(state, action)
        step_rewards = jnp.where(resigns[:, None], 0.0, next_state.rewards) * alive[:, None].astype(jnp.float32)
        total = total + step_rewards + resign_rewards
        next_done = done | ended | resigns | next_state.terminated | next_state.truncated
        if reuse:
            tree = mcts.reuse_subtree(result.tree, action, keep=~next_done)
        out = (sample, alive, player, resigns, result.root_value, reused)
        return _MoveCarry(next_state, next_done, total, tree), out

    tree = None
    if reuse:
        tree = mcts.empty_tree(state, num_nodes=config.search.num_nodes, num_actions=env.num_actions)
    carry = _MoveCarry(state, jnp.zeros((num_games,), bool), jnp.zeros((num_games, 2), jnp.float32), tree)
    carry, (samples, valid, players, resigns, root_values, reused) = jax.lax.scan(
        body, carry, jnp.arange(cfg.max_num_steps)
    )
    # The outcome for the player who was to move at each position.
    outcome_tb = jnp.take_along_axis(
        jnp.broadcast_to(carry.total_rewards[None], (cfg.max_num_steps, num_games, 2)), players[..., None], axis=-1
    )[..., 0]
    # Optionally mix in the search's own estimate of the position (lower variance than z
    # alone, which a single late blunder or random move can flip).
    w = cfg.get("value_target_root_weight", 0.0)
    target = outcome_tb if w == 0 else (1.0 - w) * outcome_tb + w * root_values
    samples = samples.replace(target_value=target)
    lengths = jnp.sum(valid, axis=0)
    # Games still running after max_num_steps have no outcome: keep them out of training.
    finished = carry.done | carry.state.terminated | carry.state.truncated
    valid = valid & finished[None, :]
    stats = {
        "selfplay/game_length": jnp.mean(lengths.astype(jnp.float32)),
        "selfplay/finished_fraction": jnp.mean(finished.astype(jnp.float32)),
        "selfplay/resign_fraction": jnp.mean(jnp.any(resigns, axis=0).astype(jnp.float32)),
        "selfplay/first_player_score": jnp.mean(carry.total_rewards[:, 0]),
        "selfplay/num_positions": jnp.sum(valid.astype(jnp.int32)),
    }
    if reuse:
        # Mean root visits a search started with, over the positions played (logged with reuse only).
        played = jnp.maximum(jnp.sum(valid), 1)
        stats["selfplay/reused_root_visits"] = jnp.sum(jnp.where(valid, reused, 0.0)) / played
    return samples, valid, stats
