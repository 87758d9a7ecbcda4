"""Device meshes built from config axes.

The mesh is described by an ordered sequence of ``(name, size)`` pairs such as
``(("data", -1), ("fsdp", 1), ("tensor", 1))``. Exactly one size may be ``-1``;
it is filled from the device count. The product of the sizes must equal the
number of devices: a mesh never silently uses a subset of the devices, and it
never silently falls back to a single device on CPU.

In configs the axes are stored as separate int fields (``mesh.data``,
``mesh.fsdp``, ``mesh.tensor``) so that ``--config.mesh.data=2`` works on the
command line; :func:`mesh_axes_from_config` turns such a ConfigDict back into
the ordered pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "MESH_AXIS_ORDER",
    "AXIS_TYPES",
    "check_auto_axis_types",
    "make_mesh",
    "mesh_axes_from_config",
    "resolve_axes",
]

# Order of the standard mesh axes: data-parallel outermost, tensor innermost so
# that tensor-parallel collectives stay between neighbouring devices.
MESH_AXIS_ORDER = ("data", "fsdp", "tensor")
AXIS_TYPES = ("auto", "explicit")


def _canonical_axes(axes: Any) -> tuple[tuple[str, int], ...]:
    """Accepts pairs, a mapping, or a ConfigDict of sizes; returns pairs."""
    if isinstance(axes, Mapping) or hasattr(axes, "to_dict"):
        return mesh_axes_from_config(axes)
    if isinstance(axes, (str, bytes)) or not isinstance(axes, Sequence):
        raise ValueError(
            f"axes={axes!r} must be a sequence of (name, size) pairs such as "
            "(('data', -1), ('fsdp', 1), ('tensor', 1)) or a mapping of sizes."
        )
    pairs = []
    for pair in axes:
        if (
            isinstance(pair, (str, bytes))
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not isinstance(pair[0], str)
        ):
            raise ValueError(
                f"axes={axes!r}: every entry must be a (name: str, size: int) "
                f"pair, got {pair!r}."
            )
        name, size = pair
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise ValueError(f"axes={axes!r}: size of axis {name!r} must be an int, got {size!r}.")
        pairs.append((name, int(size)))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"axes={axes!r}: axis names must be unique, got {names}.")
    if not pairs:
        raise ValueError("axes=() is empty: give at least one (name, size) pair.")
    return tuple(pairs)


def mesh_axes_from_config(mesh_cfg: Any) -> tuple[tuple[str, int], ...]:
    """Turns a mesh config of int fields into ordered ``(name, size)`` pairs.

    Args:
        mesh_cfg: a ConfigDict or mapping with int fields. The standard names
            ``data``, ``fsdp``, ``tensor`` come first in that order; any other
            int fields follow in sorted order. Non-int fields (e.g. ``axis_types``)
            are ignored.

    Returns:
        Tuple of ``(name, size)`` pairs, e.g. ``(("data", -1), ("fsdp", 1), ("tensor", 1))``.
    """
    d = mesh_cfg.to_dict() if hasattr(mesh_cfg, "to_dict") else dict(mesh_cfg)
    sizes = {
        k: v
        for k, v in d.items()
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    }
    if not sizes:
        raise ValueError(
            f"mesh config {d!r} has no int axis fields; expected e.g. data=-1, fsdp=1, tensor=1."
        )
    names = [n for n in MESH_AXIS_ORDER if n in sizes]
    names += sorted(n for n in sizes if n not in MESH_AXIS_ORDER)
    return tuple((n, int(sizes[n])) for n in names)


def resolve_axes(axes: Any, num_devices: int) -> tuple[tuple[str, int], ...]:
    """Fills the single ``-1`` from ``num_devices`` and checks the product.

    Args:
        axes: ``(name, size)`` pairs (or a mesh config, see :func:`mesh_axes_from_config`).
        num_devices: number of devices the mesh must cover exactly.

    Returns:
        ``(name, size)`` pairs with positive sizes whose product is ``num_devices``.

    Raises:
        ValueError: more than one ``-1``, a size that is neither positive nor -1,
            or sizes that do not multiply to / divide ``num_devices``.
    """
    pairs = _canonical_axes(axes)
    wild = [n for n, s in pairs if s == -1]
    bad = [(n, s) for n, s in pairs if s != -1 and s < 1]
    if bad:
        raise ValueError(f"axes={pairs}: sizes must be positive or -1, got {bad}.")
    if len(wild) > 1:
        raise ValueError(
            f"axes={pairs}: at most one axis may have size -1 (filled from the "
            f"{num_devices} devices), got -1 for {wild}."
        )
    known = math.prod(s for _, s in pairs if s != -1)
    if wild:
        if num_devices % known:
            raise ValueError(
                f"axes={pairs}: the fixed sizes multiply to {known}, which does not "
                f"divide the device count {num_devices}."
            )
        return tuple((n, num_devices // known if s == -1 else s) for n, s in pairs)
    if known != num_devices:
        raise ValueError(
            f"axes={pairs}: sizes multiply to {known} but there are {num_devices} "
            "devices; the mesh must use every device (use -1 for one axis to fill it)."
        )
    return pairs


def _config_axis_types(mesh_cfg: Any) -> Any:
    """The ``axis_types`` field of a mesh ConfigDict or mapping; ``"auto"`` when absent."""
    return dict(mesh_cfg.to_dict() if hasattr(mesh_cfg, "to_dict") else mesh_cfg).get("axis_types", "auto")


def check_auto_axis_types(mesh_cfg: Any, *, loop: str) -> None:
    """Raises ``ValueError`` unless the mesh config asks for ``"auto"`` axes (the default).

    The training loops place arrays by ``in_shardings``/``out_shardings`` and sharding
    constraints, which JAX's explicit-sharding mode rejects; ``"explicit"`` meshes are for
    code written for that mode.

    Args:
        mesh_cfg: the ``config.mesh`` ConfigDict (or mapping); no ``axis_types`` = auto.
        loop: the loop's name, for the message.
    """
    axis_types = _config_axis_types(mesh_cfg)
    if axis_types not in AXIS_TYPES:
        raise ValueError(f"config.mesh.axis_types={axis_types!r} is not one of {AXIS_TYPES}.")
    if axis_types != "auto":
        raise ValueError(
            f"config.mesh.axis_types={axis_types!r}: the {loop} loop runs on 'auto' mesh axes only "
            "(its steps place arrays by in/out shardings and sharding constraints, which "
            "explicit-sharding mode rejects)"
        )


def make_mesh(
    axes: Any,
    *,
    devices: Sequence[jax.Device] | None = None,
    axis_types: str | None = None,
) -> jax.sharding.Mesh:
    """Builds a ``jax.sharding.Mesh`` from ``(name, size)`` pairs.

    Args:
        axes: ordered ``(name, size)`` pairs such as
            ``(("data", -1), ("fsdp", 1), ("tensor", 1))``, or a mesh ConfigDict of
            int fields. Exactly zero or one size may be ``-1``.
        devices: devices to lay out; defaults to ``jax.devices()`` (all devices of
            all processes).
        axis_types: ``"auto"`` (default, or the ``axis_types`` field of a mesh
            config; the compiler propagates shardings from
            ``in_shardings``/``out_shardings`` and constraints) or ``"explicit"``
            (sharding is part of every array's type; see the JAX explicit
            sharding docs).

    Returns:
        A mesh over all of ``devices`` with the given axis names and sizes.

    Raises:
        ValueError: bad axes (see :func:`resolve_axes`) or unknown ``axis_types``.
    """
    if axis_types is None:
        axis_types = "auto"
        if isinstance(axes, Mapping) or hasattr(axes, "to_dict"):
            axis_types = _config_axis_types(axes)
    if axis_types not in AXIS_TYPES:
        raise ValueError(f"axis_types={axis_types!r} is not one of {AXIS_TYPES}.")
    devices = list(jax.devices() if devices is None else devices)
    pairs = resolve_axes(axes, len(devices))
    names = tuple(n for n, _ in pairs)
    shape = tuple(s for _, s in pairs)
    kind = (
        jax.sharding.AxisType.Auto
        if axis_types == "auto"
        else jax.sharding.AxisType.Explicit
    )
    return jax.make_mesh(shape, names, axis_types=(kind,) * len(names), devices=devices)
