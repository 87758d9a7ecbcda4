"""Gumbel search: Gumbel-top-k with sequential halving at the root, deterministic below.

At the root, k = min(max_num_considered_actions, legal actions) actions with
the largest g(a) + logits(a) are considered, and sequential halving spends the
budget on them, each round keeping the half with the largest
g(a) + logits(a) + sigma(completed Q(a)). Below the root, the action is the
argmax of pi'(a) - N(a) / (1 + sum N), pi' = softmax(logits + sigma(completed Q)),
whose visits track the improved policy pi'. The training target is pi' at the
root (Danihelka et al., "Policy improvement by planning with Gumbel", ICLR 2022).
With equal keys and constants it matches `mctx.gumbel_muzero_policy` exactly.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from symbiosis_jax.mcts import peraction
from symbiosis_jax.mcts.env import GameEnv
from symbiosis_jax.mcts.peraction import PerAction
from symbiosis_jax.mcts.qtransforms import (
    NodeStats,
    apply_qtransform,
    as_per_action,
    like_node,
    completed_q_and_total_visits,
    qtransform_completed_by_mix_value,
    sum_and_max,
)
from symbiosis_jax.mcts.search import (
    EvaluateFn,
    SearchOutput,
    init_root,
    mask_logits,
    masked_argmax,
    root_stats,
    run_simulations,
    validate_common,
)
from symbiosis_jax.mcts.tree import Tree


def halving_schedule(num_considered: int, num_simulations: int) -> tuple[int, ...]:
    """Visit count each simulation's root action must have under sequential halving.

    Each round gives every considered action max(1, floor(n / (ceil(log2 m) * k)))
    more visits, k being the number still considered, then halves k (not below 2).

    Args:
        num_considered: m, actions considered at the start.
        num_simulations: n.

    Returns:
        A tuple of length n: entry i is the visit count that the action chosen
        at simulation i currently has.
    """
    if num_considered <= 1:
        return tuple(range(num_simulations))
    rounds = int(math.ceil(math.log2(num_considered)))
    sequence: list[int] = []
    visits = [0] * num_considered
    k = num_considered
    while len(sequence) < num_simulations:
        extra = max(1, int(num_simulations / (rounds * k)))
        for _ in range(extra):
            sequence.extend(visits[:k])
            for i in range(k):
                visits[i] += 1
        k = max(2, k // 2)
    return tuple(sequence[:num_simulations])


def considered_scores(
    considered_visit: jax.Array,
    gumbel: jax.Array,
    prior_logits: jax.Array,
    sigma_q: jax.Array,
    visit_counts: jax.Array,
) -> jax.Array:
    """g + logits + sigma(q) for actions with exactly `considered_visit` visits, else -inf.

    Args:
        considered_visit: int32[..., 1].
        gumbel, prior_logits, sigma_q: float32[..., A].
        visit_counts: int32[..., A].

    Returns:
        float32[..., A].
    """
    logits = prior_logits - jnp.max(prior_logits, axis=-1, keepdims=True)
    return _considered_scores(
        considered_visit[..., 0],
        PerAction.from_array(gumbel + logits),
        PerAction.from_array(sigma_q),
        PerAction.from_array(visit_counts),
    ).to_array()


def _considered_scores(
    considered_visit: jax.Array, gumbel_logits: PerAction, sigma_q: PerAction, visit_counts: PerAction
) -> PerAction:
    """`considered_scores` given g + logits (constant during a search, computed once).

    `considered_visit` has the batch shape [...], the others are `PerAction`.
    """
    penalty = peraction.where(visit_counts == considered_visit, 0.0, -jnp.inf)
    return peraction.maximum(-1e9, gumbel_logits + sigma_q) + penalty


def gumbel_interior_scores(
    node: NodeStats, *, qtransform_fn: Callable[[NodeStats], jax.Array]
):
    """pi'(a) - N(a) / (1 + sum N): its argmax makes visits follow pi'.

    Args:
        node: one node's (or a batch's) statistics, per-action fields as
            arrays [..., A] or `PerAction`.
        qtransform_fn: sigma.

    Returns:
        float32[..., A], or `PerAction` like the node's fields.
    """
    p = as_per_action(node)
    sigma_q, total = _sigma_and_total_visits(p, qtransform_fn)
    improved = peraction.softmax(p.prior_logits + sigma_q)
    scores = improved - p.children_visits / (1 + total)
    return like_node(node, scores)


def _sigma_and_total_visits(
    node: NodeStats, qtransform_fn: Callable[[NodeStats], jax.Array]
) -> tuple[PerAction, jax.Array]:
    """`qtransform_fn(node)` and `sum(node.children_visits)` (node with `PerAction` fields).

    For the default completed-Q transform (or a keyword `partial` of it) both
    come from `completed_q_and_total_visits`, which shares the visit reduction.
    """
    fn, kwargs = qtransform_fn, {}
    if isinstance(fn, functools.partial) and not fn.args:
        fn, kwargs = fn.func, fn.keywords
    if fn is qtransform_completed_by_mix_value:
        return completed_q_and_total_visits(node, **kwargs)
    return apply_qtransform(qtransform_fn, node), sum_and_max(node.children_visits)[0]


def gumbel_search(
    params: Any,
    key: jax.Array,
    root_states: Any,
    *,
    env: GameEnv,
    evaluate_fn: EvaluateFn,
    num_simulations: int,
    max_depth: int | None = None,
    num_nodes: int | None = None,
    tree: Tree | None = None,
    walk_unroll: int = 1,
    max_num_considered_actions: int = 16,
    gumbel_scale: float = 1.0,
    qtransform_fn: Callable[[NodeStats], jax.Array] = qtransform_completed_by_mix_value,
) -> SearchOutput:
    """Gumbel tree search from a batch of root states.

    Args:
        params: passed to `evaluate_fn`.
        key: PRNG key (Gumbel noise, evaluation).
        root_states: environment states, leaves [B, ...].
        env: the game (`GameEnv`).
        evaluate_fn: `(params, key, states) -> (prior_logits [B, A], value [B])`.
        num_simulations: simulations per game.
        max_depth: optional limit on edges from the root.
        num_nodes: node capacity N (default num_simulations + 1; more for reuse).
        tree: optional trees from `reuse_subtree`. Sequential halving counts
            only this search's root visits; completed Q uses all of them.
        walk_unroll: tree levels the descent and the backup take per loop
            iteration; any value gives the same search (bit for bit in the CPU
            tests). 1 is fastest on a CPU; on a GPU, where every loop iteration
            has a fixed cost, more may be faster (`benchmarks/mcts.py --walk-unroll`).
        max_num_considered_actions: m, actions sampled at the root.
        gumbel_scale: scale of the Gumbel noise; 0 gives a deterministic search.
        qtransform_fn: sigma, `NodeStats -> float32[A]`, default
            `qtransform_completed_by_mix_value`.

    Returns:
        `SearchOutput` with the completed-Q improved policy as `action_weights`.
    """
    num_nodes = validate_common(
        env, num_simulations=num_simulations, max_depth=max_depth, num_nodes=num_nodes, tree=tree,
        walk_unroll=walk_unroll,
    )
    if not isinstance(max_num_considered_actions, int) or max_num_considered_actions < 1:
        raise ValueError(
            f"max_num_considered_actions={max_num_considered_actions!r} must be an int >= 1"
        )
    if isinstance(gumbel_scale, (int, float)) and gumbel_scale < 0:
        # A negative scale would prefer the actions the noise disfavours.
        raise ValueError(f"gumbel_scale={gumbel_scale} must be >= 0 (0 = no noise)")
    # The split mirrors mctx.gumbel_muzero_policy so that equal keys give equal noise.
    search_key, gumbel_key = jax.random.split(key)
    tree = init_root(
        params, jax.random.fold_in(search_key, num_simulations), root_states,
        env=env, evaluate_fn=evaluate_fn, num_nodes=num_nodes, tree=tree,
    )
    root = root_stats(tree)
    gumbel = gumbel_scale * jax.random.gumbel(gumbel_key, root.prior_logits.shape)
    start_visits = root.children_visits
    table = jnp.asarray(
        np.array([
            halving_schedule(m, num_simulations) for m in range(max_num_considered_actions + 1)
        ], dtype=np.int32)
    )
    num_legal = jnp.sum(root.legal_action_mask, axis=-1, dtype=jnp.int32)
    num_considered = jnp.minimum(max_num_considered_actions, num_legal)
    # The root's logits do not change during the search: its schedule row and
    # g + logits are computed once, not in every simulation.
    schedule = table[num_considered]  # [B, num_simulations]
    root_logits = root.prior_logits - jnp.max(root.prior_logits, axis=-1, keepdims=True)
    gumbel_logits = gumbel + root_logits

    def root_score_fn(root: NodeStats, sim: jax.Array) -> PerAction:
        considered_visit = jax.lax.dynamic_slice_in_dim(schedule, sim, 1, axis=1)[:, 0]
        sigma_q = apply_qtransform(qtransform_fn, root)
        visits = root.children_visits - PerAction.from_array(start_visits)
        return _considered_scores(
            considered_visit, PerAction.from_array(gumbel_logits), sigma_q, visits
        )

    tree = run_simulations(
        params, search_key, tree,
        env=env, evaluate_fn=evaluate_fn,
        root_score_fn=root_score_fn,
        interior_score_fn=functools.partial(gumbel_interior_scores, qtransform_fn=qtransform_fn),
        num_simulations=num_simulations, max_depth=max_depth, walk_unroll=walk_unroll,
    )
    root = root_stats(tree)
    visits = root.children_visits - start_visits
    sigma_q = jax.vmap(qtransform_fn)(root)
    considered_visit = jnp.max(visits, axis=-1, keepdims=True)
    action = masked_argmax(
        considered_scores(considered_visit, gumbel, root.prior_logits, sigma_q, visits),
        root.legal_action_mask,
    )
    weights = jax.nn.softmax(mask_logits(root.prior_logits + sigma_q, root.legal_action_mask))
    return SearchOutput(action=action, action_weights=weights, root_value=tree.root_value, tree=tree)
