"""symbiosis_jax: feedback loops (RLHF, RLVR, self-play) as small, pure JAX pieces.

Importing the top-level package is cheap: subpackages are imported on use,
e.g. ``from symbiosis_jax import losses``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
