"""A fixed-size replay buffer that lives on the device, as pure functions.

Self-play produces ``[T, B]`` samples of which only some are real positions (moves
after a game ended are padding). :func:`replay_add` writes the valid ones in order
into a ring of ``capacity`` slots without leaving jit; :func:`replay_sample` draws a
uniform minibatch from the filled part.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.struct
import jax
import jax.numpy as jnp

PyTree = Any


@flax.struct.dataclass
class ReplayBuffer:
    """Ring buffer of training samples.

    Attributes:
        data: pytree of ``[capacity, ...]`` arrays.
        insert_pos: ``[]`` int32, slot the next sample goes to.
        size: ``[]`` int32, number of filled slots (at most ``capacity``).
    """

    data: PyTree
    insert_pos: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def replay_init(example: PyTree, *, capacity: int) -> ReplayBuffer:
    """Creates an empty buffer shaped like one sample.

    Args:
        example: pytree of arrays shaped like one sample (no leading axis).
        capacity: number of slots.

    Raises:
        ValueError: if ``capacity`` is not positive.
    """
    if capacity <= 0:
        raise ValueError(f"capacity={capacity} must be a positive int")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data=data, insert_pos=jnp.int32(0), size=jnp.int32(0))


def replay_add(buffer: ReplayBuffer, samples: PyTree, valid_mask: jax.Array) -> ReplayBuffer:
    """Appends the valid samples of a batch, overwriting the oldest when full.

    Args:
        buffer: the buffer.
        samples: pytree of ``[M, ...]`` arrays (flatten ``[T, B]`` first).
        valid_mask: ``[M]`` bool, True for samples to keep; their order is kept.

    Returns:
        The updated buffer. If more than ``capacity`` samples are valid, the last
        ``capacity`` of them are kept.
    """
    chex.assert_rank(valid_mask, 1)
    capacity = buffer.capacity
    valid = valid_mask.astype(jnp.int32)
    num_new = jnp.sum(valid)
    rank = jnp.cumsum(valid) - valid  # position of each valid sample among the valid ones
    # Only the last `capacity` valid samples survive; earlier ones would be overwritten.
    keep = valid_mask & (rank >= num_new - capacity)
    slot = jnp.where(keep, (buffer.insert_pos + rank) % capacity, capacity)  # capacity = dropped

    def write(store, new):
        if store.shape[1:] != new.shape[1:]:
            raise ValueError(f"sample shape {new.shape[1:]} does not match the buffer's {store.shape[1:]}")
        return store.at[slot].set(new.astype(store.dtype), mode="drop")

    data = jax.tree.map(write, buffer.data, samples)
    return ReplayBuffer(
        data=data,
        insert_pos=((buffer.insert_pos + num_new) % capacity).astype(jnp.int32),
        size=jnp.minimum(buffer.size + num_new, capacity).astype(jnp.int32),
    )


def replay_sample(key: jax.Array, buffer: ReplayBuffer, *, batch_size: int) -> PyTree:
    """Draws ``batch_size`` samples uniformly, with replacement, from the filled slots.

    Args:
        key: PRNG key.
        buffer: a buffer with ``size > 0``.
        batch_size: number of samples.

    Returns:
        Pytree of ``[batch_size, ...]`` arrays.
    """
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda x: x[idx], buffer.data)
