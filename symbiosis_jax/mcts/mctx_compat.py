"""The same game and evaluator as mctx inputs, for parity tests and benchmarks.

mctx (a test and benchmark dependency only, imported on call) searches with a
`recurrent_fn(params, key, action, embedding)`. Built here from a `GameEnv` and
an `evaluate_fn`, it makes mctx see exactly what our search sees: the same
masked logits, terminal values of 0, the mover's reward, and discount -1
between players (0 into a terminal state).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from symbiosis_jax.mcts.env import GameEnv
from symbiosis_jax.mcts.search import EvaluateFn, mask_logits


def _evaluate(env: GameEnv, evaluate_fn: EvaluateFn, params, key, states):
    logits, value = evaluate_fn(params, key, states)
    legal = jax.vmap(env.legal_action_mask)(states)
    terminal = jax.vmap(env.terminated)(states)
    value = jnp.where(terminal, 0.0, value.astype(jnp.float32))
    return mask_logits(logits.astype(jnp.float32), legal), value, legal, terminal


def mctx_root(env: GameEnv, evaluate_fn: EvaluateFn, params: Any, key: jax.Array, states: Any):
    """Returns `(mctx.RootFnOutput, invalid_actions bool[B, A])` for a batch of states.

    Pass `key` equal to the root key our search uses to compare with a
    stochastic evaluator; deterministic evaluators ignore it.
    """
    import mctx

    logits, value, legal, _ = _evaluate(env, evaluate_fn, params, key, states)
    return mctx.RootFnOutput(prior_logits=logits, value=value, embedding=states), ~legal


def mctx_recurrent_fn(env: GameEnv, evaluate_fn: EvaluateFn):
    """Returns an mctx `recurrent_fn` stepping `env` and evaluating with `evaluate_fn`."""
    import mctx

    def recurrent_fn(params, key, action, states):
        next_states, reward = jax.vmap(env.step)(states, action)
        logits, value, _, terminal = _evaluate(env, evaluate_fn, params, key, next_states)
        # mctx may step below a terminal node; a terminal state stays terminal
        # there and the zero discount stops anything below it from counting.
        discount = jnp.where(terminal, 0.0, -1.0)
        was_terminal = jax.vmap(env.terminated)(states)
        reward = jnp.where(was_terminal, 0.0, reward.astype(jnp.float32))
        out = mctx.RecurrentFnOutput(reward=reward, discount=discount, prior_logits=logits, value=value)
        return out, next_states

    return recurrent_fn
