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
    """

    visits: jax.Array
    value: jax.Array
    raw_value: jax.Array
    prior_logits: jax.Array
    children_visits: jax.Array
    qvalues: jax.Array
    legal_action_mask: jax.Array


def qtransform_by_parent_and_siblings(node: NodeStats, *, epsilon: float = 1e-8) -> jax.Array:
    """Q normalised to [0, 1] by the min and max of the node value and visited Qs.

    Unvisited actions score 0. This is mctx's default for `muzero_policy`.

    Returns:
        float32[A].
    """
    visited = node.children_visits > 0
    safe = jnp.where(visited, node.qvalues, node.value)
    low = jnp.minimum(node.value, jnp.min(safe, axis=-1))
    high = jnp.maximum(node.value, jnp.max(safe, axis=-1))
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


def _mixed_value(node: NodeStats) -> jax.Array:
    """The raw value interpolated with the prior-weighted visited Qs (Gumbel App. D)."""
    visited = node.children_visits > 0
    num_visits = jnp.sum(node.children_visits, axis=-1)
    probs = jax.nn.softmax(node.prior_logits)
    probs = jnp.maximum(jnp.finfo(probs.dtype).tiny, probs)
    sum_probs = jnp.sum(jnp.where(visited, probs, 0.0), axis=-1)
    weighted_q = jnp.sum(
        jnp.where(visited, probs * node.qvalues / jnp.where(visited, sum_probs, 1.0), 0.0),
        axis=-1,
    )
    return (node.raw_value + num_visits * weighted_q) / (num_visits + 1)


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
    value = _mixed_value(node) if use_mixed_value else node.raw_value
    completed = jnp.where(node.children_visits > 0, node.qvalues, value)
    if rescale_values:
        low = jnp.min(completed, axis=-1, keepdims=True)
        high = jnp.max(completed, axis=-1, keepdims=True)
        completed = (completed - low) / jnp.maximum(high - low, epsilon)
    visit_scale = maxvisit_init + jnp.max(node.children_visits, axis=-1)
    return visit_scale * value_scale * completed
