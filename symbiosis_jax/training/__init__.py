"""Shared training infrastructure: optimizer, metrics, checkpoints, registry, plots, driver.

Public names:

* ``make_optimizer(cfg)``, ``make_schedule(cfg)``, ``validate_optimizer_config(cfg)``
  (optim.py): AdamW + linear warm-up + cosine/constant + global-norm clipping.
* ``MetricsWriter(workdir, *, use_tensorboard=True, append=True, drop_after=None)`` with ``write(step, metrics)``,
  ``close()``; ``ProgressBar(total, *, keys, initial)``; ``read_jsonl(path)`` (metrics.py).
* ``Checkpointer(directory, *, max_to_keep=3)`` with ``save(step, state, metadata)``,
  ``latest_step()``, ``restore(step=None, target=None) -> (state, metadata)``, ``read_metadata(step)``;
  ``run_checkpointer(workdir, *, resume)`` (a run's checkpointer and resume step),
  ``check_workdir``, ``remove_run_outputs``, ``check_resume_config``, ``flatten_config``, ``key_to_json``/``key_from_json``
  (checkpoint.py).
* ``Registry(kind)`` with ``register(name[, obj])``, ``get(name)``, ``names()`` (registry.py).
* ``plot_metrics(jsonl_path, keys, out_png, *, title=None)`` (plots.py).
* ``make_key(seed)``, ``step_key(key, step)``, ``stream_key(key, name)`` (rng.py).
* ``run(config, workdir=None, resume=False, *, overwrite=False)``, ``register_loop``, ``get_loop``,
  ``known_loops``, ``load_config(spec, **overrides)``, ``default_workdir`` (driver.py).
* ``ConfigError``: the ``ValueError`` for bad input found before a run starts; the entry
  point prints it without a traceback (errors.py).

Heavy dependencies (orbax, tensorboardX, matplotlib) load on first use of the
names that need them.
"""

import importlib as _importlib

_EXPORTS = {
    "make_optimizer": "optim",
    "make_schedule": "optim",
    "validate_optimizer_config": "optim",
    "SCHEDULES": "optim",
    "MetricsWriter": "metrics",
    "ProgressBar": "metrics",
    "read_jsonl": "metrics",
    "to_python_scalars": "metrics",
    "Checkpointer": "checkpoint",
    "check_resume_config": "checkpoint",
    "check_workdir": "checkpoint",
    "run_checkpointer": "checkpoint",
    "remove_run_outputs": "checkpoint",
    "flatten_config": "checkpoint",
    "key_to_json": "checkpoint",
    "key_from_json": "checkpoint",
    "Registry": "registry",
    "plot_metrics": "plots",
    "make_key": "rng",
    "step_key": "rng",
    "stream_key": "rng",
    "run": "driver",
    "LOOPS": "driver",
    "register_loop": "driver",
    "get_loop": "driver",
    "known_loops": "driver",
    "load_config": "driver",
    "default_workdir": "driver",
    "config_summary": "driver",
    "ConfigError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = _importlib.import_module(f"symbiosis_jax.training.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'symbiosis_jax.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
