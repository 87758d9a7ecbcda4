"""Per-action values of a node (or a batch of nodes), laid out so that XLA fuses a node's scoring.

Selection scores a node's A actions with a chain of small steps: visit sums,
the mixed value, min-max rescaling, a softmax, an argmax. Written over arrays
[B, A], every reduction over A is an XLA operation of its own, and on a CPU at
A = 7 (connect four) such operations cost far more to launch than to run: a
descent step of Gumbel search was 19 kernels. `PerAction` holds the A values
as A separate columns [B] instead, so a reduction over actions is a chain
of element-wise operations and the whole score, argmax included, fuses into
one or two kernels (9 per descent step in all; Gumbel search 1.16-1.31x faster
at batch 1-64, see BENCHMARKS.md). Past `UNROLL_MAX` actions (othello 65, go 82) the unrolled code
would grow with A and compile slowly, so the values are kept stacked as one
array [A, B] and the reductions are ordinary ones.

Arithmetic mixes `PerAction` values with per-node arrays of the batch shape
(a node's value, its visit total) and with Python scalars, like NumPy
broadcasting of `[..., A]` against `[..., 1]`. Maxima, minima, integer sums
and the argmax give exactly what the array reductions give; a float sum over
columns adds left to right, which can differ from XLA's reduction order in the
last bit.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

# Up to this many actions the columns are kept apart (one per action).
UNROLL_MAX = 16


class PerAction:
    """A values per action for a batch of nodes: A columns [...], or one stacked array [A, ...].

    Build one with `PerAction.from_array(x)` from x [..., A] and read it back
    with `to_array()`. Operators act column by column (or on the stacked
    array); a plain array operand must have the batch shape `...` and is
    broadcast over the actions.
    """

    __slots__ = ("parts", "stacked")
    __hash__ = None  # `==` is element-wise
    __array_ufunc__ = None  # NumPy arrays defer to the reflected operators below

    def __init__(self, parts: Sequence[jax.Array], *, stacked: bool = False):
        self.parts = tuple(parts)
        self.stacked = stacked

    @classmethod
    def from_array(cls, x: jax.Array) -> "PerAction":
        """From x [..., A]: A columns when A <= UNROLL_MAX, else stacked [A, ...]."""
        x = jnp.asarray(x)
        if x.shape[-1] <= UNROLL_MAX:
            return cls(x[..., a] for a in range(x.shape[-1]))
        return cls((jnp.moveaxis(x, -1, 0),), stacked=True)

    def to_array(self) -> jax.Array:
        """The values as one array [..., A]."""
        if self.stacked:
            return jnp.moveaxis(self.parts[0], 0, -1)
        return jnp.stack(self.parts, axis=-1)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.parts[0].shape[1:] if self.stacked else self.parts[0].shape

    @property
    def dtype(self):
        return self.parts[0].dtype

    def _new(self, parts) -> "PerAction":
        return PerAction(parts, stacked=self.stacked)

    def astype(self, dtype) -> "PerAction":
        return self._new(p.astype(dtype) for p in self.parts)

    # Reductions over the actions; each returns an array of the batch shape.

    def _reduce(self, op, reduce_fn) -> jax.Array:
        if self.stacked:
            return reduce_fn(self.parts[0], axis=0)
        return functools.reduce(op, self.parts)  # left to right

    def sum(self) -> jax.Array:
        return self._reduce(jnp.add, jnp.sum)

    def max(self) -> jax.Array:
        return self._reduce(jnp.maximum, jnp.max)

    def min(self) -> jax.Array:
        return self._reduce(jnp.minimum, jnp.min)

    def argmax(self) -> jax.Array:
        """int32 index of the largest value, the lowest on ties (as `jnp.argmax` without NaN)."""
        if self.stacked:
            return jnp.argmax(self.parts[0], axis=0).astype(jnp.int32)
        best, index = self.parts[0], jnp.zeros(self.batch_shape, jnp.int32)
        for a, value in enumerate(self.parts[1:], start=1):
            better = value > best
            best, index = jnp.where(better, value, best), jnp.where(better, a, index)
        return index

    # Element-wise arithmetic.

    def _binary(self, fn, other, reverse=False) -> "PerAction":
        others = _operand_parts(other, self)
        if reverse:
            return self._new(fn(o, p) for p, o in zip(self.parts, others))
        return self._new(fn(p, o) for p, o in zip(self.parts, others))

    def __neg__(self):
        return self._new(-p for p in self.parts)

    def __invert__(self):
        return self._new(~p for p in self.parts)


def _operator(fn: Callable, reverse: bool = False):
    return lambda self, other: self._binary(fn, other, reverse)


for _name, _fn in (
    ("add", jnp.add), ("sub", jnp.subtract), ("mul", jnp.multiply), ("truediv", jnp.true_divide),
):
    setattr(PerAction, f"__{_name}__", _operator(_fn))
    setattr(PerAction, f"__r{_name}__", _operator(_fn, reverse=True))
for _name, _fn in (
    ("gt", jnp.greater), ("ge", jnp.greater_equal), ("lt", jnp.less), ("le", jnp.less_equal),
    ("eq", jnp.equal), ("and", jnp.logical_and),
):
    setattr(PerAction, f"__{_name}__", _operator(_fn))
del _name, _fn


def _operand_parts(x, like: PerAction) -> list:
    """`x` laid out like `like`: a PerAction, a batch-shaped array or a scalar."""
    if isinstance(x, PerAction):
        if x.stacked != like.stacked or len(x.parts) != len(like.parts):
            raise ValueError("PerAction operands are laid out differently")
        return list(x.parts)
    x = jnp.asarray(x)
    if x.ndim == 0:
        return [x] * len(like.parts)
    if x.shape != like.batch_shape:
        raise ValueError(
            f"an array operand must have the batch shape {like.batch_shape} (one value per node), "
            f"got {x.shape}"
        )
    return [x[None] if like.stacked else x] * len(like.parts)


def _map(fn: Callable, *args) -> PerAction:
    like = next(a for a in args if isinstance(a, PerAction))
    parts = [_operand_parts(a, like) for a in args]
    return like._new(fn(*ps) for ps in zip(*parts))


def where(condition, x, y) -> PerAction:
    """`jnp.where` with at least one `PerAction` argument."""
    return _map(jnp.where, condition, x, y)


def maximum(x, y) -> PerAction:
    return _map(jnp.maximum, x, y)


def minimum(x, y) -> PerAction:
    return _map(jnp.minimum, x, y)


def exp(x: PerAction) -> PerAction:
    return x._new(jnp.exp(p) for p in x.parts)


def softmax(x: PerAction) -> PerAction:
    """Softmax over the actions, as `jax.nn.softmax` computes it."""
    unnormalized = exp(x - x.max())
    return unnormalized / unnormalized.sum()


def masked_argmax(scores: PerAction, legal_action_mask: PerAction) -> jax.Array:
    """Argmax over legal actions, lowest index on ties (action 0 if none is legal)."""
    return where(legal_action_mask, scores, -jnp.inf).argmax()
