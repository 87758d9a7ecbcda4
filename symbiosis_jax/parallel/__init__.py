"""Meshes, logical-axis sharding rules and batch placement.

Typical use in a loop::

    from symbiosis_jax import parallel

    mesh = parallel.make_mesh(parallel.mesh_axes_from_config(config.mesh))
    model = parallel.create_sharded_model(lambda: Model(cfg, rngs=nnx.Rngs(0)), mesh)
    graphdef, state = nnx.split(model)
    state_sh = parallel.state_shardings(state, mesh)
    opt_state = parallel.sharded_optimizer_init(tx, state, mesh)
    step = jax.jit(step_fn, in_shardings=(state_sh, parallel.batch_sharding(mesh)),
                   out_shardings=(state_sh, parallel.replicated(mesh)), donate_argnums=0)
    batch = parallel.shard_batch(host_batch, mesh)

Public names:

* ``make_mesh(axes, *, devices=None, axis_types="auto")``: mesh from
  ``(("data", -1), ("fsdp", 1), ("tensor", 1))`` pairs or a mesh ConfigDict.
* ``check_auto_axis_types(mesh_cfg, *, loop)``: the training loops need ``"auto"`` axes.
* ``mesh_axes_from_config(cfg)``, ``resolve_axes(axes, num_devices)``.
* ``DEFAULT_RULES``: logical name -> mesh axes table (``batch -> ("data", "fsdp")``,
  ``embed -> "fsdp"``, ``mlp/heads/kv_heads/vocab -> "tensor"``, others ``None``).
* ``logical_to_spec(names, *, rules, mesh=None)``, ``logical_to_sharding(names, mesh, *, rules, shape=None)``.
* ``with_logical_constraint(x, names, *, rules, mesh=None)`` for activations.
* ``state_shardings(state, mesh, *, rules)``: NamedShardings for an NNX state from
  ``nnx.with_partitioning`` annotations (unannotated leaves replicated).
* ``create_sharded_model(model_fn, mesh, *, rules)``: module born sharded.
* ``shardings_like(tree, params, params_shardings, mesh)`` and
  ``sharded_optimizer_init(tx, params, mesh)``: optimizer states whose moments
  are sharded like the parameters (counts replicated).
* ``mesh_rules(mesh, rules)``: context setting ``jax.set_mesh`` and flax's rules.
* ``shard_batch(batch, mesh, *, rules, logical_axis="batch")``, ``batch_spec``,
  ``batch_sharding``, ``data_parallel_size``, ``replicated``.
"""

from symbiosis_jax.parallel.batch import batch_sharding, batch_spec, data_parallel_size, replicated, shard_batch
from symbiosis_jax.parallel.mesh import (
    AXIS_TYPES,
    MESH_AXIS_ORDER,
    check_auto_axis_types,
    make_mesh,
    mesh_axes_from_config,
    resolve_axes,
)
from symbiosis_jax.parallel.rules import (
    DEFAULT_RULES,
    Rules,
    create_sharded_model,
    logical_to_sharding,
    logical_to_spec,
    mesh_rules,
    sharded_optimizer_init,
    shardings_like,
    state_shardings,
    with_logical_constraint,
)

__all__ = [
    "AXIS_TYPES",
    "DEFAULT_RULES",
    "MESH_AXIS_ORDER",
    "Rules",
    "batch_sharding",
    "batch_spec",
    "check_auto_axis_types",
    "create_sharded_model",
    "data_parallel_size",
    "logical_to_sharding",
    "logical_to_spec",
    "make_mesh",
    "mesh_axes_from_config",
    "mesh_rules",
    "replicated",
    "resolve_axes",
    "shard_batch",
    "sharded_optimizer_init",
    "shardings_like",
    "state_shardings",
    "with_logical_constraint",
]
