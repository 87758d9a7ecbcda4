"""Checkpointer: exact round trips of NNX/optax/PRNG state, atomicity, sharded restore."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from symbiosis_jax import parallel
from symbiosis_jax.training import (
    Checkpointer, ConfigError, check_resume_config, check_workdir, flatten_config, key_from_json, key_to_json,
    run_checkpointer,
)


def _data(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(x))
    return np.asarray(x)


def _assert_trees_equal(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(_data(x), _data(y))


class _Net(nnx.Module):
    def __init__(self, *, rngs):
        self.lin = nnx.Linear(
            4, 8, kernel_init=nnx.with_partitioning(nnx.initializers.lecun_normal(), ("embed", "mlp")),
            rngs=rngs,
        )
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.rngs = rngs  # RngState with a typed key and a counter

    def __call__(self, x):
        return self.bn(self.lin(x))


def _state():
    with nnx.use_eager_sharding(False):
        net = _Net(rngs=nnx.Rngs(params=1, dropout=2))
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    opt = tx.init(params)
    # Make the optimizer state non-trivial.
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    _, opt = tx.update(grads, opt, params)
    state = {
        "params": params,
        "rest": rest,
        "opt": opt,
        "key": jax.random.key(7),
        "raw_key": jax.random.PRNGKey(8),
        "step": jnp.asarray(12, jnp.int32),
        "hist": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3),
    }
    return graphdef, state


def test_round_trip_concrete_and_abstract_target(tmp_path):
    graphdef, state = _state()
    config = ml_collections.ConfigDict({"mesh": {"data": -1}, "axes": (("data", -1),), "lr": 1e-3})
    meta = {"config": config, "data_position": np.int64(96), "rng": key_to_json(jax.random.key(3))}
    with Checkpointer(tmp_path / "ckpt", max_to_keep=2) as ckpt:
        assert ckpt.latest_step() is None
        assert ckpt.save(12, state, meta)
        assert ckpt.latest_step() == 12
        restored, got_meta = ckpt.restore(target=state)
        _assert_trees_equal(restored, state)
        abstract = jax.eval_shape(lambda: state)
        restored2, _ = ckpt.restore(12, target=abstract)
        _assert_trees_equal(restored2, state)
    assert got_meta["config"] == {"mesh": {"data": -1}, "axes": [["data", -1]], "lr": 1e-3}
    assert got_meta["data_position"] == 96
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(key_from_json(got_meta["rng"]))),
        np.asarray(jax.random.key_data(jax.random.key(3))),
    )
    # The restored types are the live ones: a usable model and optax state.
    assert isinstance(restored2["params"], nnx.State)
    assert isinstance(restored2["opt"][1][0], optax.ScaleByAdamState)
    assert jnp.issubdtype(restored2["key"].dtype, jax.dtypes.prng_key)
    assert restored2["raw_key"].dtype == jnp.uint32
    net = nnx.merge(graphdef, restored2["params"], restored2["rest"])
    x = jnp.ones((2, 4))
    with nnx.use_eager_sharding(False):
        ref = nnx.merge(graphdef, state["params"], state["rest"])
    np.testing.assert_array_equal(np.asarray(net(x)), np.asarray(ref(x)))
    # The restored typed key draws the same numbers.
    np.testing.assert_array_equal(
        np.asarray(jax.random.normal(restored2["key"], (3,))), np.asarray(jax.random.normal(state["key"], (3,)))
    )


def test_restore_without_target_gives_nested_dict(tmp_path):
    _, state = _state()
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, {"a": state["hist"], "k": state["key"], "t": (state["step"], state["raw_key"])})
    raw, meta = ckpt.restore()
    assert meta == {}
    assert set(raw) == {"a", "k", "t"}
    assert set(raw["t"]) == {"0", "1"}
    np.testing.assert_array_equal(np.asarray(raw["t"]["0"]), 12)
    np.testing.assert_array_equal(np.asarray(raw["t"]["1"]), np.asarray(jax.random.PRNGKey(8)))
    assert raw["a"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(raw["a"], np.float32), np.arange(6.0).reshape(2, 3))
    assert jnp.issubdtype(raw["k"].dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(raw["k"])),
                                  np.asarray(jax.random.key_data(jax.random.key(7))))
    ckpt.close()


def test_max_to_keep_and_latest(tmp_path):
    ckpt = Checkpointer(tmp_path, max_to_keep=2)
    for step in (1, 5, 9):
        ckpt.save(step, {"x": jnp.full((2,), float(step))}, {"step": step})
    assert ckpt.all_steps() == [5, 9]
    x, meta = ckpt.restore(5, target={"x": jnp.zeros((2,))})
    np.testing.assert_array_equal(np.asarray(x["x"]), [5.0, 5.0])
    assert meta == {"step": 5}
    with pytest.raises(FileNotFoundError, match=r"step 1 not found.*\[5, 9\]"):
        ckpt.restore(1)
    with pytest.raises(ValueError, match=r"checkpoint array x has shape \(2,\) but the target has \(3,\)"):
        ckpt.restore(9, target={"x": jnp.zeros((3,))})
    with pytest.raises(ValueError, match=r"no array at y"):
        ckpt.restore(9, target={"y": jnp.zeros((2,))})
    ckpt.close()


def test_half_written_step_is_ignored(tmp_path, monkeypatch):
    from orbax.checkpoint._src.path import atomicity

    ckpt = Checkpointer(tmp_path, max_to_keep=3)
    ckpt.save(5, {"x": jnp.ones((2,))}, {"pos": 5})
    ckpt.close()

    async def crash(self, *args, **kwargs):
        raise RuntimeError("killed before the rename")

    # A save that dies before its final rename leaves only a tmp directory.
    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", crash)
    ckpt = Checkpointer(tmp_path, max_to_keep=3)
    with pytest.raises(Exception):
        ckpt.save(9, {"x": jnp.full((2,), 9.0)}, {"pos": 9})
        ckpt.wait()
    monkeypatch.undo()
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith("9")]
    assert leftovers and all(".orbax-checkpoint-tmp" in n for n in leftovers)

    fresh = Checkpointer(tmp_path, max_to_keep=3)
    assert fresh.latest_step() == 5
    x, meta = fresh.restore(target={"x": jnp.zeros((2,))})
    np.testing.assert_array_equal(np.asarray(x["x"]), [1.0, 1.0])
    assert meta == {"pos": 5}
    fresh.close()


def test_restore_onto_sharded_target_keeps_sharding(tmp_path):
    mesh = parallel.make_mesh((("data", 2), ("fsdp", 2), ("tensor", 2)))
    graphdef, state = _state()
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, state["params"])  # saved from a single device
    sharded_model = parallel.create_sharded_model(lambda: _Net(rngs=nnx.Rngs(params=0, dropout=0)), mesh)
    target = nnx.state(sharded_model, nnx.Param)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target
    )
    restored, _ = ckpt.restore(target=abstract)
    kernel = restored["lin"]["kernel"][...]
    assert kernel.sharding.spec == P("fsdp", "tensor")
    assert {s.data.shape for s in kernel.addressable_shards} == {(2, 4)}
    np.testing.assert_array_equal(np.asarray(kernel), np.asarray(state["params"]["lin"]["kernel"][...]))

    # And a sharded save restores onto a different (replicated) layout.
    ckpt.save(4, {"w": kernel})
    rep = jax.sharding.NamedSharding(mesh, P())
    back, _ = ckpt.restore(4, target={"w": jax.ShapeDtypeStruct(kernel.shape, kernel.dtype, sharding=rep)})
    assert back["w"].sharding.spec == P()
    np.testing.assert_array_equal(np.asarray(back["w"]), np.asarray(kernel))
    ckpt.close()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"max_to_keep=0 must be >= 1"):
        Checkpointer(tmp_path, max_to_keep=0)
    ckpt = Checkpointer(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint"):
        ckpt.restore()
    with pytest.raises(ValueError, match=r"not JSON-able"):
        ckpt.save(1, {"x": jnp.ones(1)}, {"f": object()})
    ckpt.close()


def test_async_save_then_restore(tmp_path):
    ckpt = Checkpointer(tmp_path, async_save=True)
    x = jnp.arange(6, dtype=jnp.float32).reshape(2, 3)
    ckpt.save(2, {"x": x}, {"note": "async"})
    ckpt.wait()
    ckpt.close()
    fresh = Checkpointer(tmp_path)
    assert fresh.latest_step() == 2
    got, meta = fresh.restore(target={"x": jax.ShapeDtypeStruct((2, 3), jnp.float32)})
    np.testing.assert_array_equal(np.asarray(got["x"]), np.asarray(x))
    assert meta == {"note": "async"}
    fresh.close()


def test_a_fresh_run_refuses_an_earlier_runs_checkpoints(tmp_path, capsys):
    # Was: orbax's StepAlreadyExistsError at the first save, after the training it was saving.
    check_workdir(tmp_path / "nothing_yet", resume=False)
    assert not os.path.exists(tmp_path / "nothing_yet")  # checking creates nothing
    ckpt, latest = run_checkpointer(tmp_path, resume=True)  # a job that always passes --resume
    assert latest is None and "no checkpoint" in capsys.readouterr().out
    ckpt.save(4, {"x": jnp.ones(2)})
    ckpt.close()
    with pytest.raises(ValueError, match=r"already holds a run's checkpoints \(steps 4\); pass --resume"):
        run_checkpointer(tmp_path, resume=False)
    ckpt, latest = run_checkpointer(tmp_path, resume=True)
    assert latest == 4
    ckpt.close()


def test_resume_config_check_names_changes_and_accepts_new_fields_at_their_defaults():
    def cfg(**search):
        return ml_collections.ConfigDict({"search": {"n": 8, **search}, "logging": {"every": 1}})

    saved = {"search": {"n": 8}, "logging": {"every": 5}}  # written before `reuse` existed
    check_resume_config(cfg(), saved, "d", may_change=("logging.",))
    with pytest.raises(ValueError, match=r"different config \(config.search.reuse: \(absent\) -> False\)"):
        check_resume_config(cfg(reuse=False), saved, "d", may_change=("logging.",))
    defaults = cfg(reuse=False)
    defaults.network = {"blocks": 4}  # a default section that the experiment replaced: not compared
    check_resume_config(cfg(reuse=False), saved, "d", may_change=("logging.",), defaults=defaults)
    with pytest.raises(ValueError, match=r"config.search.reuse: False -> True\); resume with the run's own"):
        check_resume_config(cfg(reuse=True), saved, "d", may_change=("logging.",), defaults=defaults)
    with pytest.raises(ValueError, match=r"config.search.n: 8 -> 9"):
        check_resume_config(cfg(n=9), saved, "d", may_change=("logging.",), defaults=defaults)


def test_resume_config_check_tells_an_empty_section_from_a_missing_one():
    assert flatten_config({"a": {"b": 1, "c": {}}, "d": 2}) == {"a.b": "1", "a.c": "{}", "d": "2"}
    saved = {"task": {"name": "x", "kwargs": {}}}
    now = ml_collections.ConfigDict({"task": {"name": "x", "kwargs": {}}})
    check_resume_config(now, saved, "d", may_change=())
    with pytest.raises(ValueError, match=r"config.task.kwargs: \{\} -> \(absent\)"):
        check_resume_config(ml_collections.ConfigDict({"task": {"name": "x"}}), saved, "d",
                            may_change=())
    with pytest.raises(ValueError, match=r"config.task.kwargs: \{\} -> \(absent\); config.task.kwargs.n: "
                                         r"\(absent\) -> 3"):
        check_resume_config(ml_collections.ConfigDict({"task": {"name": "x", "kwargs": {"n": 3}}}),
                            saved, "d", may_change=())


def test_resume_into_another_loops_run_names_the_loops():
    saved = {"loop": "rlvr", "rl": {"num_steps": 3}}
    with pytest.raises(ConfigError, match=r"written by the 'rlvr' loop, not by 'alphazero'; resume it with"):
        check_resume_config(ml_collections.ConfigDict({"loop": "alphazero", "train": {"n": 1}}), saved,
                            "d", may_change=())
    assert issubclass(ConfigError, ValueError)
