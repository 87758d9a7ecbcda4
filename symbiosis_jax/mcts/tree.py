"""The search tree as fixed-size arrays per game, and subtree reuse between moves.

Node 0 is the root. A node is created the first time its edge is traversed and
gets the next free index, so a parent's index is always smaller than its
children's: the tree is stored in topological order, which `reuse_subtree`
relies on. Per-edge statistics are stored at the parent (`children_*[n, a]`),
so selecting an action at a node reads one contiguous row of each array.

Values are from the point of view of the player to move at the node; the value
of an edge is `q = reward + discount * value(child)` with discount -1 between
alternating players and 0 into a terminal state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from symbiosis_jax.mcts.packing import PackedStates, pack_states, state_layout

ROOT = 0
UNVISITED = -1
NO_PARENT = -1

# Columns of `Tree.node_info`: what a node keeps from its creation on, in one
# row, so that a new node is one write and a backup step reads it with one read.
RAW_VALUE, REWARD, DISCOUNT, PARENT, ACTION = range(5)


@struct.dataclass
class Tree:
    """A batch of search trees; B games, N nodes each, A actions.

    Attributes:
        node_visit_value: float32[B, N, 2], per node its visit count (1 on
            creation) and its mean value (of the raw value and the backed-up
            values); read them as `node_visits` and `node_values`.
        node_info: float32[B, N, 5], what a node keeps from its creation on:
            the evaluator's value, the reward of the edge into the node (for
            the player who moved), the discount (-1, or 0 when the node is
            terminal), the parent's index (-1 for the root and empty slots)
            and the action leading to the node (-1 at the root); the indices
            are stored exactly (|i| < 2^24). Read them as `raw_values`,
            `rewards`, `discounts`, `parents` and `action_from_parent`. Unlike
            the visit statistics they are never updated by a backup, so one
            array holds them all without XLA copying it around the loops.
        terminal: bool[B, N], the node's state is terminal.
        children_index: int32[B, N, A], child node index, -1 when not expanded.
        edge_prior: float32[B, N, A, 3], per edge its prior logit (illegal
            actions at float32 min; the root's row carries the root noise during
            a search), its prior probability softmax(logits) and its legality
            (1.0 = legal); read them as `children_prior_logits`,
            `children_prior_probs` and `legal_action_mask`. They are written
            together when a node is created (one write), and the probabilities
            are computed once there instead of at every selection.
        edge_visit_value: float32[B, N, A, 2], per edge its visit count and its
            q (0 when unvisited); read them as `children_visits` and
            `children_qvalues`. A count and a value that change together share
            one array, so a backup step reads and writes each pair at once.
        packed_states: `PackedStates`, the environment state of each node as
            packed rows [B, N, S_r] (read them through `states`).
        num_used: int32[B], number of nodes in use (the next free index).
    """

    node_visit_value: jax.Array
    node_info: jax.Array
    terminal: jax.Array
    children_index: jax.Array
    edge_prior: jax.Array
    edge_visit_value: jax.Array
    packed_states: PackedStates
    num_used: jax.Array

    @property
    def batch_size(self) -> int:
        return self.node_info.shape[0]

    @property
    def num_nodes(self) -> int:
        return self.node_info.shape[1]

    @property
    def raw_values(self) -> jax.Array:
        """float32[B, N], the evaluator's value at creation."""
        return self.node_info[..., RAW_VALUE]

    @property
    def rewards(self) -> jax.Array:
        """float32[B, N], reward of the edge into the node, for the player who moved."""
        return self.node_info[..., REWARD]

    @property
    def discounts(self) -> jax.Array:
        """float32[B, N], -1, or 0 when the node is terminal."""
        return self.node_info[..., DISCOUNT]

    @property
    def parents(self) -> jax.Array:
        """int32[B, N], parent index, -1 for the root and empty slots."""
        return self.node_info[..., PARENT].astype(jnp.int32)

    @property
    def action_from_parent(self) -> jax.Array:
        """int32[B, N], the action leading to the node, -1 at the root."""
        return self.node_info[..., ACTION].astype(jnp.int32)

    @property
    def node_visits(self) -> jax.Array:
        """int32[B, N], visits of each node."""
        return self.node_visit_value[..., 0].astype(jnp.int32)

    @property
    def node_values(self) -> jax.Array:
        """float32[B, N], mean value of each node."""
        return self.node_visit_value[..., 1]

    @property
    def children_visits(self) -> jax.Array:
        """int32[B, N, A], visits of each edge."""
        return self.edge_visit_value[..., 0].astype(jnp.int32)

    @property
    def children_qvalues(self) -> jax.Array:
        """float32[B, N, A], q of each visited edge (0 when unvisited)."""
        return self.edge_visit_value[..., 1]

    @property
    def children_prior_logits(self) -> jax.Array:
        """float32[B, N, A], prior logits, illegal actions at float32 min."""
        return self.edge_prior[..., 0]

    @property
    def children_prior_probs(self) -> jax.Array:
        """float32[B, N, A], softmax of `children_prior_logits`."""
        return self.edge_prior[..., 1]

    @property
    def legal_action_mask(self) -> jax.Array:
        """bool[B, N, A], True = legal."""
        return self.edge_prior[..., 2] > 0

    @property
    def num_actions(self) -> int:
        return self.children_index.shape[-1]

    @property
    def states(self):
        """The environment state of each node, a pytree with leaves [B, N, ...]."""
        return self.packed_states.unpack()

    @property
    def root_visit_counts(self) -> jax.Array:
        """int32[B, A], visits of the root's edges."""
        return self.children_visits[:, ROOT]

    @property
    def root_value(self) -> jax.Array:
        """float32[B], value of the root for the player to move."""
        return self.node_values[:, ROOT]


def empty_tree(states_b, *, num_nodes: int, num_actions: int) -> Tree:
    """Returns a batch of empty trees with storage for `num_nodes` nodes.

    Args:
        states_b: an example batch of environment states, leaves [B, ...]; only
            shapes and dtypes are used.
        num_nodes: node capacity N per game.
        num_actions: A.

    Returns:
        A `Tree` with `num_used == 0`.
    """
    batch_size = jax.tree.leaves(states_b)[0].shape[0]
    bn, bna = (batch_size, num_nodes), (batch_size, num_nodes, num_actions)
    return Tree(
        node_visit_value=jnp.zeros(bn + (2,), jnp.float32),
        node_info=node_info_row(
            raw_value=jnp.zeros(bn), reward=jnp.zeros(bn), discount=jnp.zeros(bn),
            parent=jnp.full(bn, NO_PARENT), action=jnp.full(bn, NO_PARENT),
        ),
        terminal=jnp.zeros(bn, jnp.bool_),
        children_index=jnp.full(bna, UNVISITED, jnp.int32),
        edge_prior=jnp.zeros(bna + (3,), jnp.float32),
        edge_visit_value=jnp.zeros(bna + (2,), jnp.float32),
        packed_states=_empty_states(states_b, num_nodes),
        num_used=jnp.zeros((batch_size,), jnp.int32),
    )


def node_info_row(*, raw_value, reward, discount, parent, action) -> jax.Array:
    """`Tree.node_info` rows from per-node arrays of one shape [...]: float32[..., 5]."""
    columns = (raw_value, reward, discount, parent, action)
    return jnp.stack([jnp.asarray(c).astype(jnp.float32) for c in columns], axis=-1)


def _empty_states(states_b, num_nodes: int) -> PackedStates:
    """Zero rows [B, N, S_r] laid out like `states_b` (leaves [B, ...])."""
    layout = state_layout(states_b, num_batch_dims=1)
    rows = pack_states(states_b, layout)
    return PackedStates(
        rows=tuple(
            jnp.zeros((r.shape[0], num_nodes, r.shape[-1]), r.dtype) for r in rows
        ),
        layout=layout,
    )


def _subtree_mask(parents_n: jax.Array, child: jax.Array) -> jax.Array:
    """bool[N]: the nodes in the subtree rooted at `child` (unbatched).

    Pointer jumping: with the root and `child` made fixed points, every
    ancestor chain ends at one of them after ceil(log2 N) squarings.
    """
    num_nodes = parents_n.shape[0]
    index = jnp.arange(num_nodes)
    jump = jnp.where(parents_n < 0, index, parents_n)
    jump = jnp.where(index == child, index, jump)
    for _ in range(max(1, (num_nodes - 1).bit_length())):
        jump = jump[jump]
    return jnp.logical_and(jump == child, child >= 0)


def _reuse_one(tree: Tree, action: jax.Array, keep: jax.Array) -> Tree:
    """`reuse_subtree` for one game (a `Tree` whose leaves lack the B axis)."""
    num_nodes = tree.node_info.shape[0]
    child = tree.children_index[ROOT, action]
    child = jnp.where(jnp.logical_and(keep, tree.num_used > 0), child, UNVISITED)
    inside = _subtree_mask(tree.parents, child)
    new_index = jnp.where(inside, jnp.cumsum(inside) - 1, UNVISITED)
    num_used = jnp.sum(inside, dtype=jnp.int32)
    # old_of_new[j] = the old index of the node that moves to slot j.
    old_of_new = jnp.zeros((num_nodes,), jnp.int32).at[
        jnp.where(inside, new_index, num_nodes)
    ].set(jnp.arange(num_nodes, dtype=jnp.int32), mode="drop")
    used = jnp.arange(num_nodes) < num_used
    used_a = used[:, None]

    def move(x, fill):
        moved = x[old_of_new]
        mask = used.reshape((num_nodes,) + (1,) * (x.ndim - 1))
        return jnp.where(mask, moved, jnp.asarray(fill, x.dtype))

    def remap(index):
        return jnp.where(index >= 0, new_index[jnp.maximum(index, 0)], index)

    info = move(tree.node_info, 0)
    parents = jnp.where(used, remap(info[:, PARENT].astype(jnp.int32)), NO_PARENT)
    actions = jnp.where(used, info[:, ACTION], NO_PARENT)
    info = info.at[:, PARENT].set(parents.astype(jnp.float32)).at[:, ACTION].set(actions)
    # The new root has no parent and no edge into it.
    info = info.at[ROOT, REWARD:].set(jnp.array([0.0, 0.0, NO_PARENT, NO_PARENT], jnp.float32))
    return Tree(
        node_visit_value=move(tree.node_visit_value, 0),
        node_info=info,
        terminal=move(tree.terminal, False),
        children_index=jnp.where(used_a, remap(move(tree.children_index, UNVISITED)), UNVISITED),
        edge_prior=move(tree.edge_prior, 0),
        edge_visit_value=move(tree.edge_visit_value, 0),
        packed_states=tree.packed_states.replace(
            rows=tuple(move(x, 0) for x in tree.packed_states.rows)
        ),
        num_used=num_used,
    )


def reuse_subtree(tree: Tree, action: jax.Array, *, keep: jax.Array | None = None) -> Tree:
    """Makes the subtree below the played action the next search's tree.

    The chosen child becomes node 0 and its descendants keep their statistics
    (renumbered in the same order), so the simulations already spent on them
    count in the next search; every other node is freed. Where the child was
    never expanded, or `keep` is False (e.g. the game ended and was reset), the
    game's tree is emptied and the next search starts from its root state.

    Args:
        tree: the tree returned by a search, leaves [B, N, ...].
        action: int32[B], the action played at each root.
        keep: optional bool[B]; False empties that game's tree.

    Returns:
        A `Tree` of the same shape, to pass as `tree=` to the next search.
    """
    batch_size = tree.batch_size
    if keep is None:
        keep = jnp.ones((batch_size,), jnp.bool_)
    action = jnp.asarray(action, jnp.int32)
    if action.shape != (batch_size,) or keep.shape != (batch_size,):
        raise ValueError(
            f"action and keep must have shape ({batch_size},), got {action.shape} and {keep.shape}"
        )
    return jax.vmap(_reuse_one)(tree, action, keep)
