"""PRNG conventions: the key comes first, is split at the top, per-step keys by fold_in.

``step_key(key, step)`` gives the key of one step (``jax.random.fold_in``), so a
resumed run draws exactly what an uninterrupted one would, with no key carried
in the loop state. ``stream_key(key, name)`` separates independent uses (data
order, sampling, initialisation) by a stable name hash.
"""

from __future__ import annotations

import zlib

import jax

__all__ = ["make_key", "step_key", "stream_key"]


def make_key(seed: int) -> jax.Array:
    """New-style typed key from an int seed."""
    return jax.random.key(int(seed))


def step_key(key: jax.Array, step: int | jax.Array) -> jax.Array:
    """The key of training step ``step`` (works under jit with a traced step)."""
    return jax.random.fold_in(key, step)


def stream_key(key: jax.Array, name: str) -> jax.Array:
    """An independent key for the named stream (crc32 of ``name``, stable across runs)."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)
