"""Test-wide JAX set-up: 8 fake CPU devices and strict rank promotion.

XLA_FLAGS must be set before jax is imported anywhere, so this module sets it at
import time, which pytest guarantees happens before the test modules load.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests must never reach a model or dataset hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jax  # noqa: E402  (must follow the XLA_FLAGS set-up)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def fast_compiles(request):
    """Skips most XLA optimisations for one test (compiles about twice as fast).

    For tests that check wiring and bookkeeping, not speed or numerics that depend on
    optimisation. A module opts in with `pytestmark = pytest.mark.usefixtures("fast_compiles")`;
    tests marked `slow` keep the full optimisations.
    """
    if request.node.get_closest_marker("slow"):
        yield
        return
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


# Folders under tests/ whose every test uses `fast_compiles`: they compare decisions,
# statistics and shapes (the tree search against mctx compiled the same way), never speed
# or numerics that depend on optimisation. About 35% less time for tests/mcts on 2 cores.
# Their `slow` tests (e.g. the Gumbel parity with noise) still compile fully optimised.
FAST_COMPILE_FOLDERS = ("mcts", "networks", "games")


@pytest.fixture(autouse=True)
def _fast_compiles_by_folder(request):
    """Applies `fast_compiles` to the tests of `FAST_COMPILE_FOLDERS`."""
    folder = os.path.relpath(str(request.path), os.path.dirname(__file__)).split(os.sep)[0]
    if folder in FAST_COMPILE_FOLDERS:
        request.getfixturevalue("fast_compiles")
    yield
