"""Input validation shared by the losses.

Every check raises a ``ValueError`` that names the argument and what is
allowed, and runs in Python on shapes and static hyperparameters, so bad input
fails before anything is traced or compiled. Hyperparameters that arrive as
JAX arrays (for example a KL coefficient from an adaptive controller) are not
range-checked, because their values are unknown at trace time.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np


def is_concrete_number(value: Any) -> bool:
    """True for a Python or NumPy real number (not bool, not a JAX array)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raises unless ``value`` is one of ``allowed``."""
    if value not in tuple(allowed):
        raise ValueError(f"{name}={value!r} is not one of {tuple(allowed)!r}")


def check_positive(name: str, value: Any) -> None:
    """Raises unless ``value > 0`` (skipped for traced values)."""
    if is_concrete_number(value) and not value > 0:
        raise ValueError(f"{name}={value!r} must be > 0")


def check_nonnegative(name: str, value: Any) -> None:
    """Raises unless ``value >= 0`` (skipped for traced values)."""
    if is_concrete_number(value) and not value >= 0:
        raise ValueError(f"{name}={value!r} must be >= 0")


def check_greater(name: str, value: Any, bound: float) -> None:
    """Raises unless ``value > bound`` (skipped for traced values)."""
    if is_concrete_number(value) and not value > bound:
        raise ValueError(f"{name}={value!r} must be > {bound}")


def check_in_interval(name: str, value: Any, low: float, high: float) -> None:
    """Raises unless ``low <= value < high`` (skipped for traced values)."""
    if is_concrete_number(value) and not low <= value < high:
        raise ValueError(f"{name}={value!r} must be in [{low}, {high})")


def check_shapes(**named: tuple[Any, str] | None) -> dict[str, int]:
    """Checks that arrays agree on named dimensions.

    Args:
        **named: ``name=(array, spec)`` where ``spec`` is a string of dimension
            letters, one per axis (``"BT"`` for ``[B, T]``, ``""`` for a
            scalar). Entries whose array is ``None`` are skipped. The first
            array that mentions a letter fixes its size.

    Returns:
        The size of each dimension letter.

    Raises:
        ValueError: naming the first array whose rank or size disagrees.
    """
    sizes: dict[str, int] = {}
    source: dict[str, str] = {}
    for name, entry in named.items():
        if entry is None:
            continue
        array, spec = entry
        if array is None:
            continue
        shape = tuple(np.shape(array))
        expected = "[" + ", ".join(spec) + "]"
        if len(shape) != len(spec):
            raise ValueError(
                f"{name} has shape {shape} (rank {len(shape)}), expected rank "
                f"{len(spec)} with shape {expected}"
            )
        for axis, (letter, size) in enumerate(zip(spec, shape)):
            if letter in sizes and sizes[letter] != size:
                raise ValueError(
                    f"{name} has shape {shape}, expected {expected}: axis {axis} "
                    f"({letter}) is {size} but {letter}={sizes[letter]} from "
                    f"{source[letter]}"
                )
            sizes.setdefault(letter, size)
            source.setdefault(letter, name)
    return sizes


def advantage_spec(advantages: Any) -> str:
    """Spec for advantages that may be per sequence ``[B]`` or per token ``[B, T]``."""
    ndim = np.ndim(advantages)
    if ndim not in (1, 2):
        raise ValueError(
            f"advantages has shape {np.shape(advantages)}, expected [B] or [B, T]"
        )
    return "B" if ndim == 1 else "BT"
