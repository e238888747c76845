"""The CC simulator's numba kernels are compiled with :func:`kernel`: ``numba.njit(cache=True)`` under a name
that carries a digest of every kernel source file of the simulator (:data:`KERNEL_SOURCES`).

numba's on-disk cache checks only the source file of the function it caches. A kernel inlines the jitted
functions it calls from other files (``events.run_events`` calls the senders' and the link's; the rate sender
compiles the start-up rules of ``genet/cc/aurora.py``), so after an edit or a ``git pull`` that changed one of
those files, numba alone would load the stale kernel and simulate the old code without a word. Naming every
kernel after the digest of all of them makes any change recompile every kernel once (about the cost of a first
run); entries of older digests are left for numba's cache to ignore. The ABR and LB kernels get the same
guarantee per kernel from :func:`genet.abr.jit.lazy_njit`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba import njit

from genet.abr.jit import cache_named

#: The files whose functions the CC kernels compile (relative to genet/cc/).
KERNEL_SOURCES = ("aurora.py", "connection.py", "events.py", "link.py", "senders/bbr.py", "senders/cubic.py",
                  "senders/rate.py", "senders/kinds.py", "teacher.py", "kernels.py")


@functools.cache
def sources_digest() -> str:
    """12 hex digits of the SHA-256 of :data:`KERNEL_SOURCES`' contents, in that order."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for rel in KERNEL_SOURCES:
        digest.update(rel.encode() + b"\0" + (here / rel).read_bytes())
    return digest.hexdigest()[:12]


def kernel(fn):
    """``numba.njit(cache=True)`` of a copy of ``fn`` whose cache name carries :func:`sources_digest`."""
    return njit(cache=True)(cache_named(fn, f"src_{sources_digest()}"))
