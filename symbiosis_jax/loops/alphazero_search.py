"""The tree search as the AlphaZero loop uses it: network-guided search and a pure-MCTS baseline.

``make_search_fn`` turns a ``config.search`` section and a network into
``search_fn(key, params, state, tree=None) -> SearchResult`` over a batch of pgx states.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from symbiosis_jax.mcts.env import PGX_GAMES

GAMES = tuple(PGX_GAMES)  # the pgx games the loop plays; to add one, see mcts.env.PGX_GAMES
ALGORITHMS = ("gumbel", "puct")


@flax.struct.dataclass
class SearchResult:
    """What self-play and agents need from one search per game.

    Attributes:
        action: ``[B]`` int32, the search's (exploratory) choice.
        policy: ``[B, A]`` float32, the improved policy (training target).
        visit_counts: ``[B, A]`` int32, root visit counts.
        root_value: ``[B]`` float32, the searched value of the root for the player to move.
        tree: the search's ``mcts.Tree`` (for ``mcts.reuse_subtree``), or None.
    """

    action: jax.Array
    policy: jax.Array
    visit_counts: jax.Array
    root_value: jax.Array
    tree: Any = None


def validate_search_config(cfg: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` for a search section that cannot run."""
    if cfg.algorithm not in ALGORITHMS:
        raise ValueError(f"config.search.algorithm={cfg.algorithm!r} is not one of {ALGORITHMS}")
    if not isinstance(cfg.num_simulations, int) or cfg.num_simulations <= 0:
        raise ValueError(f"config.search.num_simulations={cfg.num_simulations!r} must be a positive int")
    if cfg.num_nodes <= 0:
        raise ValueError(f"config.search.num_nodes={cfg.num_nodes!r} must be a positive int")
    if cfg.num_simulations + 1 > cfg.num_nodes:
        raise ValueError(
            f"config.search.num_simulations={cfg.num_simulations} needs {cfg.num_simulations + 1} tree nodes "
            f"(one per simulation plus the root) but config.search.num_nodes={cfg.num_nodes}"
        )
    # (pb_c_*, gumbel_scale, reuse_tree and walk_unroll may be absent: configs saved before they existed.)
    if "reuse_tree" in cfg and not isinstance(cfg.reuse_tree, bool):
        raise ValueError(f"config.search.reuse_tree={cfg.reuse_tree!r} must be True or False")
    if "walk_unroll" in cfg and (not isinstance(cfg.walk_unroll, int) or isinstance(cfg.walk_unroll, bool)
                                 or cfg.walk_unroll < 1):
        raise ValueError(f"config.search.walk_unroll={cfg.walk_unroll!r} must be an int >= 1")
    if cfg.algorithm == "puct":
        # The search checks these too, but only while tracing inside the jitted iteration.
        if "pb_c_base" in cfg and not cfg.pb_c_base > 0:
            raise ValueError(f"config.search.pb_c_base={cfg.pb_c_base!r} must be > 0")
        if not cfg.dirichlet_alpha > 0:
            raise ValueError(f"config.search.dirichlet_alpha={cfg.dirichlet_alpha!r} must be > 0")
        if not 0.0 <= cfg.dirichlet_fraction <= 1.0:
            raise ValueError(f"config.search.dirichlet_fraction={cfg.dirichlet_fraction!r} must be in [0, 1]")
    if cfg.algorithm == "gumbel" and cfg.max_num_considered_actions <= 0:
        raise ValueError(
            f"config.search.max_num_considered_actions={cfg.max_num_considered_actions} must be positive"
        )
    if cfg.algorithm == "gumbel" and "gumbel_scale" in cfg and not cfg.gumbel_scale >= 0:
        raise ValueError(f"config.search.gumbel_scale={cfg.gumbel_scale!r} must be >= 0")


def make_search_fn(
    cfg: ml_collections.ConfigDict,
    env,
    apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]],
    *,
    add_noise: bool = True,
) -> Callable[[jax.Array, Any, Any], SearchResult]:
    """Network-guided search over a batch of pgx states.

    Args:
        cfg: ``config.search``.
        env: pgx environment.
        apply_fn: ``(params, obs [B, ...]) -> (logits [B, A], value [B])``.
        add_noise: root exploration noise (Dirichlet for PUCT, Gumbel for Gumbel);
            off for evaluation.

    Returns:
        ``search_fn(key, params, state, tree=None) -> SearchResult``; ``tree`` is an
        ``mcts.Tree`` to continue (from ``mcts.reuse_subtree``; games whose tree is
        empty start fresh).
    """
    from symbiosis_jax import mcts

    game = mcts.pgx_env(env.id)
    evaluate_fn = mcts.make_network_evaluator(game, apply_fn)
    return _search_fn(cfg, game, evaluate_fn, add_noise=add_noise)


def _search_fn(cfg, game, evaluate_fn, *, add_noise: bool):
    from symbiosis_jax import mcts

    # Constants the config leaves out take the search functions' own defaults.
    given = lambda *names: {k: cfg[k] for k in names if k in cfg}  # noqa: E731

    def search_fn(key, params, state, tree=None):
        common = dict(
            env=game, evaluate_fn=evaluate_fn, num_simulations=cfg.num_simulations,
            num_nodes=cfg.num_nodes, tree=tree, **given("walk_unroll"),
        )
        if cfg.algorithm == "gumbel":
            out = mcts.gumbel_search(
                params, key, state, **common,
                max_num_considered_actions=cfg.max_num_considered_actions,
                **(given("gumbel_scale") if add_noise else {"gumbel_scale": 0.0}),
            )
        else:
            out = mcts.puct_search(
                params, key, state, **common, **given("pb_c_init", "pb_c_base"),
                dirichlet_alpha=cfg.dirichlet_alpha,
                dirichlet_fraction=cfg.dirichlet_fraction if add_noise else 0.0,
                temperature=1.0 if add_noise else 0.0,
            )
        return SearchResult(
            action=out.action.astype(jnp.int32),
            policy=out.action_weights.astype(jnp.float32),
            visit_counts=out.tree.root_visit_counts.astype(jnp.int32),
            root_value=out.root_value.astype(jnp.float32),
            tree=out.tree,
        )

    return search_fn


def pure_mcts_agent(env, *, num_simulations: int, num_rollouts: int = 1):
    """The pure-MCTS baseline as an arena agent: PUCT search with a uniform prior and
    random-rollout values, playing its most visited move.

    Args:
        env: pgx environment.
        num_simulations: simulations per move (e.g. 1,000 for the connect four target).
        num_rollouts: random playouts per evaluated leaf.
    """
    from symbiosis_jax import mcts

    game = mcts.pgx_env(env.id)
    evaluate_fn = mcts.make_rollout_evaluator(game, num_rollouts=num_rollouts)
    cfg = ml_collections.ConfigDict(
        dict(algorithm="puct", num_simulations=num_simulations, num_nodes=num_simulations + 1,
             dirichlet_alpha=0.3, dirichlet_fraction=0.0, max_num_considered_actions=16)
    )
    search_fn = _search_fn(cfg, game, evaluate_fn, add_noise=False)

    def agent_fn(params, key, state):
        del params
        return search_fn(key, None, state).action

    return agent_fn
