"""Node states packed into rows: layout, exact round trip, unsupported dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import mcts
from symbiosis_jax.mcts.packing import pack_states, state_layout, unpack_states


def _example(lead):
    """A state pytree with leaves [*lead, ...] of several dtypes and awkward float bits."""
    n = int(np.prod(lead))
    floats = np.array([-0.0, np.inf, -np.inf, np.nan, 1e-45, 3.5], np.float32)
    return {
        "board": jnp.arange(n * 6, dtype=jnp.int32).reshape(lead + (2, 3)) - 7,
        "flags": jnp.asarray(np.arange(n * 4).reshape(lead + (4,)) % 3 == 0),
        "score": jnp.asarray(np.resize(floats, lead + (3,))),
        "small": jnp.arange(n, dtype=jnp.int8).reshape(lead) - 100,
        "seed": jnp.full(lead + (2,), 0xFFFFFFF0, jnp.uint32),
        "half": jnp.full(lead, -2.5, jnp.bfloat16),
    }


def test_layout_groups_leaves_by_storage_width():
    layout = state_layout(_example((5,)), num_batch_dims=1)
    # Leaves in key order: board, flags, half, score, seed, small.
    assert layout.row_dtypes == ("int32", "bool", "int16", "int8")
    # int32 row: board (6) + score (3, bit-cast) + seed (2, bit-cast) = 11 columns.
    assert layout.row_sizes == (11, 4, 1, 1)
    assert layout.offsets == (0, 0, 0, 6, 9, 0)


@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_round_trip_is_bit_exact(lead):
    states = _example(lead)
    layout = state_layout(states, num_batch_dims=len(lead))
    rows = jax.jit(lambda s: pack_states(s, layout))(states)
    assert [r.shape for r in rows] == [lead + (n,) for n in layout.row_sizes]
    back = jax.jit(lambda r: unpack_states(r, layout))(rows)
    for key, x in states.items():
        y = back[key]
        assert y.dtype == x.dtype and y.shape == x.shape, key
        # Compare bits, so NaN, -0.0 and denormals count too.
        np.testing.assert_array_equal(
            np.asarray(y).view(np.uint8), np.asarray(x).view(np.uint8), err_msg=key
        )
    # Rows fetched to the host unpack to host arrays.
    host = unpack_states(tuple(np.asarray(r) for r in rows), layout)
    assert isinstance(host["score"], np.ndarray)
    np.testing.assert_array_equal(host["seed"], np.asarray(states["seed"]))


def test_tree_states_match_the_environment(tic_tac_toe):
    env = tic_tac_toe
    states = jax.vmap(env.init)(jax.random.split(jax.random.key(0), 3))
    tree = mcts.empty_tree(states, num_nodes=4, num_actions=env.num_actions)
    leaves = jax.tree.leaves(tree.states)
    assert [x.shape for x in leaves] == [(3, 4) + x.shape[1:] for x in jax.tree.leaves(states)]
    assert all(not np.asarray(x).any() for x in leaves)


def test_typed_keys_are_refused():
    with pytest.raises(ValueError, match="PRNG keys"):
        state_layout({"key": jax.random.split(jax.random.key(0), 2)}, num_batch_dims=1)
