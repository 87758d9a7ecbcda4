"""Batched tree search in JAX: PUCT (AlphaZero), Gumbel, subtree reuse, pure MCTS.

Typical use (B games, A actions)::

    from symbiosis_jax import mcts
    env = mcts.pgx_env("connect_four")
    evaluate_fn = mcts.make_network_evaluator(env, apply_fn)  # (params, obs) -> (logits, value)
    search = jax.jit(functools.partial(
        mcts.puct_search, env=env, evaluate_fn=evaluate_fn, num_simulations=64,
        num_nodes=128))
    out = search(params, key, states)           # out.action [B], out.action_weights [B, A]
    tree = jax.jit(mcts.reuse_subtree)(out.tree, out.action, keep=~done)
    out = search(params, key2, next_states, tree=tree)

See docs/mcts.md.
"""

from symbiosis_jax.mcts.env import PGX_GAMES, GameEnv, PgxEnv, pgx_env
from symbiosis_jax.mcts.evaluators import make_network_evaluator, make_rollout_evaluator
from symbiosis_jax.mcts.gumbel import gumbel_search, halving_schedule
from symbiosis_jax.mcts.puct import puct_search, visit_policy
from symbiosis_jax.mcts.qtransforms import (
    NodeStats,
    qtransform_by_min_max,
    qtransform_by_parent_and_siblings,
    qtransform_completed_by_mix_value,
)
from symbiosis_jax.mcts.search import EvaluateFn, SearchOutput, mask_logits
from symbiosis_jax.mcts.tree import ROOT, UNVISITED, Tree, empty_tree, reuse_subtree

__all__ = [
    "EvaluateFn",
    "GameEnv",
    "NodeStats",
    "PGX_GAMES",
    "PgxEnv",
    "ROOT",
    "SearchOutput",
    "Tree",
    "UNVISITED",
    "empty_tree",
    "gumbel_search",
    "halving_schedule",
    "make_network_evaluator",
    "make_rollout_evaluator",
    "mask_logits",
    "pgx_env",
    "puct_search",
    "qtransform_by_min_max",
    "qtransform_by_parent_and_siblings",
    "qtransform_completed_by_mix_value",
    "reuse_subtree",
    "visit_policy",
]
