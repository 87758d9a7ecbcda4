"""Placing batches on the mesh: the leading axis on the data axes."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from symbiosis_jax.parallel import rules as rules_lib

__all__ = ["batch_spec", "batch_sharding", "data_parallel_size", "replicated", "shard_batch"]


def batch_spec(
    mesh: jax.sharding.Mesh,
    *,
    rules: rules_lib.Rules = rules_lib.DEFAULT_RULES,
    logical_axis: str = "batch",
) -> PartitionSpec:
    """``PartitionSpec`` putting the leading axis on the mesh axes of ``logical_axis``.

    Args:
        mesh: the device mesh; rule targets that are not axes of it are dropped.
        rules: ``(logical, mesh_axes)`` pairs; ``logical_axis`` is looked up there.
        logical_axis: logical name of the leading axis (default ``"batch"``).

    Returns:
        A one-entry ``PartitionSpec`` (the other dimensions are replicated): the mesh axes
        of ``logical_axis`` present in ``mesh``, or None when there are none.

    Raises:
        ValueError: ``logical_axis`` has no rule in ``rules``.
    """
    return rules_lib.logical_to_spec((logical_axis,), rules=rules, mesh=mesh)


def batch_sharding(
    mesh: jax.sharding.Mesh,
    *,
    rules: rules_lib.Rules = rules_lib.DEFAULT_RULES,
    logical_axis: str = "batch",
) -> NamedSharding:
    """``NamedSharding`` for arrays whose leading axis is the batch (for ``in_shardings``).

    Args:
        mesh: the device mesh; rule targets that are not axes of it are dropped.
        rules: ``(logical, mesh_axes)`` pairs; ``logical_axis`` is looked up there.
        logical_axis: logical name of the leading axis (default ``"batch"``).

    Returns:
        ``NamedSharding(mesh, batch_spec(...))``: the leading axis split over the data axes,
        the other dimensions replicated.

    Raises:
        ValueError: ``logical_axis`` has no rule in ``rules``.
    """
    return NamedSharding(mesh, batch_spec(mesh, rules=rules, logical_axis=logical_axis))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """``NamedSharding`` replicating an array on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def data_parallel_size(
    mesh: jax.sharding.Mesh,
    *,
    rules: rules_lib.Rules = rules_lib.DEFAULT_RULES,
    logical_axis: str = "batch",
) -> int:
    """Into how many shards ``batch_sharding`` splits a batch: the product of the sizes
    of the mesh axes that ``logical_axis`` maps to (``data`` x ``fsdp`` by default).

    Args:
        mesh: the device mesh; rule targets that are not axes of it are dropped.
        rules: ``(logical, mesh_axes)`` pairs; ``logical_axis`` is looked up there.
        logical_axis: logical name of the leading axis (default ``"batch"``).

    Returns:
        The product of those mesh axes' sizes (1 when the batch is not split).

    Raises:
        ValueError: ``logical_axis`` has no rule in ``rules``.
    """
    return _data_parallel_size(mesh, batch_spec(mesh, rules=rules, logical_axis=logical_axis))[1]


def _data_parallel_size(mesh: jax.sharding.Mesh, spec: PartitionSpec) -> tuple[tuple[str, ...], int]:
    entry = spec[0] if len(spec) else None
    axes = () if entry is None else ((entry,) if isinstance(entry, str) else tuple(entry))
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
    size = 1
    for a in axes:
        size *= sizes[a]
    return axes, size


def shard_batch(
    batch: Any,
    mesh: jax.sharding.Mesh,
    *,
    rules: rules_lib.Rules = rules_lib.DEFAULT_RULES,
    logical_axis: str = "batch",
) -> Any:
    """Places every array of ``batch`` with its leading axis split over the data axes.

    In a single process each leaf is the global batch ``[B, ...]`` and is placed
    with ``jax.device_put``. With several processes (``jax.distributed``) each
    process passes its local slice ``[B / num_processes, ...]`` and the global
    array is assembled with ``jax.make_array_from_process_local_data``.

    Args:
        batch: pytree of arrays (numpy or jax), all with the same leading size B.
        mesh: the device mesh.
        rules: ``(logical, mesh_axes)`` pairs; ``logical_axis`` is looked up there.
        logical_axis: logical name of the leading axis (default ``"batch"``).

    Returns:
        The same pytree of globally sharded ``jax.Array``s.

    Raises:
        ValueError: a scalar leaf, differing leading sizes, or a leading size not
            divisible by the product of the data-axis sizes.
    """
    spec = batch_spec(mesh, rules=rules, logical_axis=logical_axis)
    axes, size = _data_parallel_size(mesh, spec)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(batch)
    if not leaves:
        return batch
    leading = set()
    for path, x in leaves:
        shape = np.shape(x)
        if not shape:
            raise ValueError(
                f"shard_batch: leaf {jax.tree_util.keystr(path)} is a scalar; every leaf "
                "needs a leading batch axis."
            )
        leading.add(shape[0])
    if len(leading) != 1:
        raise ValueError(f"shard_batch: leaves have different leading sizes {sorted(leading)}.")
    (b,) = leading
    nproc = jax.process_count()
    global_b = b * nproc
    if global_b % size:
        raise ValueError(
            f"shard_batch: batch size {global_b} is not divisible by the data-parallel "
            f"size {size} (mesh axes {axes} of mesh {dict(zip(mesh.axis_names, mesh.axis_sizes))})."
        )
    out = []
    for _, x in leaves:
        sharding = NamedSharding(mesh, PartitionSpec(*spec, *([None] * (np.ndim(x) - 1))))
        if nproc == 1:
            out.append(jax.device_put(x, sharding))
        else:
            out.append(jax.make_array_from_process_local_data(sharding, np.asarray(x)))
    return jax.tree_util.tree_unflatten(treedef, out)
