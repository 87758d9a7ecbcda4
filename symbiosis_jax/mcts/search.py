"""The simulation loop shared by PUCT and Gumbel search: select, expand, back up.

One simulation walks from the root to an edge that has no node yet (or to a
terminal node, or to the depth limit), steps the environment once along that
edge, evaluates the new state, stores it as a node and backs its value up the
path. All simulations run in one `lax.fori_loop`. Tree reads and writes are
written at batch level, indexing `[batch, node]` (the descent scores every
game's node at once, its per-action statistics as `PerAction` columns), so every write
is an in-place scatter of B elements, or with one game a plain dynamic update
slice: one simulation costs the same however many came before it. No
per-simulation random numbers are drawn: ties go to the lowest action index.

The variants differ only in how they score actions (`root_score_fn`,
`interior_score_fn`) and in how they prepare the root and read the result.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct

from symbiosis_jax.mcts import peraction
from symbiosis_jax.mcts.env import GameEnv
from symbiosis_jax.mcts.packing import pack_states, unpack_states
from symbiosis_jax.mcts.peraction import PerAction
from symbiosis_jax.mcts.qtransforms import NodeStats, as_per_action
from symbiosis_jax.mcts.tree import (
    ACTION,
    DISCOUNT,
    PARENT,
    RAW_VALUE,
    REWARD,
    ROOT,
    UNVISITED,
    Tree,
    empty_tree,
    node_info_row,
)

Params = Any
# evaluate_fn(params, key, states) -> (prior_logits [B, A], value [B]) for the player to move.
EvaluateFn = Callable[[Params, jax.Array, Any], tuple[jax.Array, jax.Array]]
# root_score_fn(root: NodeStats [B] with PerAction fields, sim: int32[]) -> PerAction [B].
RootScoreFn = Callable[[NodeStats, jax.Array], PerAction]
# interior_score_fn(node: NodeStats [B] with PerAction fields) -> PerAction [B].
InteriorScoreFn = Callable[[NodeStats], PerAction]


@struct.dataclass
class SearchOutput:
    """The result of a search over B games with A actions.

    Attributes:
        action: int32[B], the action to play.
        action_weights: float32[B, A], the policy training target: visit-count
            policy for PUCT, completed-Q improved policy for Gumbel.
        root_value: float32[B], the searched value of the root for the player to move.
        tree: the `Tree`, to inspect or to pass through `reuse_subtree`.
    """

    action: jax.Array
    action_weights: jax.Array
    root_value: jax.Array
    tree: Tree


def mask_logits(logits: jax.Array, legal_action_mask: jax.Array) -> jax.Array:
    """Shifts logits to max 0 and sets illegal ones to the float min (no NaN when none is legal).

    Args:
        logits: float[..., A].
        legal_action_mask: bool[..., A], True = legal.

    Returns:
        float[..., A].
    """
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)
    return jnp.where(legal_action_mask, logits, jnp.finfo(logits.dtype).min)


def masked_argmax(scores: jax.Array, legal_action_mask: jax.Array) -> jax.Array:
    """`peraction.masked_argmax` of arrays [..., A]: int32[...], lowest index on ties."""
    return peraction.masked_argmax(
        PerAction.from_array(scores), PerAction.from_array(legal_action_mask)
    )


def node_stats(tree: Tree, node: jax.Array) -> NodeStats:
    """Statistics of one node of one game (tree leaves without the B axis)."""
    return _stats(
        tree.node_visit_value[node],
        tree.node_info[node, RAW_VALUE],
        tree.edge_prior[node],
        tree.edge_visit_value[node],
    )


def _batch_node_stats(tree: Tree, node: jax.Array) -> NodeStats:
    """Statistics of node `node[b]` of every game b, each field with a leading B axis."""
    return _stats(
        _get(tree.node_visit_value, node),
        _get(tree.node_info, node)[:, RAW_VALUE],
        _get(tree.edge_prior, node),
        _get(tree.edge_visit_value, node),
    )


def _stats(node_visit_value, raw_value, edge_prior, edge_visit_value):
    """`NodeStats` from rows of the tree's arrays (any leading axes)."""
    return NodeStats(
        visits=node_visit_value[..., 0].astype(jnp.int32),
        value=node_visit_value[..., 1],
        raw_value=raw_value,
        prior_logits=edge_prior[..., 0],
        children_visits=edge_visit_value[..., 0].astype(jnp.int32),
        qvalues=edge_visit_value[..., 1],
        legal_action_mask=edge_prior[..., 2] > 0,
        prior_probs=edge_prior[..., 1],
    )


def edge_prior_row(logits: jax.Array, legal_action_mask: jax.Array) -> jax.Array:
    """The `Tree.edge_prior` entries of nodes: (logit, softmax(logits), legal).

    Args:
        logits: float32[..., A], masked logits (`mask_logits`).
        legal_action_mask: bool[..., A].

    Returns:
        float32[..., A, 3].
    """
    probs = jax.nn.softmax(logits)
    return jnp.stack([logits, probs, legal_action_mask.astype(logits.dtype)], axis=-1)


def root_stats(tree: Tree) -> NodeStats:
    """Statistics of the roots, each field with a leading B axis."""
    return jax.vmap(node_stats, in_axes=(0, None))(tree, ROOT)


def validate_common(
    env: GameEnv,
    *,
    num_simulations: int,
    max_depth: int | None,
    num_nodes: int | None,
    tree: Tree | None,
    walk_unroll: int = 1,
) -> int:
    """Checks the static settings shared by the searches; returns the node capacity N.

    Args:
        env: the game; it must have the `GameEnv` members.
        num_simulations: simulations per game (>= 1).
        max_depth: None or a limit >= 1 on edges from the root.
        num_nodes: node capacity, None for `num_simulations + 1` (or the given tree's).
        tree: a tree to continue, or None.
        walk_unroll: tree levels per descent/backup loop iteration (>= 1).

    Raises:
        ValueError: a setting outside those ranges, an env that is not a `GameEnv`, or a
            `num_nodes` that cannot hold the simulations or differs from the tree's.
    """
    if not isinstance(num_simulations, int) or num_simulations < 1:
        raise ValueError(f"num_simulations={num_simulations!r} must be an int >= 1")
    if not isinstance(walk_unroll, int) or isinstance(walk_unroll, bool) or walk_unroll < 1:
        raise ValueError(f"walk_unroll={walk_unroll!r} must be an int >= 1")
    if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
        raise ValueError(f"max_depth={max_depth!r} must be None or an int >= 1")
    for name in ("init", "step", "observation", "legal_action_mask", "terminated", "num_actions"):
        if not hasattr(env, name):
            raise ValueError(f"env={env!r} lacks {name!r}; it must implement GameEnv")
    if tree is not None:
        if num_nodes is not None and num_nodes != tree.num_nodes:
            raise ValueError(f"num_nodes={num_nodes} differs from the given tree's {tree.num_nodes}")
        num_nodes = tree.num_nodes
    if num_nodes is None:
        num_nodes = num_simulations + 1
    if num_nodes < num_simulations + 1:
        raise ValueError(
            f"num_nodes={num_nodes} cannot hold num_simulations={num_simulations}: "
            f"it must be at least num_simulations + 1 = {num_simulations + 1}"
        )
    return num_nodes


def init_root(
    params: Params,
    key: jax.Array,
    root_states: Any,
    *,
    env: GameEnv,
    evaluate_fn: EvaluateFn,
    num_nodes: int,
    tree: Tree | None = None,
) -> Tree:
    """Returns trees whose root is `root_states`, evaluated, or the given non-empty trees.

    Args:
        params: passed to `evaluate_fn`.
        key: for `evaluate_fn`.
        root_states: batch of environment states, leaves [B, ...].
        env: the game.
        evaluate_fn: `(params, key, states) -> (prior_logits [B, A], value [B])`.
        num_nodes: node capacity N.
        tree: optional trees from `reuse_subtree`; games whose tree is empty
            start from their root state.

    Returns:
        A `Tree` with at least the root in use.
    """
    shapes = [jnp.shape(x) for x in jax.tree.leaves(root_states)]
    if not shapes or any(not s for s in shapes) or len({s[0] for s in shapes}) > 1:
        raise ValueError(
            "root_states must be a batch of states, every leaf with the same leading B axis; got "
            f"leaf shapes {sorted(set(shapes))[:6]} (one state: jax.tree.map(lambda x: x[None], state))"
        )
    logits, value = evaluate_fn(params, key, root_states)
    batch_size = value.shape[0]
    chex.assert_shape(logits, (batch_size, env.num_actions))
    chex.assert_shape(value, (batch_size,))
    legal = jax.vmap(env.legal_action_mask)(root_states)
    terminal = jax.vmap(env.terminated)(root_states)
    value = jnp.where(terminal, 0.0, value.astype(jnp.float32))
    logits = mask_logits(logits.astype(jnp.float32), legal)
    fresh = empty_tree(root_states, num_nodes=num_nodes, num_actions=env.num_actions)
    fresh = fresh.replace(
        node_visit_value=fresh.node_visit_value.at[:, ROOT].set(
            jnp.stack([jnp.ones_like(value), value], axis=-1)
        ),
        node_info=fresh.node_info.at[:, ROOT, RAW_VALUE].set(value),
        terminal=fresh.terminal.at[:, ROOT].set(terminal),
        edge_prior=fresh.edge_prior.at[:, ROOT].set(edge_prior_row(logits, legal)),
        packed_states=fresh.packed_states.replace(
            rows=tuple(
                s.at[:, ROOT].set(x)
                for s, x in zip(
                    fresh.packed_states.rows,
                    pack_states(root_states, fresh.packed_states.layout),
                )
            )
        ),
        num_used=jnp.ones((batch_size,), jnp.int32),
    )
    if tree is None:
        return fresh
    chex.assert_equal(tree.batch_size, batch_size)
    has_root = tree.num_used > 0

    def pick(old, new):
        return jnp.where(has_root.reshape((batch_size,) + (1,) * (old.ndim - 1)), old, new)

    return jax.tree.map(pick, tree, fresh)


class _Descent(NamedTuple):
    node: jax.Array  # the node where `action` was selected
    action: jax.Array
    child: jax.Array  # children_index[node, action], UNVISITED if not expanded
    depth: jax.Array  # edges from the root to `child`


def _descend(
    tree: Tree,
    root_action: jax.Array,
    *,
    interior_score_fn: InteriorScoreFn,
    max_depth: int | None,
    walk_unroll: int = 1,
) -> tuple[Tree, _Descent]:
    """Walks every game's tree from the root to the edge to expand.

    The tree is carried through the loop unchanged and returned, so that XLA
    updates the returned buffers in place afterwards instead of copying the
    whole tree (a loop-invariant input that is modified after the loop would
    be copied on every simulation).

    Args:
        tree: the batch of trees.
        root_action: int32[B], the action selected at each root.
        walk_unroll: levels per loop iteration (a finished game's step changes nothing).

    Returns:
        The same tree, and the `_Descent` of each game (fields [B]).
    """
    def keep_going(tree: Tree, d: _Descent) -> jax.Array:
        go = jnp.logical_and(d.child != UNVISITED, ~_get(tree.terminal, jnp.maximum(d.child, 0)))
        if max_depth is not None:
            go = jnp.logical_and(go, d.depth < max_depth)
        return go

    def step(carry: tuple[Tree, _Descent, jax.Array]) -> tuple[Tree, _Descent, jax.Array]:
        tree, d, active = carry
        node = jnp.where(active, d.child, d.node)
        stats = as_per_action(_batch_node_stats(tree, node))
        action = peraction.masked_argmax(interior_score_fn(stats), stats.legal_action_mask)
        action = jnp.where(active, action, d.action)
        moved = _Descent(node, action, _get(tree.children_index, node, action), d.depth + active)
        return tree, moved, jnp.logical_and(active, keep_going(tree, moved))

    start = _Descent(
        node=jnp.full_like(root_action, ROOT),
        action=root_action,
        child=_get(tree.children_index, jnp.full_like(root_action, ROOT), root_action),
        depth=jnp.ones_like(root_action),
    )
    tree, d, _ = jax.lax.while_loop(
        lambda c: jnp.any(c[2]), _unrolled(step, walk_unroll), (tree, start, keep_going(tree, start))
    )
    return tree, d


def _unrolled(step: Callable, times: int) -> Callable:
    """`step` applied `times` times: one loop iteration of a tree walk takes that many levels."""
    if times == 1:
        return step

    def body(carry):
        for _ in range(times):
            carry = step(carry)
        return carry

    return body


def _get(x: jax.Array, *index: jax.Array) -> jax.Array:
    """x[b, index[0][b], ...] for every game b; the indices must be in range.

    With one game this is a plain dynamic slice: a batched gather would also
    build its index vectors, small XLA operations that at batch 1 cost as much
    as the read itself.
    """
    if x.shape[0] != 1:
        return x[(jnp.arange(x.shape[0]),) + index]
    rest = x.shape[1 + len(index):]
    starts = (0,) + tuple(i[0] for i in index) + (0,) * len(rest)
    return jax.lax.dynamic_slice(x, starts, (1,) * (1 + len(index)) + rest).reshape((1,) + rest)


def _set(x: jax.Array, value: jax.Array, *index: jax.Array) -> jax.Array:
    """x.at[b, index[0][b], ...].set(value[b]) for every game b; an index past the end drops it."""
    if x.shape[0] != 1:
        return x.at[(jnp.arange(x.shape[0]),) + index].set(value, mode="drop")
    sizes = x.shape[1 : 1 + len(index)]
    rest = x.shape[1 + len(index):]
    inside = functools.reduce(jnp.logical_and, [i[0] < n for i, n in zip(index, sizes)])
    starts = (0,) + tuple(jnp.minimum(i[0], n - 1) for i, n in zip(index, sizes)) + (0,) * len(rest)
    shape = (1,) * (1 + len(index)) + rest
    old = jax.lax.dynamic_slice(x, starts, shape)
    value = jnp.where(inside, jnp.asarray(value, x.dtype).reshape(shape), old)
    return jax.lax.dynamic_update_slice(x, value, starts)


# How `_read_rows` reads on each platform: "cond" everywhere, "plain" everywhere, or
# "auto" (the conditional on the CPU only). A module setting for experiments
# (`benchmarks/mcts.py --rows-read`), like `peraction.UNROLL_MAX`; the result is the same.
ROWS_READ = "auto"


def _read_rows(rows: tuple[jax.Array, ...], node: jax.Array, expand: jax.Array):
    """The packed state rows of `node[b]` of every game, as small arrays of their own.

    A plain read would be fused into each of its consumers (the environment
    step, the observation, the new node's writes), which then read the tree's
    state arrays while the new state is written into them, so XLA copies those
    arrays every simulation. Reading inside a `lax.cond` makes the rows
    separate buffers; both branches read the same rows (the predicate only keeps
    XLA from inlining the conditional), so the result is that of a plain read.
    That pays on the CPU. On a GPU a conditional copies its predicate to the host
    (a synchronisation per simulation) while copying the arrays costs microseconds,
    so other platforms read plainly (`ROWS_READ`).

    Args:
        rows: packed state rows, each [B, N, S_r].
        node: int32[B].
        expand: bool[B], games that expand a node this simulation.

    Returns:
        Rows [B, S_r].
    """
    def read(rows, node):
        return tuple(_get(x, node) for x in rows)

    def in_cond(rows, node):
        return jax.lax.cond(jnp.any(expand), read, read, rows, node)

    if ROWS_READ not in ("auto", "cond", "plain"):
        raise ValueError(f"ROWS_READ={ROWS_READ!r} must be 'auto', 'cond' or 'plain'")
    if ROWS_READ != "auto":
        return (in_cond if ROWS_READ == "cond" else read)(rows, node)
    return jax.lax.platform_dependent(rows, node, cpu=in_cond, default=read)


def _simulate(
    sim: jax.Array,
    tree: Tree,
    *,
    params: Params,
    key: jax.Array,
    env: GameEnv,
    evaluate_fn: EvaluateFn,
    root_score_fn: RootScoreFn,
    interior_score_fn: InteriorScoreFn,
    max_depth: int | None,
    walk_unroll: int = 1,
) -> Tree:
    """One simulation for every game in the batch."""
    batch_size, num_nodes = tree.batch_size, tree.num_nodes
    drop = num_nodes  # an out-of-range node index: writes to it are dropped
    root = as_per_action(root_stats(tree))
    root_action = peraction.masked_argmax(root_score_fn(root, sim), root.legal_action_mask)
    tree, d = _descend(tree, root_action, interior_score_fn=interior_score_fn, max_depth=max_depth,
                       walk_unroll=walk_unroll)
    valid = ~tree.terminal[:, ROOT]
    expand = jnp.logical_and(valid, d.child == UNVISITED)

    # Expansion: step every game's selected edge (the batch runs in lockstep;
    # games that reached a terminal node or the depth limit discard the result).
    layout = tree.packed_states.layout
    parent_rows = _read_rows(tree.packed_states.rows, d.node, expand)
    parent_states = unpack_states(parent_rows, layout)
    states, step_reward = jax.vmap(env.step)(parent_states, d.action)
    logits, value = evaluate_fn(params, jax.random.fold_in(key, sim), states)
    chex.assert_shape(logits, (batch_size, tree.num_actions))
    chex.assert_shape(value, (batch_size,))
    legal = jax.vmap(env.legal_action_mask)(states)
    terminal = jax.vmap(env.terminated)(states)
    value = jnp.where(terminal, 0.0, value.astype(jnp.float32))
    logits = mask_logits(logits.astype(jnp.float32), legal)
    step_reward = step_reward.astype(jnp.float32)
    step_discount = jnp.where(terminal, 0.0, -1.0)

    store = jnp.logical_and(expand, tree.num_used < num_nodes)
    new = jnp.where(store, tree.num_used, drop)
    edge_node = jnp.where(valid, d.node, drop)

    def put(x, index, v):
        return _set(x, v, index)

    tree = tree.replace(
        node_info=put(tree.node_info, new, node_info_row(
            raw_value=value, reward=step_reward, discount=step_discount,
            parent=d.node, action=d.action,
        )),
        terminal=put(tree.terminal, new, terminal),
        edge_prior=put(tree.edge_prior, new, edge_prior_row(logits, legal)),
        packed_states=tree.packed_states.replace(
            rows=tuple(
                put(x, new, s)
                for x, s in zip(tree.packed_states.rows, pack_states(states, layout))
            )
        ),
        children_index=_set(tree.children_index, new, jnp.where(store, d.node, drop), d.action),
        num_used=tree.num_used + store.astype(jnp.int32),
    )

    # The leaf: the new node, a revisited terminal node (value 0), the node at
    # the depth limit (its current value), or nothing if the tree is full.
    leaf = jnp.where(expand, new, jnp.where(valid, d.child, drop))
    safe_leaf = jnp.minimum(leaf, num_nodes - 1)
    leaf_stats = _get(tree.node_visit_value, safe_leaf)
    leaf_visits, leaf_old = leaf_stats[:, 0], leaf_stats[:, 1]
    leaf_value = jnp.where(expand, value, jnp.where(_get(tree.terminal, safe_leaf), 0.0, leaf_old))
    leaf_new = (leaf_old * leaf_visits + leaf_value) / (leaf_visits + 1)
    is_stored = leaf < num_nodes
    leaf_info = _get(tree.node_info, safe_leaf)
    reward = jnp.where(expand, step_reward, leaf_info[:, REWARD])
    discount = jnp.where(expand, step_discount, leaf_info[:, DISCOUNT])
    edge_stats = _get(tree.edge_visit_value, d.node, d.action)
    edge_visits, edge_q = edge_stats[:, 0], edge_stats[:, 1]
    g = reward + discount * leaf_value
    edge_q = jnp.where(is_stored, reward + discount * leaf_new, (edge_q * edge_visits + g) / (edge_visits + 1))
    tree = tree.replace(
        node_visit_value=put(
            tree.node_visit_value, leaf, jnp.stack([leaf_visits + 1, leaf_new], axis=-1)
        ),
        edge_visit_value=_set(
            tree.edge_visit_value, jnp.stack([edge_visits + 1, edge_q], axis=-1), edge_node, d.action
        ),
    )
    return _backup(tree, d.node, g, valid, walk_unroll=walk_unroll)


def _backup(tree: Tree, node: jax.Array, value: jax.Array, active: jax.Array, *, walk_unroll: int = 1) -> Tree:
    """Adds `value` ([B]) to `node` ([B]) and, with alternating sign, to its ancestors.

    Like `_descend`, the loop carries the whole tree so nothing is copied. A step of a
    finished game rewrites the statistics it read, so `walk_unroll` levels per loop
    iteration give the same tree.
    """
    def body(carry: tuple[Tree, jax.Array, jax.Array, jax.Array]):
        t, node, value, active = carry
        node_stats = _get(t.node_visit_value, node)
        visits, old = node_stats[:, 0], node_stats[:, 1]
        mean = (old * visits + value) / (visits + 1)
        up = jnp.logical_and(active, node != ROOT)
        info = _get(t.node_info, node)  # parent, action, reward, discount in one read
        parent = jnp.where(up, info[:, PARENT].astype(jnp.int32), ROOT)
        action = jnp.where(up, info[:, ACTION].astype(jnp.int32), 0)
        reward, discount = info[:, REWARD], info[:, DISCOUNT]
        edge_stats = _get(t.edge_visit_value, parent, action)
        edge_visits = edge_stats[:, 0]
        t = t.replace(
            node_visit_value=_set(
                t.node_visit_value,
                jnp.where(active[:, None], jnp.stack([visits + 1, mean], axis=-1), node_stats),
                node,
            ),
            edge_visit_value=_set(
                t.edge_visit_value,
                jnp.where(
                    up[:, None],
                    jnp.stack([edge_visits + 1, reward + discount * mean], axis=-1),
                    edge_stats,
                ),
                parent,
                action,
            ),
        )
        return t, parent, reward + discount * value, up

    return jax.lax.while_loop(lambda c: jnp.any(c[3]), _unrolled(body, walk_unroll),
                              (tree, node, value, active))[0]


def run_simulations(
    params: Params,
    key: jax.Array,
    tree: Tree,
    *,
    env: GameEnv,
    evaluate_fn: EvaluateFn,
    root_score_fn: RootScoreFn,
    interior_score_fn: InteriorScoreFn,
    num_simulations: int,
    max_depth: int | None,
    walk_unroll: int = 1,
) -> Tree:
    """Runs `num_simulations` simulations on every game's tree.

    Args:
        params: passed to `evaluate_fn`.
        key: simulation `i` gives `evaluate_fn` the key `fold_in(key, i)`.
        tree: trees with their roots in use.
        env: the game.
        evaluate_fn: `(params, key, states) -> (prior_logits [B, A], value [B])`.
        root_score_fn: scores the roots' actions, `(NodeStats [B], sim) -> PerAction [B]`
            (the stats' per-action fields are `PerAction` values).
        interior_score_fn: scores a node of every game, `NodeStats [B] -> PerAction [B]`.
        num_simulations: static number of simulations.
        max_depth: static limit on edges from the root, or None.
        walk_unroll: static number of tree levels the descent and the backup take per
            loop iteration (the result is the same for any value).

    Returns:
        The updated `Tree`.
    """
    body = lambda sim, t: _simulate(  # noqa: E731
        sim, t, params=params, key=key, env=env, evaluate_fn=evaluate_fn,
        root_score_fn=root_score_fn, interior_score_fn=interior_score_fn, max_depth=max_depth,
        walk_unroll=walk_unroll,
    )
    return jax.lax.fori_loop(0, num_simulations, body, tree)
