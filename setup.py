"""symbiosis_jax: feedback loops (RLHF, RLVR, self-play) as small, pure JAX pieces."""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent

# Lower bounds only: the same code runs on the CPU here and on the GPU image.
_INSTALL_REQUIRES = [
    "jax>=0.7",
    "flax>=0.11",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11",
    "chex>=0.1.89",
    "ml-collections>=1.0",
    "tensorflow-datasets>=4.9.8",
    "array-record>=0.7",
    "pgx>=2.4",
    "numpy>=1.26",
    "tqdm>=4.66",
    "tensorboardX>=2.6",
    "matplotlib>=3.8",
    "safetensors>=0.4",
    "tokenizers>=0.20",
]

_EXTRAS = {
    # torch is installed first from the CPU wheel on disk (see Makefile); the
    # lower bound here is then satisfied and pip pulls no CUDA build.
    "test": [
        "pytest>=8",
        "pytest-xdist>=3.5",
        "mctx>=0.0.5",
        "torch>=2.4",
        "transformers>=4.50",
        "jupytext>=1.16",
        "nbclient>=0.10",
        "nbformat>=5.10",
        "ipykernel>=6.29",
        "reasoning-gym>=0.1.20",
    ],
    "bench": ["mctx>=0.0.5", "torch>=2.4", "transformers>=4.50", "trl>=0.20"],
    "tasks": ["reasoning-gym>=0.1.20"],
    "notebooks": ["jupytext>=1.16", "nbclient>=0.10", "ipykernel>=6.29"],
}

setuptools.setup(
    name="symbiosis_jax",
    version="0.1.0",
    description="Feedback loops (RLHF, RLVR, self-play) as small, pure JAX pieces.",
    long_description=(_HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["symbiosis_jax", "symbiosis_jax.*"]),
    python_requires=">=3.10",
    install_requires=_INSTALL_REQUIRES,
    extras_require=_EXTRAS,
)
