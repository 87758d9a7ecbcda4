"""Leaf evaluators: a policy-value network, and random rollouts for pure MCTS.

An evaluator is `evaluate_fn(params, key, states) -> (prior_logits [B, A],
value [B])`, both for the player to move in each state; the search applies the
legal-action mask and sets the value of terminal states to 0 itself.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from symbiosis_jax.mcts.env import GameEnv
from symbiosis_jax.mcts.search import EvaluateFn


def make_network_evaluator(
    env: GameEnv, apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
) -> EvaluateFn:
    """Wraps `apply_fn(params, observations [B, ...]) -> (logits [B, A], value [B])`.

    Args:
        env: the game, for `observation`.
        apply_fn: the network.

    Returns:
        An `evaluate_fn` that ignores its key.
    """

    def evaluate_fn(params, key, states):
        del key
        return apply_fn(params, jax.vmap(env.observation)(states))

    return evaluate_fn


def _rollout_value(env: GameEnv, key: jax.Array, state: Any, max_steps: int) -> jax.Array:
    """Outcome of one uniformly random playout, for the player to move in `state`."""

    def cond(carry):
        step, state, _, _ = carry
        return jnp.logical_and(step < max_steps, ~env.terminated(state))

    def body(carry):
        step, state, sign, total = carry
        legal = env.legal_action_mask(state)
        action = jax.random.categorical(
            jax.random.fold_in(key, step), jnp.where(legal, 0.0, -jnp.inf)
        )
        state, reward = env.step(state, action)
        # The mover at an even step is the player to move at the start.
        return step + 1, state, -sign, total + sign * reward.astype(jnp.float32)

    carry = (jnp.int32(0), state, jnp.float32(1.0), jnp.float32(0.0))
    return jax.lax.while_loop(cond, body, carry)[3]


def make_rollout_evaluator(
    env: GameEnv, *, num_rollouts: int = 1, max_steps: int = 1000
) -> EvaluateFn:
    """Pure-MCTS evaluator: uniform prior, value = mean outcome of random playouts.

    Args:
        env: the game.
        num_rollouts: playouts per state, averaged.
        max_steps: a playout stops (value so far) after this many moves.

    Returns:
        An `evaluate_fn` whose `params` are ignored (pass None).
    """
    if not isinstance(num_rollouts, int) or num_rollouts < 1:
        raise ValueError(f"num_rollouts={num_rollouts!r} must be an int >= 1")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} must be an int >= 1")

    def evaluate_fn(params, key, states):
        del params
        batch_size = jax.tree.leaves(states)[0].shape[0]
        keys = jax.random.split(key, (batch_size, num_rollouts))
        one = lambda k, s: _rollout_value(env, k, s, max_steps)  # noqa: E731
        values = jax.vmap(lambda ks, s: jax.vmap(one, in_axes=(0, None))(ks, s))(keys, states)
        logits = jnp.zeros((batch_size, env.num_actions), jnp.float32)
        return logits, jnp.mean(values, axis=-1)

    return evaluate_fn
