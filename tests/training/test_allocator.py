"""`training.allocator`: freed large blocks are reused instead of page-faulted again.

Each case runs in a fresh interpreter (the setting is process-wide) and counts the minor
page faults (`getrusage`) of allocating, touching and freeing a 64 MiB block a second time.
With glibc's defaults the block is a fresh `mmap` each time: every 4 KiB page faults again
(16,384 pages). With `keep_freed_heap_memory` the second block reuses the first's pages.
"""

import subprocess
import sys
import textwrap

import pytest

from symbiosis_jax.training import allocator

_PROBE = textwrap.dedent("""
    import ctypes, resource, sys
    from symbiosis_jax.training import allocator
    kept = allocator.apply(sys.argv[1])
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 20

    def cycle():
        p = libc.malloc(size)
        ctypes.memset(p, 1, size)
        libc.free(p)

    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cycle()
    print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _second_cycle_faults(mode):
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_reuses_freed_block_default_faults_it_again():
    kept, faults = _second_cycle_faults("keep")
    assert kept
    assert faults < 1_000  # 64 MiB = 16,384 pages; reused, so (almost) none fault
    kept, faults = _second_cycle_faults("default")
    assert not kept
    assert faults >= 16_000  # a fresh mmap: every page faults again


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match=r"malloc='huge' is not one of \('keep', 'default'\)"):
        allocator.apply("huge")
