"""AlphaZero search: PUCT selection, Dirichlet noise at the root, visit-count policy.

Selection at every node maximises

    score(a) = qtransform(Q)(a) + sqrt(N) * c(N) * P(a) / (1 + N(a)),
    c(N) = pb_c_init + log((N + pb_c_base + 1) / pb_c_base),

over legal actions (Silver et al., "A general reinforcement learning algorithm
that masters chess, shogi, and Go through self-play", Science 2018; the c(N)
schedule from MuZero, arXiv:1911.08265, App. B). With the same constants and no
noise it visits exactly as `mctx.muzero_policy` does (see tests/mcts).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from symbiosis_jax.mcts.env import GameEnv
from symbiosis_jax.mcts.qtransforms import (
    NodeStats,
    apply_qtransform,
    as_per_action,
    like_node,
    prior_probs,
    qtransform_by_parent_and_siblings,
)
from symbiosis_jax.mcts.search import (
    EvaluateFn,
    SearchOutput,
    edge_prior_row,
    init_root,
    mask_logits,
    run_simulations,
    validate_common,
)
from symbiosis_jax.mcts.tree import ROOT, Tree


def puct_scores(
    node: NodeStats,
    *,
    pb_c_init: float,
    pb_c_base: float,
    qtransform_fn: Callable[[NodeStats], jax.Array],
):
    """PUCT score of each action of a node (illegal actions are masked by the caller).

    Args:
        node: one node's (or a batch's) statistics, per-action fields as
            arrays [..., A] or `PerAction`.
        pb_c_init: c1 of the exploration weight `c(N) = c1 + log((N + c2 + 1) / c2)`.
        pb_c_base: c2 of that weight (> 0).
        qtransform_fn: `NodeStats -> Q [..., A]` normalising the children's values.

    Returns:
        float32[..., A], or `PerAction` like the node's fields.
    """
    p = as_per_action(node)
    pb_c = pb_c_init + jnp.log((p.visits + pb_c_base + 1.0) / pb_c_base)
    policy_score = jnp.sqrt(p.visits) * pb_c * prior_probs(p) / (p.children_visits + 1)
    scores = apply_qtransform(qtransform_fn, p) + policy_score
    return like_node(node, scores)


def add_root_noise(
    key: jax.Array,
    prior_logits: jax.Array,
    legal_action_mask: jax.Array,
    *,
    dirichlet_alpha: float,
    dirichlet_fraction: float,
) -> jax.Array:
    """Mixes Dirichlet(alpha) noise into the root prior: (1 - f) P + f eta.

    Args:
        key: PRNG key.
        prior_logits: float32[B, A], masked root logits.
        legal_action_mask: bool[B, A].
        dirichlet_alpha: concentration alpha.
        dirichlet_fraction: mixing fraction f; 0 leaves the prior unchanged.

    Returns:
        float32[B, A], masked logits of the noisy prior.
    """
    probs = jax.nn.softmax(prior_logits)
    if not (isinstance(dirichlet_fraction, (int, float)) and dirichlet_fraction == 0):
        batch_size, num_actions = probs.shape
        noise = jax.random.dirichlet(
            key, alpha=jnp.full([num_actions], dirichlet_alpha), shape=(batch_size,)
        )
        probs = (1 - dirichlet_fraction) * probs + dirichlet_fraction * noise
    logits = jnp.log(jnp.maximum(probs, jnp.finfo(probs.dtype).tiny))
    return mask_logits(logits, legal_action_mask)


def visit_policy(visit_counts: jax.Array) -> jax.Array:
    """Visit counts normalised to a distribution (uniform where there are none).

    Args:
        visit_counts: int32[B, A].

    Returns:
        float32[B, A].
    """
    counts = visit_counts.astype(jnp.float32)
    total = jnp.sum(counts, axis=-1, keepdims=True)
    probs = counts / jnp.maximum(total, 1)
    return jnp.where(total > 0, probs, 1 / counts.shape[-1])


def sample_with_temperature(key: jax.Array, probs: jax.Array, temperature: float) -> jax.Array:
    """Samples actions proportionally to probs ** (1 / temperature); 0 = argmax.

    Args:
        key: PRNG key.
        probs: float32[B, A].
        temperature: >= 0.

    Returns:
        int32[B].
    """
    logits = jnp.log(jnp.maximum(probs, jnp.finfo(probs.dtype).tiny))
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)
    logits = logits / jnp.maximum(jnp.finfo(logits.dtype).tiny, temperature)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def puct_search(
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
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    dirichlet_alpha: float = 0.3,
    dirichlet_fraction: float = 0.25,
    temperature: float = 1.0,
    qtransform_fn: Callable[[NodeStats], jax.Array] = qtransform_by_parent_and_siblings,
) -> SearchOutput:
    """AlphaZero tree search from a batch of root states.

    Pure and traceable: wrap it in `jax.jit` with everything but `params`, `key`,
    `root_states` and `tree` static (e.g. `functools.partial`).

    Args:
        params: passed to `evaluate_fn`.
        key: PRNG key (root noise, evaluation, action sampling).
        root_states: environment states, leaves [B, ...].
        env: the game (`GameEnv`).
        evaluate_fn: `(params, key, states) -> (prior_logits [B, A], value [B])`,
            from the point of view of the player to move.
        num_simulations: simulations per game.
        max_depth: optional limit on edges from the root.
        num_nodes: node capacity N (default num_simulations + 1; more for reuse).
        tree: optional trees from `reuse_subtree`; their statistics are kept and
            their root replaces the root state (games with an empty tree start
            fresh). Fresh root noise is mixed in when `dirichlet_fraction > 0`.
        walk_unroll: tree levels the descent and the backup take per loop
            iteration; any value gives the same search (bit for bit in the CPU
            tests). 1 is fastest on a CPU; on a GPU, where every loop iteration
            has a fixed cost, more may be faster (`benchmarks/mcts.py --walk-unroll`).
        pb_c_init: PUCT constant c1.
        pb_c_base: PUCT constant c2.
        dirichlet_alpha: root noise concentration.
        dirichlet_fraction: root noise weight; 0 turns the noise off.
        temperature: action sampling temperature on the visit counts; 0 = most visited.
        qtransform_fn: `NodeStats -> float32[A]` normalising Q, e.g.
            `qtransform_by_parent_and_siblings` (default) or
            `functools.partial(qtransform_by_min_max, min_value=-1, max_value=1)`.

    Returns:
        `SearchOutput` with the visit-count policy as `action_weights`.
    """
    num_nodes = validate_common(
        env, num_simulations=num_simulations, max_depth=max_depth, num_nodes=num_nodes, tree=tree,
        walk_unroll=walk_unroll,
    )
    if isinstance(dirichlet_fraction, (int, float)) and not 0 <= dirichlet_fraction <= 1:
        raise ValueError(f"dirichlet_fraction={dirichlet_fraction} must be in [0, 1]")
    if isinstance(dirichlet_alpha, (int, float)) and dirichlet_alpha <= 0:
        raise ValueError(f"dirichlet_alpha={dirichlet_alpha} must be > 0")
    if isinstance(temperature, (int, float)) and temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0")
    if isinstance(pb_c_base, (int, float)) and pb_c_base <= 0:
        # c(s) = pb_c_init + log((N(s) + pb_c_base + 1) / pb_c_base): NaN or a sign flip otherwise.
        raise ValueError(f"pb_c_base={pb_c_base} must be > 0")
    # The split mirrors mctx.muzero_policy so that equal keys give equal noise and actions.
    act_key, noise_key, search_key = jax.random.split(key, 3)
    tree = init_root(
        params, jax.random.fold_in(search_key, num_simulations), root_states,
        env=env, evaluate_fn=evaluate_fn, num_nodes=num_nodes, tree=tree,
    )
    root_logits = add_root_noise(
        noise_key,
        tree.children_prior_logits[:, ROOT],
        tree.legal_action_mask[:, ROOT],
        dirichlet_alpha=dirichlet_alpha,
        dirichlet_fraction=dirichlet_fraction,
    )
    tree = tree.replace(
        edge_prior=tree.edge_prior.at[:, ROOT].set(
            edge_prior_row(root_logits, tree.legal_action_mask[:, ROOT])
        )
    )
    score_fn = functools.partial(
        puct_scores, pb_c_init=pb_c_init, pb_c_base=pb_c_base, qtransform_fn=qtransform_fn
    )
    tree = run_simulations(
        params, search_key, tree,
        env=env, evaluate_fn=evaluate_fn,
        root_score_fn=lambda root, sim: score_fn(root),
        interior_score_fn=score_fn,
        num_simulations=num_simulations, max_depth=max_depth, walk_unroll=walk_unroll,
    )
    weights = visit_policy(tree.root_visit_counts)
    return SearchOutput(
        action=sample_with_temperature(act_key, weights, temperature),
        action_weights=weights,
        root_value=tree.root_value,
        tree=tree,
    )
