"""Transforms of a node's Q-values used by action selection.

Each transform maps a node's statistics (`NodeStats`, A actions) to a score
per action; selection functions take one as `qtransform_fn`. The arithmetic
follows mctx's `qtransforms` operation by operation, so searches configured
alike produce the same scores (bit for bit, except that a float sum over
actions may round differently in the last bit, see `peraction`).

The transforms here accept a node's per-action fields as arrays [..., A] (and
return [..., A]) or as `PerAction` values, which is what the search passes
them (and gets back): one code path serves both. A user-written transform
needs only handle one node's arrays [A]; `apply_qtransform` batches it.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from symbiosis_jax.mcts import peraction
from symbiosis_jax.mcts.peraction import PerAction


class NodeStats(NamedTuple):
    """What selection sees of one node.

    Shapes are those of one node; a batch of nodes adds leading axes to
    every field. The per-action fields may also be `PerAction` values.

    Attributes:
        visits: int32[], the node's visit count.
        value: float32[], the node's mean value.
        raw_value: float32[], the evaluator's value of the node.
        prior_logits: float32[A], illegal actions at float32 min.
        children_visits: int32[A].
        qvalues: float32[A], edge values; meaningless where unvisited.
        legal_action_mask: bool[A], True = legal.
        prior_probs: float32[A], softmax(prior_logits) when the caller has it
            (the search stores it per node), else None.
    """

    visits: jax.Array
    value: jax.Array
    raw_value: jax.Array
    prior_logits: jax.Array
    children_visits: jax.Array
    qvalues: jax.Array
    legal_action_mask: jax.Array
    prior_probs: jax.Array | None = None


_PER_ACTION_FIELDS = (
    "prior_logits", "children_visits", "qvalues", "legal_action_mask", "prior_probs"
)


def as_per_action(node: NodeStats) -> NodeStats:
    """`node` with its per-action fields as `PerAction` values (unchanged if they are)."""
    if isinstance(node.prior_logits, PerAction):
        return node
    return node._replace(**{
        name: PerAction.from_array(getattr(node, name))
        for name in _PER_ACTION_FIELDS
        if getattr(node, name) is not None
    })


def like_node(node: NodeStats, x: PerAction):
    """`x` in the form of `node`'s per-action fields: `PerAction`, or an array [..., A]."""
    return x if isinstance(node.prior_logits, PerAction) else x.to_array()


def _per_action_transform(fn):
    """Marks a transform written for `PerAction` values (see `apply_qtransform`)."""
    fn.accepts_per_action = True
    return fn


def apply_qtransform(qtransform_fn: Callable[[NodeStats], jax.Array], node: NodeStats) -> PerAction:
    """`qtransform_fn` of a batch of nodes whose per-action fields are `PerAction` values.

    The transforms of this module take the batch as it is; any other function
    is taken to score one node's arrays [A] and is `vmap`ped over the batch.

    Args:
        qtransform_fn: `NodeStats -> float32[A]`, or a keyword `functools.partial` of one.
        node: `NodeStats` with `PerAction` fields and batch shape [...].

    Returns:
        `PerAction`.
    """
    fn = qtransform_fn.func if isinstance(qtransform_fn, functools.partial) else qtransform_fn
    if getattr(fn, "accepts_per_action", False):
        return qtransform_fn(node)
    arrays = node._replace(**{
        name: getattr(node, name).to_array()
        for name in _PER_ACTION_FIELDS
        if getattr(node, name) is not None
    })
    batched = qtransform_fn
    for _ in range(node.visits.ndim):
        batched = jax.vmap(batched)
    return PerAction.from_array(batched(arrays))


def prior_probs(node: NodeStats):
    """softmax(node.prior_logits), the stored copy where there is one (same bits)."""
    if node.prior_probs is not None:
        return node.prior_probs
    if isinstance(node.prior_logits, PerAction):
        return peraction.softmax(node.prior_logits)
    return jax.nn.softmax(node.prior_logits)


def sum_and_max(x):
    """Sum and max over the actions of an integer array [..., A] or `PerAction`.

    Integer sums and maxima do not depend on the order, so one variadic
    reduction gives exactly `jnp.sum` and `jnp.max` for one XLA operation
    instead of two; over separate columns both are element-wise chains.

    Returns:
        (int[...], int[...]).
    """
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(f"x.dtype={x.dtype} must be an integer type (float sums depend on order)")
    lowest = jnp.iinfo(x.dtype).min
    return _variadic(
        x, (jnp.zeros((), x.dtype), jnp.full((), lowest, x.dtype)),
        lambda a, b: (a[0] + b[0], jnp.maximum(a[1], b[1])),
        lambda p: (p.sum(), p.max()),
    )


def min_and_max(x):
    """`jnp.min` and `jnp.max` over the actions of a float array [..., A] or `PerAction` (exact).

    Returns:
        (float[...], float[...]).
    """
    return _variadic(
        x, (jnp.full((), jnp.inf, x.dtype), jnp.full((), -jnp.inf, x.dtype)),
        lambda a, b: (jnp.minimum(a[0], b[0]), jnp.maximum(a[1], b[1])),
        lambda p: (p.min(), p.max()),
    )


def _variadic(x, init, combine, per_column):
    """Two reductions over the actions in one XLA reduction, or `per_column` for columns."""
    if isinstance(x, PerAction):
        if not x.stacked:
            return per_column(x)
        chunk, axis = x.parts[0], 0
    else:
        chunk, axis = x, x.ndim - 1
    return jax.lax.reduce((chunk, chunk), init, combine, (axis,))


@_per_action_transform
def qtransform_by_parent_and_siblings(node: NodeStats, *, epsilon: float = 1e-8):
    """Q normalised to [0, 1] by the min and max of the node value and visited Qs.

    Unvisited actions score 0. This is mctx's default for `muzero_policy`.

    Args:
        node: `NodeStats` of one node, or a batch of nodes; per-action fields as arrays
            [..., A] or `PerAction` values.
        epsilon: floor of the normaliser `max - min`, so that a node whose value and
            visited Qs are all equal scores 0 everywhere instead of dividing by 0.

    Returns:
        float32[A] (or `PerAction`, like the node's fields).
    """
    p = as_per_action(node)
    visited = p.children_visits > 0
    safe = peraction.where(visited, p.qvalues, p.value)
    low, high = min_and_max(safe)
    low = jnp.minimum(p.value, low)
    high = jnp.maximum(p.value, high)
    completed = peraction.where(visited, p.qvalues, low)
    return like_node(node, (completed - low) / jnp.maximum(high - low, epsilon))


@_per_action_transform
def qtransform_by_min_max(node: NodeStats, *, min_value: float = -1.0, max_value: float = 1.0):
    """Q min-max normalised by fixed bounds: (q - min) / (max - min).

    Unvisited actions score 0. For games with outcomes in [-1, 1] the default
    bounds map a loss to 0 and a win to 1.

    Args:
        node: `NodeStats` of one node, or a batch of nodes; per-action fields as arrays
            [..., A] or `PerAction` values.
        min_value: the Q that scores 0; unvisited actions get it. Not clipped: a Q below
            it scores below 0.
        max_value: the Q that scores 1 (a Q above it scores above 1); greater than
            `min_value`.

    Returns:
        float32[A] (or `PerAction`, like the node's fields).

    Raises:
        ValueError: numbers with `max_value <= min_value` (the scores would be inf/NaN or
            reversed).
    """
    if all(isinstance(v, (int, float)) for v in (min_value, max_value)) and not max_value > min_value:
        raise ValueError(f"max_value={max_value} must be greater than min_value={min_value}")
    p = as_per_action(node)
    score = peraction.where(p.children_visits > 0, p.qvalues, min_value)
    return like_node(node, (score - min_value) / (max_value - min_value))


def _mixed_value(node: NodeStats, num_visits: jax.Array) -> jax.Array:
    """The raw value interpolated with the prior-weighted visited Qs (Gumbel App. D).

    `node` has `PerAction` fields; `num_visits` is `sum(node.children_visits)`,
    passed in so that one reduction serves every user of it.
    """
    visited = node.children_visits > 0
    probs = peraction.maximum(jnp.finfo(jnp.float32).tiny, prior_probs(node))
    sum_probs = peraction.where(visited, probs, 0.0).sum()
    weighted_q = peraction.where(
        visited, probs * node.qvalues / peraction.where(visited, sum_probs, 1.0), 0.0
    ).sum()
    return (node.raw_value + num_visits * weighted_q) / (num_visits + 1)


def completed_q_and_total_visits(
    node: NodeStats,
    *,
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
    epsilon: float = 1e-8,
):
    """`qtransform_completed_by_mix_value` and `sum(node.children_visits)`.

    Gumbel's interior selection needs both; one reduction gives the visit
    total and the visit maximum together.

    Returns:
        (float32[A] or `PerAction` like the node's fields, int32[]).
    """
    p = as_per_action(node)
    num_visits, max_visits = sum_and_max(p.children_visits)
    value = _mixed_value(p, num_visits) if use_mixed_value else p.raw_value
    completed = peraction.where(p.children_visits > 0, p.qvalues, value)
    if rescale_values:
        low, high = min_and_max(completed)
        completed = (completed - low) / jnp.maximum(high - low, epsilon)
    visit_scale = maxvisit_init + max_visits
    return like_node(node, visit_scale * value_scale * completed), num_visits


@_per_action_transform
def qtransform_completed_by_mix_value(
    node: NodeStats,
    *,
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
    epsilon: float = 1e-8,
):
    """Completed Q of Gumbel search: unvisited actions get the mixed value.

    sigma(q) = (maxvisit_init + max_a N(a)) * value_scale * q, with q first
    rescaled to [0, 1] over actions when `rescale_values` (Danihelka et al.,
    "Policy improvement by planning with Gumbel", ICLR 2022, App. D).

    Args:
        node: `NodeStats` of one node, or a batch of nodes; per-action fields as arrays
            [..., A] or `PerAction` values.
        value_scale: c_scale, the factor multiplying the (rescaled) completed Q.
        maxvisit_init: c_visit, added to the largest child visit count to give the scale.
        rescale_values: min-max rescale the completed Qs to [0, 1] over the node's actions
            (all of them, illegal ones included) before scaling.
        use_mixed_value: complete unvisited actions with the mixed value (the raw value
            interpolated with the prior-weighted Qs of the visited actions); False uses
            the node's raw value.
        epsilon: floor of `max - min` in the rescaling, so that equal completed Qs rescale
            to 0 instead of dividing by 0; unused without `rescale_values`.

    Returns:
        float32[A] (or `PerAction`, like the node's fields).
    """
    return completed_q_and_total_visits(
        node, value_scale=value_scale, maxvisit_init=maxvisit_init,
        rescale_values=rescale_values, use_mixed_value=use_mixed_value, epsilon=epsilon,
    )[0]
