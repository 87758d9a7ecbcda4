"""Environment states stored as a few flat rows per node instead of one array per leaf.

A pgx state has about ten leaves (board, observation, legal actions, rewards,
flags...). Storing each as its own `[B, N, ...]` array costs one scatter per
leaf at every expansion and, at batch 1 where the cost is the number of XLA
operations rather than bytes, that is a large share of a simulation. Here the
leaves are bit-cast to a signed integer of the same width (bool stays bool) and
concatenated into one row per storage dtype: connect four's state becomes one
int32 row of 48 words and one bool row of 93 flags, so storing a node's state
is two scatters whatever the game. Unpacking is slices and bit-casts, which
XLA fuses into their consumers. The round trip is exact (bit-casts, no
arithmetic), so searches see exactly the states the environment produced.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class StateLayout(NamedTuple):
    """Where each leaf of a state lives in the packed rows (static, hashable).

    Attributes:
        treedef: the state's pytree structure.
        shapes: per leaf, its shape for one game.
        dtypes: per leaf, its dtype name.
        rows: per leaf, the index of its row (one row per storage dtype).
        offsets: per leaf, its first column in that row.
        row_dtypes: per row, the storage dtype name.
        row_sizes: per row, its number of columns.
    """

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    rows: tuple[int, ...]
    offsets: tuple[int, ...]
    row_dtypes: tuple[str, ...]
    row_sizes: tuple[int, ...]


def _storage_dtype(dtype) -> np.dtype:
    """bool for bool, else the signed integer of the same width."""
    if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        raise ValueError(
            f"a state leaf has dtype {dtype}, which the tree cannot store; "
            "keep typed PRNG keys as raw data (jax.random.key_data) in the state"
        )
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return dtype
    return np.dtype(f"int{8 * dtype.itemsize}")


def state_layout(states: Any, *, num_batch_dims: int) -> StateLayout:
    """Returns the layout of `states`, whose leaves have `num_batch_dims` leading axes.

    Args:
        states: a pytree of arrays.
        num_batch_dims: leading axes that are not part of one game's state.

    Returns:
        A `StateLayout`.
    """
    leaves, treedef = jax.tree.flatten(states)
    shapes, dtypes, rows, offsets = [], [], [], []
    row_dtypes: list[str] = []
    row_sizes: list[int] = []
    for leaf in leaves:
        dtype = jnp.asarray(leaf).dtype
        storage = _storage_dtype(dtype).name
        if storage not in row_dtypes:
            row_dtypes.append(storage)
            row_sizes.append(0)
        row = row_dtypes.index(storage)
        shape = tuple(np.shape(leaf)[num_batch_dims:])
        shapes.append(shape)
        dtypes.append(dtype.name)
        rows.append(row)
        offsets.append(row_sizes[row])
        row_sizes[row] += math.prod(shape)
    return StateLayout(
        treedef, tuple(shapes), tuple(dtypes), tuple(rows), tuple(offsets),
        tuple(row_dtypes), tuple(row_sizes),
    )


def _to_storage(x: jax.Array, storage: str) -> jax.Array:
    if x.dtype == np.dtype(storage):
        return x
    return jax.lax.bitcast_convert_type(x, np.dtype(storage))


def _from_storage(x, dtype: str):
    if x.dtype == np.dtype(dtype):
        return x
    if isinstance(x, np.ndarray):  # a tree fetched to the host stays on the host
        return x.view(np.dtype(dtype))
    return jax.lax.bitcast_convert_type(x, np.dtype(dtype))


def pack_states(states: Any, layout: StateLayout) -> tuple[jax.Array, ...]:
    """Packs states (leaves [*lead, ...]) into rows [*lead, S_r], one per storage dtype."""
    leaves = layout.treedef.flatten_up_to(states)
    lead = None
    parts: list[list[jax.Array]] = [[] for _ in layout.row_dtypes]
    for leaf, shape, row in zip(leaves, layout.shapes, layout.rows):
        leaf = jnp.asarray(leaf)
        lead = leaf.shape[: leaf.ndim - len(shape)]
        flat = leaf.reshape(lead + (math.prod(shape),))
        parts[row].append(_to_storage(flat, layout.row_dtypes[row]))
    return tuple(
        p[0] if len(p) == 1 else jnp.concatenate(p, axis=-1) for p in parts
    )


def unpack_states(rows: tuple[jax.Array, ...], layout: StateLayout) -> Any:
    """Inverse of `pack_states`: rows [*lead, S_r] -> states with leaves [*lead, ...].

    NumPy rows (a tree fetched with `jax.device_get`) give NumPy leaves.
    """
    lead = rows[0].shape[:-1]
    leaves = []
    for shape, dtype, row, offset in zip(layout.shapes, layout.dtypes, layout.rows, layout.offsets):
        size = math.prod(shape)
        flat = rows[row][..., offset : offset + size]
        leaves.append(_from_storage(flat, dtype).reshape(lead + shape))
    return layout.treedef.unflatten(leaves)


@struct.dataclass
class PackedStates:
    """A batch of per-node states as packed rows.

    Attributes:
        rows: tuple of arrays [B, N, S_r], one per storage dtype.
        layout: the static `StateLayout`.
    """

    rows: tuple[jax.Array, ...]
    layout: StateLayout = struct.field(pytree_node=False)

    def unpack(self) -> Any:
        """The states as a pytree with leaves [B, N, ...]."""
        return unpack_states(self.rows, self.layout)
