"""Test-wide JAX set-up: 8 fake CPU devices and strict rank promotion.

XLA_FLAGS must be set before jax is imported anywhere, so this module sets it at
import time, which pytest guarantees happens before the test modules load.
"""

import os
import shutil
import tempfile

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests must never reach a model or dataset hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# One persistent compilation cache per test session, shared by the xdist workers and the
# subprocesses that tests start (they inherit the environment): several tests compile the
# same smoke-config steps, and a compile found in the cache is loaded instead of rebuilt
# (the key is the program, the compile options and the jaxlib version). The session that
# made the folder removes it at the end (and the next session those of killed sessions); a
# JAX_COMPILATION_CACHE_DIR of your own is used as it is and kept. The size limit turns on
# jax's file lock between the workers.
_CACHE_PREFIX = "symbiosis_jax_test_cache_"


def _remove_orphaned_caches() -> None:
    """Removes the cache folders of test sessions that were killed (their process is gone)."""
    import glob

    for path in glob.glob(os.path.join(tempfile.gettempdir(), _CACHE_PREFIX + "*_*")):
        pid = os.path.basename(path)[len(_CACHE_PREFIX):].split("_", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive under another user
            pass


_SESSION_CACHE_DIR = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _remove_orphaned_caches()
    _SESSION_CACHE_DIR = tempfile.mkdtemp(prefix=f"{_CACHE_PREFIX}{os.getpid()}_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE_DIR
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 * 1024**3))

import jax  # noqa: E402  (must follow the XLA_FLAGS set-up)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_unconfigure(config):
    del config
    if _SESSION_CACHE_DIR is not None:
        shutil.rmtree(_SESSION_CACHE_DIR, ignore_errors=True)


@pytest.fixture
def fast_compiles(request):
    """Skips most XLA optimisations for one test (compiles about twice as fast).

    For tests that check wiring and bookkeeping, not speed or numerics that depend on
    optimisation. Every test of `FAST_COMPILE_FOLDERS` uses it; a module elsewhere opts in with
    `pytestmark = pytest.mark.usefixtures("fast_compiles")`. Tests marked `slow` or `optimized`
    keep the full optimisations.
    """
    if request.node.get_closest_marker("slow") or request.node.get_closest_marker("optimized"):
        yield
        return
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


# Folders under tests/ whose every test uses `fast_compiles`: they compare decisions,
# statistics, shapes and numbers to tolerances (float reassociation is all that optimisation
# changes), never speed. About 25-35% less time per folder on 2 cores. Their `slow` tests
# (e.g. the Gumbel parity with noise) and the modules marked `optimized` (the parity with
# transformers and TRL: the numbers users get) compile fully optimised.
FAST_COMPILE_FOLDERS = ("mcts", "networks", "games", "losses", "models", "sampling", "parallel", "training",
                        "loops", "tasks")


@pytest.fixture(autouse=True)
def _fast_compiles_by_folder(request):
    """Applies `fast_compiles` to the tests of `FAST_COMPILE_FOLDERS`."""
    folder = os.path.relpath(str(request.path), os.path.dirname(__file__)).split(os.sep)[0]
    if folder in FAST_COMPILE_FOLDERS:
        request.getfixturevalue("fast_compiles")
    yield
