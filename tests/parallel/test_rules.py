"""Logical-axis rules, NNX state shardings and activation constraints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from symbiosis_jax import parallel


@pytest.fixture(scope="module")
def mesh():
    return parallel.make_mesh((("data", 2), ("fsdp", 2), ("tensor", 2)))


def test_default_rules(mesh):
    assert parallel.logical_to_spec(("embed", "mlp")) == P("fsdp", "tensor")
    assert parallel.logical_to_spec(("vocab", "embed")) == P("tensor", "fsdp")
    assert parallel.logical_to_spec(("embed", "heads", "head_dim")) == P("fsdp", "tensor", None)
    assert parallel.logical_to_spec(("batch", None)) == P(("data", "fsdp"), None)


def test_mesh_axis_used_once_per_array():
    # batch takes fsdp first, so embed cannot use it again.
    assert parallel.logical_to_spec(("batch", "length", "embed")) == P(("data", "fsdp"), None, None)
    assert parallel.logical_to_spec(("heads", "kv_heads")) == P("tensor", None)


def test_axes_missing_from_mesh_are_dropped():
    mesh = parallel.make_mesh((("data", -1),))
    assert parallel.logical_to_spec(("batch", "embed", "mlp"), mesh=mesh) == P("data", None, None)


def test_custom_rules():
    rules = (("batch", "data"), ("embed", None), ("mlp", ("fsdp", "tensor")))
    assert parallel.logical_to_spec(("batch", "embed", "mlp"), rules=rules) == P(
        "data", None, ("fsdp", "tensor")
    )


def test_unknown_logical_name_lists_known():
    with pytest.raises(ValueError, match=r"logical axis 'hidden'.*known logical axes: \['actions', 'batch'"):
        parallel.logical_to_spec(("batch", "hidden"))
    with pytest.raises(ValueError, match=r"must be a tuple of names"):
        parallel.logical_to_spec("batch")


def test_logical_to_sharding_checks_divisibility(mesh):
    sh = parallel.logical_to_sharding(("embed", "mlp"), mesh, shape=(4, 6))
    assert sh.spec == P("fsdp", "tensor")
    with pytest.raises(ValueError, match=r"dimension 1 of shape \(4, 5\) has size 5, not divisible"):
        parallel.logical_to_sharding(("embed", "mlp"), mesh, shape=(4, 5))


class _Block(nnx.Module):
    def __init__(self, d, f, *, rngs):
        kinit = nnx.initializers.lecun_normal()
        self.up = nnx.Linear(
            d, f,
            kernel_init=nnx.with_partitioning(kinit, ("embed", "mlp")),
            bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("mlp",)),
            rngs=rngs,
        )
        self.down = nnx.Linear(f, d, kernel_init=nnx.with_partitioning(kinit, ("mlp", "embed")), rngs=rngs)
        self.steps = nnx.Variable(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        return self.down(jax.nn.relu(self.up(x)))


def test_state_shardings_from_nnx_metadata(mesh):
    with nnx.use_eager_sharding(False):
        abstract = nnx.eval_shape(lambda: _Block(4, 8, rngs=nnx.Rngs(0)))
    _, state = nnx.split(abstract)
    sh = parallel.state_shardings(state, mesh)
    assert sh["up"]["kernel"].get_value().spec == P("fsdp", "tensor")
    assert sh["up"]["bias"].get_value().spec == P("tensor")
    assert sh["down"]["kernel"].get_value().spec == P("tensor", "fsdp")
    assert sh["down"]["bias"].get_value().spec == P()  # not annotated -> replicated
    assert sh["steps"].get_value().spec == P()


def test_state_shardings_rejects_indivisible(mesh):
    with nnx.use_eager_sharding(False):
        abstract = nnx.eval_shape(lambda: _Block(4, 5, rngs=nnx.Rngs(0)))
    _, state = nnx.split(abstract)
    with pytest.raises(ValueError, match=r"\['(up|down)'\]\['(bias|kernel)'\].*size 5, not divisible by mesh axes \('tensor',\)"):
        parallel.state_shardings(state, mesh)


def test_create_sharded_model_equals_plain_init(mesh):
    model = parallel.create_sharded_model(lambda: _Block(4, 8, rngs=nnx.Rngs(3)), mesh)
    with nnx.use_eager_sharding(False):
        plain = _Block(4, 8, rngs=nnx.Rngs(3))
    k = model.up.kernel[...]
    assert k.sharding.spec == P("fsdp", "tensor")
    assert {s.data.shape for s in k.addressable_shards} == {(2, 4)}
    # Same values as a plain single-device init, for every variable.
    got, want = nnx.state(model), nnx.state(plain)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_with_logical_constraint_inside_jit(mesh):
    x = jnp.arange(8 * 4 * 6, dtype=jnp.float32).reshape(8, 4, 6)

    @jax.jit
    def f(x):
        return parallel.with_logical_constraint(x * 2.0, ("batch", "length", "mlp"), mesh=mesh)

    y = f(x)
    assert y.sharding.spec == P(("data", "fsdp"), None, "tensor")
    assert {s.data.shape for s in y.addressable_shards} == {(2, 4, 3)}
    np.testing.assert_array_equal(np.asarray(y), 2.0 * np.asarray(x))  # values kept, only laid out
    for s in y.addressable_shards:
        np.testing.assert_array_equal(np.asarray(s.data), 2.0 * np.asarray(x)[s.index])
    with parallel.mesh_rules(mesh):
        z = jax.jit(lambda x: parallel.with_logical_constraint(x + 1.0, ("batch", None, None)))(x)
    assert z.sharding.spec[0] == ("data", "fsdp")
    np.testing.assert_array_equal(np.asarray(z), np.asarray(x) + 1.0)
    # No mesh anywhere: an unsharded program, x comes back as is.
    np.testing.assert_array_equal(np.asarray(parallel.with_logical_constraint(x, ("batch", None, None))),
                                  np.asarray(x))
    with pytest.raises(ValueError, match=r"has 2 entries but x has shape \(8, 4, 6\)"):
        parallel.with_logical_constraint(x, ("batch", None), mesh=mesh)


def test_sharded_optimizer_init(mesh):
    import optax

    model = parallel.create_sharded_model(lambda: _Block(4, 8, rngs=nnx.Rngs(0)), mesh)
    state = nnx.state(model, nnx.Param)
    opt = parallel.sharded_optimizer_init(optax.adam(1e-3), state, mesh)
    assert opt[0].mu["up"]["kernel"][...].sharding.spec == P("fsdp", "tensor")
    assert opt[0].nu["down"]["kernel"][...].sharding.spec == P("tensor", "fsdp")
    assert opt[0].count.sharding.spec == P()
    assert float(jnp.sum(jnp.abs(opt[0].mu["up"]["kernel"][...]))) == 0.0


def test_with_logical_constraint_explicit_mesh():
    mesh = parallel.make_mesh((("data", 4), ("tensor", 2)), axis_types="explicit")
    x = jnp.arange(8 * 6, dtype=jnp.float32).reshape(8, 6)
    with jax.set_mesh(mesh):
        y = jax.jit(lambda x: parallel.with_logical_constraint(x, ("batch", "mlp")))(x)
    assert y.sharding.spec == P("data", "tensor")
    assert {s.data.shape for s in y.addressable_shards} == {(2, 3)}
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
