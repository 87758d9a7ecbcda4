"""The importable driver behind ``experiments/train.py``.

``run(config, workdir=None, resume=False)`` looks up the loop named by
``config.loop`` and calls its ``train(config, *, workdir, resume)``. Loops are
found in two ways:

1. the ``LOOPS`` registry (``register_loop(name, train_fn)``; tests and
   notebooks register small loops here);
2. a module ``symbiosis_jax.loops.<name>`` exposing ``train`` (``rlvr``,
   ``alphazero``, ...), imported on first use.

An unknown name raises ``ValueError`` listing both. Notebooks use
``load_config("configs/NAME.py:variant", **overrides)`` and ``run`` directly.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import sys
from collections.abc import Mapping
from typing import Any, Callable

import ml_collections

from symbiosis_jax.training.errors import ConfigError
from symbiosis_jax.training.registry import Registry

__all__ = [
    "LOOPS",
    "register_loop",
    "known_loops",
    "get_loop",
    "load_config",
    "config_summary",
    "default_workdir",
    "run",
]

LOOPS = Registry("loop")

TrainFn = Callable[..., dict]


def register_loop(name: str, train_fn: TrainFn | None = None, *, overwrite: bool = False) -> Any:
    """Registers ``train_fn(config, *, workdir, resume=False) -> dict`` as loop ``name``.

    Without ``train_fn`` returns a decorator.

    Args:
        name: the loop name (what ``config.loop`` holds); a non-empty string. A registered
            loop takes precedence over a module ``symbiosis_jax.loops.<name>``.
        train_fn: the loop's train function; None to get a decorator that registers the
            function it decorates.
        overwrite: replace a different function already registered as ``name`` instead of
            raising (registering the same function again is always allowed).

    Returns:
        ``train_fn``, or the decorator when ``train_fn`` is None.

    Raises:
        ValueError: ``name`` is not a non-empty string, or is already registered to another
            function and ``overwrite`` is False.
    """
    return LOOPS.register(name, train_fn, overwrite=overwrite)


def _loop_modules() -> list[str]:
    """Modules of ``symbiosis_jax/loops/`` defining a top-level ``train`` (read, not imported)."""
    import symbiosis_jax.loops as loops_pkg

    names = []
    for m in pkgutil.iter_modules(loops_pkg.__path__):
        if m.name.startswith("_") or m.ispkg:
            continue
        path = os.path.join(m.module_finder.path, m.name + ".py")
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except OSError:
            continue
        if re.search(r"^def train\(", source, flags=re.MULTILINE):
            names.append(m.name)
    return sorted(names)


def known_loops() -> list[str]:
    """Registered loop names plus loop modules in ``symbiosis_jax/loops/``."""
    return sorted(set(LOOPS.names()) | set(_loop_modules()))


def get_loop(name: str) -> TrainFn:
    """Returns the ``train`` function of loop ``name``.

    Raises:
        ValueError: unknown name (the message lists the known loops), or a loop
            module without a ``train`` function.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"config.loop={name!r} must name a loop; known loops: {known_loops()}.")
    if name in LOOPS:
        return LOOPS.get(name)
    if name in _loop_modules():
        module = importlib.import_module(f"symbiosis_jax.loops.{name}")
        train = getattr(module, "train", None)
        if not callable(train):
            raise ValueError(
                f"loop module symbiosis_jax.loops.{name} has no train(config, *, workdir, "
                "resume=False) function."
            )
        return train
    raise ValueError(f"config.loop={name!r} is not a known loop; known loops: {known_loops()}.")


def resolve_dotted(config: ml_collections.ConfigDict, dotted: str, *, label: str) -> tuple[Any, str]:
    """The node that holds the last field of ``dotted`` (``"search.num_simulations"``) and its name.

    Raises:
        ValueError: naming ``label``, the missing field, the fields that exist and the
            closest one, e.g. ``"--config.search.num_simulatons: search has no field
            'num_simulatons'; fields: [...]. Did you mean 'num_simulations'?"``.
    """
    parts = dotted.split(".")
    node = config
    for i, part in enumerate(parts):
        if not hasattr(node, "keys") or part not in node:
            where = ".".join(parts[:i]) or "config"
            fields = sorted(node.keys()) if hasattr(node, "keys") else []
            close = difflib.get_close_matches(part, fields, n=1, cutoff=0.75)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{label}: {where} has no field {part!r}; fields: {fields}.{hint}")
        if i < len(parts) - 1:
            node = node[part]
    return node, parts[-1]


def _set_dotted(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
    node, field = resolve_dotted(config, dotted, label=f"override {dotted!r}")
    node[field] = value


def _make_configs_importable(path: str) -> None:
    """Puts the folder above a ``configs/`` package on ``sys.path`` (configs import ``configs.X``).

    Only for a file inside a folder named ``configs`` that holds ``common.py`` (this repository's
    layout), so ``load_config`` works from any working directory.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder) == "configs" and os.path.exists(os.path.join(folder, "common.py")):
        root = os.path.dirname(folder)
        if root not in sys.path:
            sys.path.insert(0, root)


def load_config(spec: str, **overrides: Any) -> ml_collections.ConfigDict:
    """Loads ``get_config(arg)`` from ``"path/to/config.py[:arg]"`` and applies overrides.

    Args:
        spec: config file path, optionally followed by ``:arg`` (the variant, e.g.
            ``smoke``), as on the command line.
        **overrides: dotted field -> value, e.g. ``**{"optimizer.learning_rate": 1e-4}``.

    Returns:
        The ConfigDict (the field ``config_spec`` is not added; see
        :func:`default_workdir` for naming).
    """
    path, _, arg = spec.partition(":")
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file {path!r} does not exist.")
    _make_configs_importable(path)
    module_name = "_symbiosis_config_" + os.path.splitext(os.path.basename(path))[0]
    mod_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except ModuleNotFoundError as e:
        if e.name != "configs":
            raise
        raise ModuleNotFoundError(
            f"config file {path!r} imports the package 'configs' (e.g. `from configs import "
            "common`), which is not importable: put the folder that holds configs/ (the "
            "repository root) on sys.path, or keep the file inside that configs/ folder.",
            name=e.name) from e
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path!r} has no get_config(arg=None) function.")
    config = module.get_config(arg) if arg else module.get_config()
    for k, v in overrides.items():
        _set_dotted(config, k, v)
    return config


def default_workdir(config_spec: str | None, config: Mapping | None = None) -> str:
    """``runs/<config name>[-<variant>]`` from ``"configs/NAME.py[:variant]"``.

    Falls back to ``config.name`` and then to ``runs/run``.
    """
    if config_spec:
        path, _, arg = config_spec.partition(":")
        name = os.path.splitext(os.path.basename(path))[0]
        if arg:
            name += "-" + arg.replace("/", "_").replace(",", "_").replace("=", "_")
        return os.path.join("runs", name)
    if config is not None and config.get("name"):
        return os.path.join("runs", str(config.get("name")))
    return os.path.join("runs", "run")


def is_smoke_spec(config_spec: str | None) -> bool:
    """Whether ``"configs/NAME.py:smoke"`` names a config's ``smoke`` variant."""
    return bool(config_spec) and config_spec.partition(":")[2] == "smoke"


def _flatten(d: Mapping, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k in sorted(d):
        v = d[k]
        if isinstance(v, Mapping):
            out.extend(_flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def config_summary(config: ml_collections.ConfigDict, *, max_lines: int = 200) -> str:
    """Short ``field = value`` listing of a config (nested fields dotted).

    Args:
        config: the config (a ConfigDict, or any mapping); fields are listed sorted by name.
        max_lines: the most fields listed; any further ones are replaced by one
            ``... (N more fields)`` line.

    Returns:
        The listing, one indented ``field = repr(value)`` per line.
    """
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    lines = [f"  {k} = {v!r}" for k, v in _flatten(d)]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... ({len(lines) - max_lines} more fields)"]
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return repr(x)


def _check_mesh(config: ml_collections.ConfigDict, module: Any) -> None:
    """Builds ``config.mesh`` over the devices (cheap) and runs the loop module's ``check_mesh``.

    A mesh that does not fit the devices, or a batch the data axes do not divide, is then an
    error before ``--overwrite`` deletes anything or a workdir is made.
    """
    if config.get("mesh") is None:
        return
    from symbiosis_jax import parallel

    try:
        mesh = parallel.make_mesh(config.mesh)  # its axes and axis_types
    except ValueError as e:
        raise ValueError(f"config.mesh: {e}") from None
    check = getattr(module, "check_mesh", None)
    if callable(check):
        check(config, mesh)


def _wait_for_all_processes(name: str) -> None:
    """A barrier across JAX processes (nothing with one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _checked_run_inputs(config: ml_collections.ConfigDict, workdir: str | os.PathLike | None,
                        resume: bool, overwrite: bool | str,
                        config_spec: str | None) -> tuple[TrainFn, str, bool | str]:
    """``run``'s checks, before anything is printed, built or written.

    Returns ``(train, workdir, overwrite)``: the loop, the resolved workdir, and
    ``overwrite`` (a reason string when a smoke run starts its default workdir again).
    """
    if "loop" not in config:
        raise ValueError(f"config has no 'loop' field; set config.loop to one of {known_loops()}.")
    if resume and overwrite:
        raise ValueError(
            "resume=True and overwrite=True exclude each other: --resume continues the run in the "
            "workdir, --overwrite deletes it and starts again."
        )
    train = get_loop(config.loop)  # fails fast, before anything compiles
    # A loop module's own checks run before config.json is written, so a bad config leaves no
    # workdir behind (and a bad --resume config does not overwrite the run's config.json).
    module = sys.modules.get(getattr(train, "__module__", None) or "")
    validate = getattr(module, "validate_config", None)
    if callable(validate):
        validate(config)
    _check_mesh(config, module)
    if workdir is None:
        workdir = default_workdir(config_spec, config)
        if not resume and is_smoke_spec(config_spec):
            # A smoke run is a seconds-long check, run again and again: its default workdir
            # (runs/<config>-smoke) holds nothing worth keeping, so it starts again each time.
            overwrite = "smoke variant"
    workdir = os.fspath(workdir)
    if not workdir:
        raise ValueError("workdir='' is empty; pass --workdir=<a folder>, or leave it out for runs/<config>.")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(
            f"workdir={workdir!r} is a file, not a directory; pass --workdir=<a new or existing folder>."
        )
    return train, workdir, overwrite


def run(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike | None = None,
    resume: bool = False,
    *,
    overwrite: bool = False,
    config_spec: str | None = None,
    verbose: bool = True,
) -> dict:
    """Runs the loop named by ``config.loop``.

    Args:
        config: the experiment ConfigDict; must have a ``loop`` field.
        workdir: output directory; default ``runs/<config name>[-<variant>]``
            (from ``config_spec``, else ``config.name``).
        resume: continue from the latest checkpoint in ``workdir``.
        overwrite: delete the outputs of an earlier run in ``workdir`` (its
            checkpoints, metrics, TensorBoard events and config.json) and start
            again. Without it (or ``resume``) a workdir that holds checkpoints is
            an error, raised before anything is built. A ``smoke`` variant run
            into its default workdir (no ``workdir``, no ``resume``) always
            starts again.
        config_spec: ``"configs/NAME.py[:variant]"`` the config came from (for
            the default workdir and the summary).
        verbose: print the config summary.

    Returns:
        Whatever the loop's ``train`` returns (a dict of final metrics).
    """
    try:
        train, workdir, overwrite = _checked_run_inputs(config, workdir, resume, overwrite, config_spec)
    except ValueError as e:  # the loops' validators raise plain ValueErrors
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e
    if verbose:
        import jax

        print(
            f"[symbiosis_jax] loop={config.loop} config={config_spec or '(object)'} "
            f"workdir={workdir} resume={resume} devices={jax.device_count()} "
            f"({jax.devices()[0].platform}) processes={jax.process_count()}"
        )
        print(config_summary(config), flush=True)
    try:
        import jax

        is_main = jax.process_index() == 0
    except Exception:  # pragma: no cover
        is_main = True
    from symbiosis_jax.training import checkpoint

    if overwrite:
        removed = checkpoint.remove_run_outputs(workdir) if is_main else []
        if removed:
            why = overwrite if isinstance(overwrite, str) else "--overwrite"
            print(f"[symbiosis_jax] {why}: removed {', '.join(removed)} from {workdir}", flush=True)
        _wait_for_all_processes("symbiosis_jax --overwrite")  # the others must not see the old run
    else:
        checkpoint.check_workdir(workdir, resume=resume)  # a ConfigError
    path = os.path.join(workdir, "config.json")

    def write_config():
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_jsonable(config.to_dict()), f, indent=1, sort_keys=True)

    # A resumed run keeps its config.json until the loop has run: a loop that rejects the
    # new config (a changed field) must not leave the run's record overwritten.
    deferred = resume and os.path.exists(path)
    if is_main:
        os.makedirs(workdir, exist_ok=True)
        if not deferred:
            write_config()
    result = train(config, workdir=workdir, resume=resume)
    if is_main and deferred:
        write_config()
    return result
