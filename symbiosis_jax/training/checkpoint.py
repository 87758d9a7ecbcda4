"""Orbax checkpoints of any state pytree plus JSON metadata.

Layout under ``directory``::

    <step>/state/...        arrays (orbax StandardSave: tensorstore/OCDBT)
    <step>/metadata/...     JSON (config, data position, RNG key, ...)

Orbax writes each step into a temporary directory and renames it when complete,
so a half-written step (killed mid-save) is never listed by :meth:`latest_step`
or restored.

The state may be any pytree: an ``nnx.State`` (from ``nnx.split`` /
``nnx.state``), optax optimizer states, dicts, ``flax.struct`` dataclasses,
``NamedTuple``s, and PRNG keys (new-style typed keys and raw ``uint32`` keys).
It is stored as a nested dict of arrays keyed by the pytree paths, which keeps
checkpoints readable without the Python classes; restoring into a ``target``
rebuilds the target's structure, dtypes and shardings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from symbiosis_jax.training.errors import ConfigError

__all__ = ["CHECKPOINT_DIR", "RUN_OUTPUTS", "Checkpointer", "check_resume_config", "check_workdir",
           "flatten_config", "key_from_json", "key_to_json", "remove_run_outputs", "run_checkpointer",
           "to_jsonable"]

# A run's checkpoints live in <workdir>/CHECKPOINT_DIR; RUN_OUTPUTS are what a
# run writes into its workdir and what --overwrite removes (plots are rewritten).
CHECKPOINT_DIR = "checkpoints"
RUN_OUTPUTS = (CHECKPOINT_DIR, "metrics.jsonl", "tb", "config.json")

_TYPED_KEYS = "__typed_prng_keys__"


def _path_parts(path: tuple) -> tuple[str, ...]:
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:  # pragma: no cover - future key types
            parts.append(str(k))
    return tuple(parts)


def _is_typed_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _flatten(tree: Any) -> list[tuple[tuple[str, ...], Any]]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    seen = set()
    for path, leaf in leaves:
        parts = _path_parts(path) or ("_",)
        if parts in seen:
            raise ValueError(f"checkpoint: two leaves share the path {'/'.join(parts)}.")
        seen.add(parts)
        out.append((parts, leaf))
    return out


def _nest(items: list[tuple[tuple[str, ...], Any]]) -> dict:
    root: dict = {}
    for parts, leaf in items:
        node = root
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"checkpoint: path {'/'.join(parts)} clashes with a leaf.")
        node[parts[-1]] = leaf
    return root


def _lookup(tree: dict, parts: tuple[str, ...]) -> Any:
    node = tree
    for p in parts:
        if not isinstance(node, Mapping) or p not in node:
            raise ValueError(
                f"checkpoint has no array at {'/'.join(parts)}; the target's structure "
                "differs from the saved state."
            )
        node = node[p]
    return node


def _key_impl(x: Any) -> Any:
    """PRNG implementation of a typed key array or of its ``ShapeDtypeStruct``."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return x.dtype._impl  # the key dtype carries its implementation
    return jax.random.key_impl(x)


def key_to_json(key: jax.Array) -> dict[str, Any]:
    """A PRNG key (typed or raw uint32) as a JSON-able dict."""
    if _is_typed_key(key):
        return {
            "typed": True,
            "impl": str(jax.random.key_impl(key)),
            "data": np.asarray(jax.random.key_data(key)).tolist(),
        }
    return {"typed": False, "data": np.asarray(key).tolist(), "dtype": str(np.asarray(key).dtype)}


def key_from_json(obj: Mapping[str, Any]) -> jax.Array:
    """Inverse of :func:`key_to_json`."""
    if obj["typed"]:
        return jax.random.wrap_key_data(jnp.asarray(obj["data"], jnp.uint32), impl=obj["impl"])
    return jnp.asarray(obj["data"], dtype=obj.get("dtype", "uint32"))


def to_jsonable(x: Any) -> Any:
    """Converts configs, arrays, tuples and keys into JSON-able Python values."""
    if hasattr(x, "to_dict") and callable(x.to_dict):
        return to_jsonable(x.to_dict())
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (str, bool, int, float)) or x is None:
        return x
    if _is_typed_key(x):
        return key_to_json(x)
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        arr = np.asarray(jax.device_get(x))
        return arr.item() if arr.ndim == 0 else arr.tolist()
    raise ValueError(f"metadata value {x!r} of type {type(x).__name__} is not JSON-able.")


def flatten_config(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a.b": repr(value)}`` for every leaf of a nested mapping (a config's ``to_dict()``).

    Args:
        d: the nested mapping; every non-mapping value is a leaf, and so is an empty
            sub-mapping (``"{}"``), so that an empty section differs from a missing one.
        prefix: prepended to every key; the recursion passes the dotted path of the
            enclosing mapping (e.g. ``"a."``), so the top-level call leaves it empty.

    Returns:
        A new flat dict from dotted key to the ``repr`` of its leaf value.
    """
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, f"{prefix}{k}."))
        elif isinstance(v, Mapping):
            out[f"{prefix}{k}"] = "{}"
        else:
            out[f"{prefix}{k}"] = repr(v)
    return out


def check_resume_config(config: Any, saved: Mapping[str, Any] | None, directory: str, *,
                        may_change: Sequence[str], defaults: Any = None) -> None:
    """Raises ``ConfigError`` (a ``ValueError``) when ``config`` differs from a checkpoint's
    saved config.

    A resumed run with other settings would silently not be the run that was checkpointed.

    Args:
        config: the ConfigDict of the resuming run.
        saved: the config stored in the checkpoint's metadata (None: nothing to compare).
        directory: the checkpoint directory (for the message).
        may_change: dotted fields that may differ (run length, logging); a name ending in
            ``.`` covers a whole section, e.g. ``"logging."``.
        defaults: optional ConfigDict of the loop's defaults: a field added to the
            loop after the checkpoint was written (absent from ``saved``) counts as
            unchanged while it keeps its default.
    """
    if saved is None:
        return
    if "loop" in saved and saved["loop"] != config.get("loop"):
        raise ConfigError(
            f"--resume: the checkpoint in {directory} was written by the {saved['loop']!r} loop, not "
            f"by {config.get('loop')!r}; resume it with its own config, or use a new --workdir.")
    now = flatten_config(to_jsonable(config.to_dict()))
    before = flatten_config(saved)
    if defaults is not None:  # fields the run has now but its checkpoint predates
        for k, v in flatten_config(to_jsonable(defaults.to_dict())).items():
            if k in now and k not in before:
                before[k] = v

    def allowed(k):
        return any(k == m or (m.endswith(".") and k.startswith(m)) for m in may_change)

    diff = [f"config.{k}: {before.get(k, '(absent)')} -> {now.get(k, '(absent)')}"
            for k in sorted(set(now) | set(before)) if not allowed(k) and now.get(k) != before.get(k)]
    if diff:
        changeable = ", ".join(m + "*" if m.endswith(".") else m for m in may_change)
        raise ConfigError(
            f"--resume: the checkpoint in {directory} was written with a different config ("
            + "; ".join(diff[:8]) + (f"; {len(diff) - 8} more" if len(diff) > 8 else "")
            + f"); resume with the run's own config (only {changeable} may change) or use a new --workdir."
        )


def _checkpoint_steps(workdir: str) -> list[int]:
    """Complete checkpoint steps under ``<workdir>/checkpoints`` (creates nothing)."""
    directory = os.path.join(workdir, CHECKPOINT_DIR)
    if not os.path.isdir(directory):
        return []
    ckpt = Checkpointer(directory)
    try:
        return ckpt.all_steps()
    finally:
        ckpt.close()


def check_workdir(workdir: str | os.PathLike, *, resume: bool) -> None:
    """Raises ``ConfigError`` (a ``ValueError``) when a fresh run would write into an earlier
    run's checkpoints.

    Its checkpoint steps would collide with the earlier run's (orbax refuses to
    write a step twice, after the training it saves), and a later ``--resume``
    could pick up either run. Called before anything is built or written.
    """
    if resume:
        return
    workdir = os.fspath(workdir)
    steps = _checkpoint_steps(workdir)
    if steps:
        shown = ", ".join(map(str, steps[-5:])) + (f" (of {len(steps)})" if len(steps) > 5 else "")
        raise ConfigError(
            f"workdir={workdir!r} already holds a run's checkpoints (steps {shown}); pass --resume to "
            "continue that run, --overwrite to delete its outputs and start again, or another "
            "--workdir."
        )


def remove_run_outputs(workdir: str | os.PathLike) -> list[str]:
    """Deletes a run's outputs under ``workdir`` (``RUN_OUTPUTS``, nothing else); returns their names."""
    import shutil

    removed = []
    for name in RUN_OUTPUTS:
        path = os.path.join(os.fspath(workdir), name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed.append(name)
    return removed


def run_checkpointer(workdir: str | os.PathLike, *, resume: bool, max_to_keep: int | None = 3
                     ) -> tuple["Checkpointer", int | None]:
    """A training run's ``Checkpointer`` (``<workdir>/checkpoints``) and the step to resume from.

    Args:
        workdir: the run's output directory.
        resume: continue from the latest checkpoint; without one the run starts
            fresh (and says so), so a job can always be launched with ``resume``.
        max_to_keep: passed to ``Checkpointer``.

    Returns:
        ``(checkpointer, step)``, step None for a fresh start.

    Raises:
        ValueError: ``resume`` is False and the workdir holds checkpoints (``check_workdir``).
    """
    check_workdir(workdir, resume=resume)
    ckpt = Checkpointer(os.path.join(os.fspath(workdir), CHECKPOINT_DIR), max_to_keep=max_to_keep)
    latest = ckpt.latest_step() if resume else None
    if resume and latest is None and jax.process_index() == 0:
        print(f"[symbiosis_jax] --resume: no checkpoint in {ckpt.directory}; starting fresh", flush=True)
    return ckpt, latest


class Checkpointer:
    """Saves and restores ``(state pytree, metadata dict)`` per step with orbax.

    Args:
        directory: checkpoint root (created if missing); absolute or relative.
        max_to_keep: number of most recent steps kept (older ones deleted).
        async_save: write arrays in a background thread; :meth:`save` returns once
            the arrays are copied off the device. :meth:`wait` / :meth:`close`
            block until the write is on disk.
    """

    def __init__(
        self, directory: str | os.PathLike, *, max_to_keep: int = 3, async_save: bool = False
    ):
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"max_to_keep={max_to_keep!r} must be >= 1 or None (keep all).")
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=True,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
        )
        # Handlers are given up front so a fresh process (resume) can read
        # metadata before it has saved or restored anything.
        self._manager = ocp.CheckpointManager(
            self.directory,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "metadata": ocp.JsonCheckpointHandler(),
            },
            options=options,
        )

    def save(
        self,
        step: int,
        state: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        force: bool = True,
    ) -> bool:
        """Saves ``state`` and ``metadata`` as step ``step``.

        Args:
            step: training step (int >= 0).
            state: pytree of arrays (NNX state, optax state, PRNG keys, ...).
            metadata: JSON-able dict (ConfigDicts, tuples, numpy/jax scalars and
                PRNG keys are converted, see :func:`to_jsonable`).
            force: save even if orbax's save policy would skip this step.

        Returns:
            True if a checkpoint was written.
        """
        flat = _flatten(state)
        typed = {}
        arrays = []
        for parts, leaf in flat:
            if _is_typed_key(leaf):
                typed["/".join(parts)] = str(jax.random.key_impl(leaf))
                leaf = jax.random.key_data(leaf)
            elif not hasattr(leaf, "shape"):
                leaf = np.asarray(leaf)
            arrays.append((parts, leaf))
        meta = to_jsonable(dict(metadata or {}))
        if _TYPED_KEYS in meta:
            raise ValueError(f"metadata key {_TYPED_KEYS!r} is reserved.")
        meta[_TYPED_KEYS] = typed
        return self._manager.save(
            int(step),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_nest(arrays)),
                metadata=ocp.args.JsonSave(meta),
            ),
            force=force,
        )

    def latest_step(self) -> int | None:
        """Most recent complete step, or None if there is none."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """All complete steps, ascending."""
        return sorted(self._manager.all_steps())

    def read_metadata(self, step: int | None = None) -> dict[str, Any]:
        """The metadata saved with ``step`` (None: :meth:`latest_step`), without the state."""
        step = self.latest_step() if step is None else step
        if step is None or step not in self._manager.all_steps():
            raise FileNotFoundError(f"step {step} not found under {self.directory}; have {self.all_steps()}.")
        meta = self._manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore()))["metadata"]
        meta = dict(meta)
        meta.pop(_TYPED_KEYS, None)
        return meta

    def restore(self, step: int | None = None, target: Any = None) -> tuple[Any, dict[str, Any]]:
        """Restores ``(state, metadata)``.

        Args:
            step: step to restore; None means :meth:`latest_step`.
            target: optional pytree with the structure of the saved state whose
                leaves are arrays or ``jax.ShapeDtypeStruct``s (e.g. from
                ``jax.eval_shape`` or ``nnx.eval_shape``); their ``sharding`` (if
                any) is used for the restored arrays, their dtype too. Typed PRNG
                keys in the target come back as typed keys. Without ``target`` the
                state comes back as a nested dict of arrays keyed by pytree path.

        Returns:
            ``(state, metadata)``.

        Raises:
            FileNotFoundError: no checkpoint (or not ``step``) under the directory.
            ValueError: ``target``'s structure or shapes differ from the checkpoint.
        """
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"no complete checkpoint under {self.directory}.")
        if step not in self._manager.all_steps():
            raise FileNotFoundError(
                f"step {step} not found under {self.directory}; have {self.all_steps()}."
            )
        meta = self._manager.restore(
            step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())
        )["metadata"]
        meta = dict(meta)
        typed = meta.pop(_TYPED_KEYS, {})
        if target is None:
            raw = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
            )["state"]
            items = _flatten(raw)
            out = []
            for parts, leaf in items:
                impl = typed.get("/".join(parts))
                out.append((parts, jax.random.wrap_key_data(leaf, impl=impl) if impl else leaf))
            return _nest(out), meta

        leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
        abstract = []
        kinds = []
        for path, leaf in leaves:
            parts = _path_parts(path) or ("_",)
            sharding = getattr(leaf, "sharding", None)
            if _is_typed_key(leaf):
                impl = _key_impl(leaf)
                data_shape = jax.eval_shape(
                    lambda k: jax.random.key_data(k), jax.ShapeDtypeStruct(leaf.shape, leaf.dtype)
                )
                key_sharding = None
                if sharding is not None:
                    # key data has a trailing dimension; replicate it
                    spec = getattr(sharding, "spec", None)
                    if spec is not None:
                        key_sharding = jax.sharding.NamedSharding(
                            sharding.mesh, jax.sharding.PartitionSpec(*spec, None)
                        )
                abstract.append(
                    (parts, jax.ShapeDtypeStruct(data_shape.shape, data_shape.dtype, sharding=key_sharding))
                )
                kinds.append(("key", impl, sharding))
            else:
                shape = np.shape(leaf)
                dtype = getattr(leaf, "dtype", None) or np.asarray(leaf).dtype
                if not isinstance(sharding, jax.sharding.Sharding):
                    sharding = None
                abstract.append((parts, jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)))
                kinds.append(("array", None, sharding))
        saved = self._manager.item_metadata(step)["state"]
        saved = getattr(saved, "tree", saved)
        for parts, sds in abstract:
            m = _lookup(saved, parts)
            if tuple(m.shape) != tuple(sds.shape):
                raise ValueError(
                    f"checkpoint array {'/'.join(parts)} has shape {tuple(m.shape)} but the "
                    f"target has {tuple(sds.shape)}."
                )
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(_nest(abstract))),
        )["state"]
        out = []
        for (parts, _), (kind, impl, sharding) in zip(abstract, kinds):
            x = _lookup(restored, parts)
            if kind == "key":
                x = jax.random.wrap_key_data(x, impl=impl)
                if sharding is not None:
                    x = jax.device_put(x, sharding)
            out.append(x)
        return jax.tree_util.tree_unflatten(treedef, out), meta

    def wait(self) -> None:
        """Blocks until any background save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases orbax resources."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
