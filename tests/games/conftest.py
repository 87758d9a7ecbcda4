"""Tests of the game helpers (solver, mirror augmentation) compile with most XLA optimisations off (`fast_compiles`):
they check shapes, values and fitting, not speed; `slow` tests keep the full optimisations."""

import pytest


@pytest.fixture(autouse=True)
def _fast_compiles(fast_compiles):
    """Opts every test of this folder into `fast_compiles` (tests/conftest.py)."""
    yield
