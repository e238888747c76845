"""Optional numba: kernels compiled on first use when numba is installed, plain Python/numpy otherwise.

Runtime modules (observations, RobustMPC — what the player runs) decorate their loops with
:func:`lazy_njit`, so importing them loads no numba, a runtime install without numba still works, and
the simulator and training get compiled kernels.
"""

from __future__ import annotations

import functools
import importlib.util


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    """numba is installed (and not blocked), without importing it (checked once per process)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ValueError, ImportError):  # sys.modules["numba"] = None blocks it
        return False


def lazy_njit(fn):
    """``fn`` compiled with ``numba.njit(cache=True)`` on its first call when numba is installed, else run
    as plain Python. ``py_func`` is the uncompiled function."""
    compiled = None

    @functools.wraps(fn)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            if numba_available():
                from numba import njit
                compiled = njit(cache=True)(fn)
            else:
                compiled = fn
        return compiled(*args)

    call.py_func = fn
    return call
