"""shard_batch: leading axis on the data axes, real per-device shards, clear errors."""

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from symbiosis_jax import parallel


def test_shard_batch_places_rows_on_data_axes():
    mesh = parallel.make_mesh((("data", 2), ("fsdp", 2), ("tensor", 2)))
    tokens = np.arange(8 * 3, dtype=np.int32).reshape(8, 3)
    reward = np.linspace(0.0, 1.0, 8, dtype=np.float32)
    out = parallel.shard_batch({"tokens": tokens, "reward": reward}, mesh)
    assert out["tokens"].sharding.spec == P(("data", "fsdp"), None)
    assert out["reward"].sharding.spec == P(("data", "fsdp"))
    np.testing.assert_array_equal(np.asarray(out["tokens"]), tokens)
    # 4 data shards of 2 rows, each replicated over the 2 tensor devices.
    shards = out["tokens"].addressable_shards
    assert len(shards) == 8
    assert {s.data.shape for s in shards} == {(2, 3)}
    starts = sorted({s.index[0].start for s in shards})
    assert starts == [0, 2, 4, 6]
    for s in shards:
        np.testing.assert_array_equal(np.asarray(s.data), tokens[s.index])


def test_shard_batch_custom_logical_axis():
    mesh = parallel.make_mesh((("data", 8),))
    rules = parallel.DEFAULT_RULES + (("games", "data"),)
    games = np.arange(32.0).reshape(16, 2)
    out = parallel.shard_batch((games,), mesh, rules=rules, logical_axis="games")
    assert out[0].sharding.spec == P("data", None)
    for s in out[0].addressable_shards:  # 8 shards of 2 rows, each the rows it says it holds
        assert s.data.shape == (2, 2)
        np.testing.assert_array_equal(np.asarray(s.data), games[s.index])
    assert parallel.batch_sharding(mesh).spec == P("data")


def test_shard_batch_errors():
    mesh = parallel.make_mesh((("data", 4), ("tensor", 2)))
    with pytest.raises(ValueError, match=r"batch size 6 is not divisible by the data-parallel size 4"):
        parallel.shard_batch({"x": np.zeros((6, 2))}, mesh)
    with pytest.raises(ValueError, match=r"different leading sizes \[4, 8\]"):
        parallel.shard_batch({"x": np.zeros((8, 2)), "y": np.zeros((4,))}, mesh)
    with pytest.raises(ValueError, match=r"\['s'\] is a scalar"):
        parallel.shard_batch({"s": np.float32(1.0), "x": np.zeros((8,))}, mesh)
