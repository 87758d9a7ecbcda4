"""Logical-axis rules: model code names axes, a rules table maps them to the mesh.

Model code annotates parameters with logical axis names, e.g.
``nnx.with_partitioning(init, ("embed", "mlp"))``, and activations with
:func:`with_logical_constraint`. A rules table (pairs ``(logical, mesh_axes)``,
the same format as ``flax.nnx.logical_axis_rules``) maps each logical name to a
mesh axis, a tuple of mesh axes, or ``None`` (replicated).

Two conventions keep one table valid for every mesh:

* A mesh axis the mesh does not have is dropped (it is equivalent to size 1).
* Within one array, a mesh axis used by an earlier dimension is not used again
  (``("batch", "length", "embed")`` with ``batch -> ("data", "fsdp")`` and
  ``embed -> "fsdp"`` gives ``P(("data", "fsdp"), None, None)``).

Nothing here depends on the platform: on 8 fake CPU devices the shardings are
exactly those a GPU run gets. A logical name missing from the rules is an error,
never silently replicated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import jax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

__all__ = [
    "DEFAULT_RULES",
    "Rules",
    "logical_to_spec",
    "logical_to_sharding",
    "with_logical_constraint",
    "state_shardings",
    "create_sharded_model",
    "mesh_rules",
    "shardings_like",
    "sharded_optimizer_init",
]

MeshAxes = str | tuple[str, ...] | None
Rules = Sequence[tuple[str, MeshAxes]]

# Default table. Data parallelism shards the batch over data and fsdp; FSDP
# shards the model width of parameters; tensor parallelism shards the wide
# dimensions (MLP hidden, heads, vocabulary).
DEFAULT_RULES: tuple[tuple[str, MeshAxes], ...] = (
    ("batch", ("data", "fsdp")),
    ("group", None),
    ("length", None),
    ("kv_length", None),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("q_heads_per_kv", None),
    ("head_dim", None),
    ("vocab", "tensor"),
    ("actions", None),
    ("layers", None),
    ("norm", None),
    ("conv_in", None),
    ("conv_out", "tensor"),
    ("height", None),
    ("width", None),
    ("channels", None),
)


def _rules_dict(rules: Rules) -> dict[str, MeshAxes]:
    out = {}
    for pair in rules:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(f"rules entry {pair!r} is not a (logical_name, mesh_axes) pair.")
        out.setdefault(pair[0], pair[1])  # first match wins, as in flax
    return out


def _mesh_axis_names(mesh: Any) -> tuple[str, ...] | None:
    if mesh is None:
        return None
    return tuple(mesh.axis_names)


def logical_to_spec(
    logical_axes: Sequence[str | None],
    *,
    rules: Rules = DEFAULT_RULES,
    mesh: jax.sharding.Mesh | jax.sharding.AbstractMesh | None = None,
) -> PartitionSpec:
    """Maps a tuple of logical axis names to a ``PartitionSpec``.

    Args:
        logical_axes: one entry per array dimension: a logical name from
            ``rules`` or ``None`` (replicated).
        rules: ``(logical, mesh_axes)`` pairs; see :data:`DEFAULT_RULES`.
        mesh: when given, mesh axes that the mesh lacks are dropped.

    Returns:
        A ``PartitionSpec`` with one entry per dimension.

    Raises:
        ValueError: a logical name not in ``rules`` (the error lists them).
    """
    if isinstance(logical_axes, str):
        raise ValueError(
            f"logical_axes={logical_axes!r} must be a tuple of names, e.g. ({logical_axes!r},)."
        )
    table = _rules_dict(rules)
    present = _mesh_axis_names(mesh)
    used: set[str] = set()
    entries = []
    for name in logical_axes:
        if name is None:
            entries.append(None)
            continue
        if name not in table:
            raise ValueError(
                f"logical axis {name!r} (in {tuple(logical_axes)}) has no rule; "
                f"known logical axes: {sorted(table)}."
            )
        target = table[name]
        axes = () if target is None else ((target,) if isinstance(target, str) else tuple(target))
        keep = tuple(
            a for a in axes if a not in used and (present is None or a in present)
        )
        used.update(keep)
        if not keep:
            entries.append(None)
        elif len(keep) == 1:
            entries.append(keep[0])
        else:
            entries.append(keep)
    return PartitionSpec(*entries)


def _check_divisible(shape: Sequence[int], spec: PartitionSpec, mesh: Any, what: str) -> None:
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
    for dim, (n, entry) in enumerate(zip(shape, tuple(spec) + (None,) * len(shape))):
        if entry is None:
            continue
        axes = (entry,) if isinstance(entry, str) else tuple(entry)
        k = 1
        for a in axes:
            k *= sizes[a]
        if n % k:
            raise ValueError(
                f"{what}: dimension {dim} of shape {tuple(shape)} has size {n}, not "
                f"divisible by mesh axes {axes} of total size {k} (spec {spec}). Change "
                "the model size, the mesh sizes, or the rules."
            )


def logical_to_sharding(
    logical_axes: Sequence[str | None],
    mesh: jax.sharding.Mesh,
    *,
    rules: Rules = DEFAULT_RULES,
    shape: Sequence[int] | None = None,
) -> NamedSharding:
    """Like :func:`logical_to_spec` but returns a ``NamedSharding`` on ``mesh``.

    Args:
        logical_axes: one logical name (or ``None``) per dimension.
        mesh: the device mesh.
        rules: ``(logical, mesh_axes)`` pairs.
        shape: when given, each sharded dimension is checked to be divisible by
            the product of its mesh axis sizes.

    Returns:
        ``NamedSharding(mesh, spec)``.
    """
    spec = logical_to_spec(logical_axes, rules=rules, mesh=mesh)
    if shape is not None:
        _check_divisible(shape, spec, mesh, f"logical axes {tuple(logical_axes)}")
    return NamedSharding(mesh, spec)


def with_logical_constraint(
    x: jax.Array,
    logical_axes: Sequence[str | None],
    *,
    rules: Rules = DEFAULT_RULES,
    mesh: jax.sharding.Mesh | None = None,
) -> jax.Array:
    """Constrains an activation's sharding by logical names.

    Uses ``mesh`` if given, else the mesh set by ``jax.set_mesh`` (or
    :func:`mesh_rules`). With no mesh at all the program is unsharded and ``x`` is
    returned unchanged; this depends only on whether a mesh exists, never on the
    platform.

    Args:
        x: array with ``len(logical_axes)`` dimensions.
        logical_axes: one logical name (or ``None``) per dimension.
        rules: ``(logical, mesh_axes)`` pairs.
        mesh: optional concrete mesh.

    Returns:
        ``x`` with a sharding constraint.
    """
    if x.ndim != len(logical_axes):
        raise ValueError(
            f"logical_axes={tuple(logical_axes)} has {len(logical_axes)} entries but x has "
            f"shape {x.shape}."
        )
    if mesh is None:
        ambient = jax.sharding.get_abstract_mesh()
        if ambient.empty:
            return x
        spec = logical_to_spec(logical_axes, rules=rules, mesh=ambient)
        target, explicit = spec, ambient.are_all_axes_explicit
    else:
        spec = logical_to_spec(logical_axes, rules=rules, mesh=mesh)
        target, explicit = NamedSharding(mesh, spec), mesh.are_all_axes_explicit
    if explicit:
        # Under explicit axes the sharding is part of the type: change it, don't hint.
        return jax.sharding.reshard(x, target)
    return jax.lax.with_sharding_constraint(x, target)


def _variable_logical_axes(v: nnx.Variable) -> tuple | None:
    meta = v.get_metadata()
    axes = meta.get("out_sharding") or meta.get("sharding") or meta.get("sharding_names")
    if not axes:
        return None
    if isinstance(axes, PartitionSpec):
        axes = tuple(axes)
    return tuple(axes)


def state_shardings(
    state: Any,
    mesh: jax.sharding.Mesh,
    *,
    rules: Rules = DEFAULT_RULES,
) -> Any:
    """Builds ``NamedSharding``s for an NNX state from its logical-axis metadata.

    Each ``nnx.Variable`` annotated with ``nnx.with_partitioning(init, names)``
    (metadata ``out_sharding``) gets ``NamedSharding(mesh, logical_to_spec(names))``;
    other arrays (counters, RNG keys, unannotated variables) are replicated.

    Args:
        state: an ``nnx.State`` (concrete or abstract, e.g. from
            ``nnx.split(nnx.eval_shape(...))``), or any pytree of arrays.
        mesh: the device mesh.
        rules: ``(logical, mesh_axes)`` pairs.

    Returns:
        A pytree with the structure of ``state`` whose array leaves are
        ``NamedSharding``s; usable as ``jax.jit(..., out_shardings=...)`` and as
        ``Checkpointer.restore`` target shardings.

    Raises:
        ValueError: an unknown logical name, an annotation whose length differs
            from the array's rank, or a dimension not divisible by its mesh axes.
    """

    def one(path, x):
        if isinstance(x, nnx.Variable):
            value = x.get_value()
            axes = _variable_logical_axes(x)
            where = jax.tree_util.keystr(path)
            if axes is None:
                sharding = NamedSharding(mesh, PartitionSpec())
            else:
                shape = getattr(value, "shape", ())
                if len(axes) != len(shape):
                    raise ValueError(
                        f"{where}: logical axes {axes} do not match the shape {tuple(shape)}."
                    )
                spec = logical_to_spec(axes, rules=rules, mesh=mesh)
                _check_divisible(shape, spec, mesh, where)
                sharding = NamedSharding(mesh, spec)
            return x.replace(sharding)
        if hasattr(x, "shape"):
            return NamedSharding(mesh, PartitionSpec())
        return None

    return jax.tree_util.tree_map_with_path(
        one, state, is_leaf=lambda x: isinstance(x, nnx.Variable)
    )


@contextlib.contextmanager
def mesh_rules(mesh: jax.sharding.Mesh, rules: Rules = DEFAULT_RULES) -> Iterator[None]:
    """Sets ``mesh`` as the ambient mesh (``jax.set_mesh``) and flax's logical rules.

    Inside, :func:`with_logical_constraint` needs no ``mesh=`` argument and flax's
    own logical-axis machinery resolves names through ``rules``.
    """
    with jax.set_mesh(mesh), nnx.logical_axis_rules(tuple(rules)):
        yield


def create_sharded_model(
    model_fn: Callable[[], nnx.Module],
    mesh: jax.sharding.Mesh,
    *,
    rules: Rules = DEFAULT_RULES,
) -> nnx.Module:
    """Creates an NNX module whose parameters are born sharded.

    The module is first traced abstractly (``nnx.eval_shape``) to read its
    logical-axis annotations, then built inside ``jax.jit`` with
    ``out_shardings`` so no device ever holds an unsharded copy.

    Args:
        model_fn: zero-argument function building the module (its RNG is fixed
            inside, e.g. ``lambda: MLP(..., rngs=nnx.Rngs(0))``).
        mesh: the device mesh.
        rules: ``(logical, mesh_axes)`` pairs.

    Returns:
        The module, with every variable a ``jax.Array`` sharded per the rules.
    """
    # Our rules (with the drop-absent-axis convention) are the single source of
    # truth, so flax's eager per-variable sharding is off while building.
    with nnx.use_eager_sharding(False):
        abstract = nnx.eval_shape(model_fn)
        graphdef, abstract_state = nnx.split(abstract)
        shardings = state_shardings(abstract_state, mesh, rules=rules)

        def init():
            return nnx.split(model_fn())[1]

        with jax.set_mesh(mesh):
            state = jax.jit(init, out_shardings=shardings)()
    return nnx.merge(graphdef, state)


def shardings_like(
    tree: Any,
    params: Any,
    params_shardings: Any,
    mesh: jax.sharding.Mesh,
) -> Any:
    """Shardings for a tree holding copies of ``params`` (e.g. an optax state).

    Every subtree of ``tree`` with exactly the pytree structure of ``params``
    (Adam's ``mu`` and ``nu``, an EMA of the weights, ...) gets
    ``params_shardings``; every other array leaf (step counts, scalars) is
    replicated.

    Args:
        tree: concrete or abstract pytree (``jax.eval_shape(tx.init, params)``).
        params: the parameter pytree (concrete or abstract).
        params_shardings: shardings for ``params`` (``state_shardings(params, mesh)``).
        mesh: the device mesh.

    Returns:
        A pytree of ``NamedSharding`` with the structure of ``tree``.
    """
    params_def = jax.tree.structure(params)
    replicated = NamedSharding(mesh, PartitionSpec())

    def is_params(x):
        try:
            return jax.tree.structure(x) == params_def
        except Exception:  # pragma: no cover - exotic nodes
            return False

    def one(x):
        if is_params(x):
            return params_shardings
        return replicated if hasattr(x, "shape") else None

    return jax.tree.map(one, tree, is_leaf=is_params)


def sharded_optimizer_init(
    tx: Any,
    params: Any,
    mesh: jax.sharding.Mesh,
    *,
    params_shardings: Any = None,
    rules: Rules = DEFAULT_RULES,
) -> Any:
    """``tx.init(params)`` with moments sharded like the parameters, counts replicated.

    Args:
        tx: an ``optax.GradientTransformation``.
        params: parameter pytree, already sharded (e.g. an ``nnx.State``).
        mesh: the device mesh.
        params_shardings: shardings of ``params``; default
            ``state_shardings(params, mesh, rules=rules)``.
        rules: ``(logical, mesh_axes)`` pairs.

    Returns:
        The optimizer state, born sharded.
    """
    if params_shardings is None:
        params_shardings = state_shardings(params, mesh, rules=rules)
    abstract = jax.eval_shape(tx.init, params)
    out_sh = shardings_like(abstract, params, params_shardings, mesh)
    return jax.jit(tx.init, in_shardings=(params_shardings,), out_shardings=out_sh)(params)
