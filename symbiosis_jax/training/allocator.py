"""Process-wide allocator setting: keep freed heap memory instead of returning it to the OS.

XLA's CPU runtime allocates all temporaries of an executable as one block. glibc serves a
block larger than its mmap threshold (at most 32 MiB) with a fresh `mmap` and unmaps it on
free, so a jitted step whose temporaries exceed 32 MiB page-faults the whole block again on
every call (a 60 MiB block: ~15,000 minor faults, ~20 ms per step on a 2-core VM; see
BENCHMARKS.md, "The 16-token anomaly"). `keep_freed_heap_memory` tells glibc to serve large
blocks from the heap and never trim it, so the block is reused. The cost is that the
process's resident memory stays at its peak. It changes nothing on other C libraries.
"""

from __future__ import annotations

import ctypes

# <malloc.h> parameter numbers.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
MODES = ("keep", "default")


def keep_freed_heap_memory() -> bool:
    """Sets glibc's `M_MMAP_MAX` to 0 and `M_TRIM_THRESHOLD` to 1 GiB for this process.

    Returns:
        True if both settings took effect; False where glibc's `mallopt` is not
        available (another C library); nothing is changed then.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1


def apply(mode: str) -> bool:
    """Applies an allocator mode: "keep" (`keep_freed_heap_memory`) or "default" (no change).

    Returns:
        Whether the process now keeps freed memory.

    Raises:
        ValueError: for any other mode.
    """
    if mode not in MODES:
        raise ValueError(f"malloc={mode!r} is not one of {MODES}")
    return keep_freed_heap_memory() if mode == "keep" else False
