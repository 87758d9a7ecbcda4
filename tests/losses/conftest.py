"""Fixtures for the loss tests: float64 mode and a finite-difference gradient."""

import jax
import numpy as np
import pytest


@pytest.fixture
def x64():
    """Runs the test with 64-bit JAX types."""
    with jax.enable_x64(True):
        yield


def _fd_grad(fn, x, h=1e-6):
    """Central finite-difference gradient of a scalar numpy function ``fn`` at ``x``."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus = x.copy()
        minus = x.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = (fn(plus) - fn(minus)) / (2 * h)
    return grad


@pytest.fixture
def fd_grad():
    """The finite-difference gradient function."""
    return _fd_grad
