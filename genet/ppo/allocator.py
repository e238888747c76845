"""Keep freed memory in the process during training (glibc): fewer page faults in every PPO step.

A PPO step on the ABR network allocates and frees the same few-MB temporaries (the 768-wide concatenation, its
gradient, the towers' activations) tens of times. glibc's malloc serves blocks above its mmap threshold with a
fresh ``mmap`` and returns them with ``munmap`` (and trims the heap's top back to the kernel), so every step
faults the same pages in again. Raising the mmap threshold and the trim threshold keeps those blocks in the
heap: one-core gradient steps on 3,072 ABR rows went from 69-74 to 60-64 ms on this project's 2-core VM and
its minor faults halved (``benchmarks/abr_training_speed.py`` prints the effect on whole updates). Costs: the process keeps its peak
heap (tens of MB for these networks) instead of returning it.

A no-op where the C library is not glibc (``mallopt`` missing) or when ``GENET_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: blocks up to this size come from the heap, not a fresh mmap (bytes; glibc caps it at 32 MiB on 64-bit)
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: free memory kept at the heap's top before it is returned to the kernel (bytes)
TRIM_THRESHOLD_BYTES = 256 * 2**20
#: extra bytes requested from the kernel whenever the heap grows (bytes)
TOP_PAD_BYTES = 16 * 2**20

_done = False


def keep_freed_memory() -> bool:
    """Tune this process's glibc malloc for training (see the module docstring), once. Returns whether it did."""
    global _done
    if _done:
        return True
    if os.environ.get("GENET_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                                                            (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                                                            (M_TOP_PAD, TOP_PAD_BYTES)))
    _done = ok
    return ok
