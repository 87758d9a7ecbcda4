r"""The one entry point: flags and config, optional jax.distributed, then the driver.

    python experiments/train.py --config=configs/NAME.py[:variant] \
        [--config.field=value ...] [--workdir=DIR] [--resume | --overwrite] \
        [--jax_distributed] [--malloc=keep|default]

With no ``--config`` it runs ``configs/grpo_arithmetic.py``. ``config.loop``
picks the loop (``symbiosis_jax/loops/<loop>.py``); the default workdir is
``runs/<config name>[-<variant>]``; a workdir that holds an earlier run's
checkpoints needs ``--resume`` (continue it) or ``--overwrite`` (start again). All logic lives in
``symbiosis_jax.training.driver`` so tests and notebooks call it directly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join("configs", "grpo_arithmetic.py")
# Config files import ``configs.common`` and the package; both live at the repo
# root, which is not on sys.path when this file is run as a script.
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def _default_config_path() -> str | None:
    for base in (os.getcwd(), _REPO):
        path = os.path.join(base, DEFAULT_CONFIG)
        if os.path.exists(path):
            return os.path.relpath(path) if base == os.getcwd() else path
    return None


def define_flags(flag_values: flags.FlagValues, argv: Sequence[str] | None = None) -> None:
    """Defines --config, --workdir, --resume, --overwrite, --jax_distributed and --malloc on ``flag_values``.

    ``argv`` (default ``sys.argv``) is scanned for ``--config.a.b=v`` overrides,
    which ml_collections registers as flags at definition time.
    """
    config_flags.DEFINE_config_file(
        "config",
        default=_default_config_path(),
        help_string="config file, path/to/config.py[:variant]; fields overridable as --config.a.b=v",
        flag_values=flag_values,
        sys_argv=list(argv) if argv is not None else None,
    )
    flags.DEFINE_string(
        "workdir", None, "output directory (default runs/<config>[-<variant>])", flag_values=flag_values
    )
    flags.DEFINE_bool("resume", False, "resume from the latest checkpoint in workdir", flag_values=flag_values)
    flags.DEFINE_bool(
        "overwrite",
        False,
        "delete an earlier run's outputs in workdir (checkpoints, metrics, TensorBoard events,"
        " config.json) and start again; without it a workdir with checkpoints needs --resume",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "jax_distributed",
        False,
        "call jax.distributed.initialize() first (multi-process / multi-host runs)",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "malloc",
        "keep",
        ["keep", "default"],
        "keep: glibc keeps freed heap memory, so a jitted step whose XLA temporaries exceed 32 MiB"
        " does not page-fault them again every call (symbiosis_jax.training.allocator);"
        " default: glibc's own settings. Applied by the command line only (not by"
        " main_from_argv, which tests call in their own process)",
        flag_values=flag_values,
    )


def check_overrides(argv: Sequence[str]) -> None:
    """Checks ``--config`` is given at most once, its file exists and loads, and every
    ``--config.a.b=v`` names a field.

    Runs before absl parses (which would keep the last of several ``--config`` silently).

    ml_collections reports a missing field as a bare ``KeyError`` deep in flag
    parsing; this gives ``ValueError`` naming the flag and the fields that exist.
    """
    spec = _default_config_path()
    dotted, specs = [], []
    args = list(argv[1:])
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            spec = arg.split("=", 1)[1]
            specs.append(spec)
        elif arg == "--config" and i + 1 < len(args):
            spec = args[i + 1]
            specs.append(spec)
        elif arg.startswith("--config."):
            dotted.append(arg[len("--config.") :].split("=", 1)[0])
    if len(specs) > 1:
        # absl would keep the last silently; a shell brace (configs/{a,b}.py) expands to several.
        raise ValueError(
            f"--config given {len(specs)} times ({', '.join(specs)}); one run takes one config:"
            " run them one after another (e.g. a shell for loop)."
        )
    if spec is None or not (specs or dotted):
        return
    path = spec.partition(":")[0]
    if not os.path.exists(path):
        # absl would report "Configuration is not available because of an earlier failure".
        raise ValueError(f"--config={spec}: the config file {path!r} does not exist.")
    from symbiosis_jax.training import driver

    # Loading here surfaces get_config's own errors (an unknown variant, no get_config) as they
    # are, instead of inside absl's flag-parsing traceback.
    config = driver.load_config(spec)
    for path in dotted:
        driver.resolve_dotted(config, path, label=f"--config.{path}")


def run_from_flags(flag_values: flags.FlagValues) -> dict:
    """Runs the driver with parsed ``flag_values``; returns the loop's result dict."""
    if flag_values.jax_distributed:
        import jax

        from symbiosis_jax.training import ConfigError

        try:
            jax.distributed.initialize()
        except ValueError as e:  # jax found no cluster to join
            raise ConfigError(
                f"--jax_distributed: jax.distributed.initialize() found no cluster to join "
                f"({str(e).rstrip('.')}). "
                "It detects Cloud TPU pods, SLURM, Open MPI and the other cluster environments jax "
                "supports; on one machine leave the flag off."
            ) from e
    config = flag_values.config
    if config is None:
        raise app.UsageError(
            f"no --config given and the default config {DEFAULT_CONFIG} does not exist yet; "
            "pass --config=configs/NAME.py[:variant]."
        )
    spec = config_flags.get_config_filename(flag_values["config"])
    from symbiosis_jax.training import driver

    return driver.run(
        config, workdir=flag_values.workdir, resume=flag_values.resume,
        overwrite=flag_values.overwrite, config_spec=spec,
    )


def parse_argv(argv: Sequence[str]) -> flags.FlagValues:
    """Parses ``argv`` (``argv[0]`` is the program name) into fresh flags, as the command line does.

    ``flag_values.config`` is then the config with every ``--config.a.b=v`` applied (values typed
    by ml_collections from the existing fields). Raises ``ValueError`` for an unknown field.
    """
    check_overrides(argv)
    flag_values = flags.FlagValues()
    define_flags(flag_values, argv)
    rest = flag_values(list(argv))
    if len(rest) > 1:
        raise app.UsageError(f"unexpected arguments {rest[1:]}")
    return flag_values


def main_from_argv(argv: Sequence[str]) -> dict:
    """Parses ``argv`` (``argv[0]`` is the program name) into fresh flags and runs.

    Tests and scripts use this instead of a subprocess.
    """
    return run_from_flags(parse_argv(argv))


def _main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {list(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        # orbax logs every save step at INFO; keep the console to the loop's own output.
        from absl import logging

        logging.set_verbosity(logging.WARNING)
    from symbiosis_jax.training import allocator

    allocator.apply(flags.FLAGS.malloc)
    from symbiosis_jax.training import ConfigError

    try:
        result = run_from_flags(flags.FLAGS)
    except ConfigError as e:  # bad input found before the run: the message says what to change
        sys.exit(f"error: {e}")
    if result:
        shown = (f"{k}={result[k]:.4g}" if isinstance(result[k], float) else f"{k}={result[k]}"
                 for k in sorted(result))
        print("[symbiosis_jax] final:", ", ".join(shown))


if __name__ == "__main__":
    try:
        check_overrides(sys.argv)
    except ValueError as e:
        sys.exit(f"error: {e}")
    define_flags(flags.FLAGS)
    app.run(_main, argv=sys.argv)
