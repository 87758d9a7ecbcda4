"""Device set-up shared by the benchmarks that compare against torch (sampler, GRPO step).

The CPU runs give each side one thread; that must be configured before jax is imported, so the
scripts read `--device=gpu` from the command line at import time (`gpu_requested`) and call
`configure` before importing jax.
"""

import os
import sys


def gpu_requested(argv=None) -> bool:
    """Whether the command line asks for `--device=gpu` (or `--device gpu`)."""
    return any(a in ("--device=gpu", "gpu") for a in (sys.argv[1:] if argv is None else argv))


def configure(gpu: bool) -> None:
    """Sets the environment: one thread for XLA's CPU backend and torch, or the GPU as is."""
    if not gpu:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def require_gpu() -> str:
    """Exits unless both JAX and torch see a GPU; sets full-fp32 matrix products on JAX's side.

    torch's default does not use TF32 for float32 products; XLA's does, so JAX is set to
    "highest" and neither side gains from lower-precision matrix units. Returns a description.
    """
    import jax
    import torch

    if jax.default_backend() != "gpu" or not torch.cuda.is_available():
        sys.exit(f"--device=gpu: JAX backend is {jax.default_backend()!r}, torch CUDA available:"
                 f" {torch.cuda.is_available()}; both need a GPU")
    jax.config.update("jax_default_matmul_precision", "highest")
    return (f"{jax.devices()[0].device_kind}, torch on {torch.cuda.get_device_name()};"
            f" jax {jax.__version__}, torch {torch.__version__}")
