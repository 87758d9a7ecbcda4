"""Transforms of a node's Q-values used by action selection.

Each transform maps one node's statistics (`NodeStats`, unbatched, A actions)
to a score per action; selection functions take one as `qtransform_fn`. The
arithmetic follows mctx's `qtransforms` operation by operation, so searches
configured alike produce bit-identical scores.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class NodeStats(NamedTuple):
    """What selection sees of one node.

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


def prior_probs(node: NodeStats) -> jax.Array:
    """softmax(node.prior_logits), the stored copy where there is one (same bits)."""
    if node.prior_probs is not None:
        return node.prior_probs
    return jax.nn.softmax(node.prior_logits)


def sum_and_max(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sum and max over the last axis of an integer array, in one reduction.

    Integer sums and maxima do not depend on the reduction order, so one
    variadic reduction gives exactly `jnp.sum` and `jnp.max` for one XLA
    operation instead of two (at batch 1 the cost is the operation count).

    Args:
        x: int[..., A].

    Returns:
        (int[...], int[...]).
    """
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(f"x.dtype={x.dtype} must be an integer type (float sums depend on order)")
    lowest = jnp.iinfo(x.dtype).min
    return jax.lax.reduce(
        (x, x),
        (jnp.zeros((), x.dtype), jnp.full((), lowest, x.dtype)),
        lambda a, b: (a[0] + b[0], jnp.maximum(a[1], b[1])),
        (x.ndim - 1,),
    )


def min_and_max(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`jnp.min` and `jnp.max` over the last axis in one reduction (exact: order-free).

    Args:
        x: float[..., A].

    Returns:
        (float[...], float[...]).
    """
    return jax.lax.reduce(
        (x, x),
        (jnp.full((), jnp.inf, x.dtype), jnp.full((), -jnp.inf, x.dtype)),
        lambda a, b: (jnp.minimum(a[0], b[0]), jnp.maximum(a[1], b[1])),
        (x.ndim - 1,),
    )


def qtransform_by_parent_and_siblings(node: NodeStats, *, epsilon: float = 1e-8) -> jax.Array:
    """Q normalised to [0, 1] by the min and max of the node value and visited Qs.

    Unvisited actions score 0. This is mctx's default for `muzero_policy`.

    Returns:
        float32[A].
    """
    visited = node.children_visits > 0
    safe = jnp.where(visited, node.qvalues, node.value)
    low, high = min_and_max(safe)
    low = jnp.minimum(node.value, low)
    high = jnp.maximum(node.value, high)
    completed = jnp.where(visited, node.qvalues, low)
    return (completed - low) / jnp.maximum(high - low, epsilon)


def qtransform_by_min_max(
    node: NodeStats, *, min_value: float = -1.0, max_value: float = 1.0
) -> jax.Array:
    """Q min-max normalised by fixed bounds: (q - min) / (max - min).

    Unvisited actions score 0. For games with outcomes in [-1, 1] the default
    bounds map a loss to 0 and a win to 1.

    Returns:
        float32[A].
    """
    score = jnp.where(node.children_visits > 0, node.qvalues, min_value)
    return (score - min_value) / (max_value - min_value)


def _mixed_value(node: NodeStats, num_visits: jax.Array) -> jax.Array:
    """The raw value interpolated with the prior-weighted visited Qs (Gumbel App. D).

    `num_visits` is `sum(node.children_visits)`, passed in so that one reduction
    serves every user of it.
    """
    visited = node.children_visits > 0
    probs = prior_probs(node)
    probs = jnp.maximum(jnp.finfo(probs.dtype).tiny, probs)
    sum_probs = jnp.sum(jnp.where(visited, probs, 0.0), axis=-1)
    weighted_q = jnp.sum(
        jnp.where(visited, probs * node.qvalues / jnp.where(visited, sum_probs, 1.0), 0.0),
        axis=-1,
    )
    return (node.raw_value + num_visits * weighted_q) / (num_visits + 1)


def completed_q_and_total_visits(
    node: NodeStats,
    *,
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
    epsilon: float = 1e-8,
) -> tuple[jax.Array, jax.Array]:
    """`qtransform_completed_by_mix_value` and `sum(node.children_visits)`.

    Gumbel's interior selection needs both; one variadic reduction gives the
    visit total and the visit maximum together.

    Returns:
        (float32[A], int32[]).
    """
    num_visits, max_visits = sum_and_max(node.children_visits)
    value = _mixed_value(node, num_visits) if use_mixed_value else node.raw_value
    completed = jnp.where(node.children_visits > 0, node.qvalues, value)
    if rescale_values:
        low, high = min_and_max(completed)
        low, high = low[..., None], high[..., None]
        completed = (completed - low) / jnp.maximum(high - low, epsilon)
    visit_scale = maxvisit_init + max_visits
    return visit_scale * value_scale * completed, num_visits


def qtransform_completed_by_mix_value(
    node: NodeStats,
    *,
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
    epsilon: float = 1e-8,
) -> jax.Array:
    """Completed Q of Gumbel search: unvisited actions get the mixed value.

    sigma(q) = (maxvisit_init + max_a N(a)) * value_scale * q, with q first
    rescaled to [0, 1] over actions when `rescale_values` (Danihelka et al.,
    "Policy improvement by planning with Gumbel", ICLR 2022, App. D).

    Returns:
        float32[A].
    """
    return completed_q_and_total_visits(
        node, value_scale=value_scale, maxvisit_init=maxvisit_init,
        rescale_values=rescale_values, use_mixed_value=use_mixed_value, epsilon=epsilon,
    )[0]
