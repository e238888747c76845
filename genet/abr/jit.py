"""Optional numba: kernels compiled on first use when numba is installed, plain Python/numpy otherwise.

Modules decorate their loops with :func:`lazy_njit`, so importing them loads no numba (a runtime install
without numba still works, and a short command never pays numba's start-up), and the simulator and
training get compiled kernels. A plain function that kernels call is marked :func:`jitable`: numba
compiles it into each calling kernel, and from Python it stays plain Python, so a kernel's ``py_func``
runs entirely interpreted (the same operations, bit for bit the same results).

The compiled code is cached on disk (``cache=True``, numba's locators): under ``NUMBA_CACHE_DIR`` when it
is set, else in ``__pycache__`` beside the source, else (a read-only install) in numba's user-wide cache
(``~/.cache/numba``). numba invalidates an entry when the kernel's own source file changes (a content hash);
a kernel that calls jitable functions of other files gets a cache name carrying a digest of those files,
so a change there recompiles it too (numba alone would load the stale kernel).
"""

from __future__ import annotations

import functools
import importlib.util

#: Plain functions that compiled kernels may call (registered with numba when a kernel first compiles).
_JITABLE: list = []
_REGISTERED: set[int] = set()


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    """numba is installed (and not blocked), without importing it (checked once per process)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ValueError, ImportError):  # sys.modules["numba"] = None blocks it
        return False


def jitable(fn):
    """Mark plain ``fn`` as callable from compiled kernels (numba compiles it into each caller; from Python
    it stays plain Python). Returns ``fn`` itself."""
    if all(f is not fn for f in _JITABLE):
        _JITABLE.append(fn)
    return fn


def _register_jitables() -> None:
    from numba.extending import register_jitable
    for fn in _JITABLE:
        if id(fn) not in _REGISTERED:
            register_jitable(fn)
            _REGISTERED.add(id(fn))


def _foreign_dependencies(fn) -> list[str]:
    """Source files, other than ``fn``'s own, of the jitable functions ``fn`` calls (transitively)."""
    import inspect
    own = inspect.getfile(fn)
    files: set[str] = set()
    seen: set[int] = set()
    todo = [fn]
    while todo:
        f = todo.pop()
        for name in f.__code__.co_names:
            g = f.__globals__.get(name)
            if g is not None and id(g) not in seen and any(g is j for j in _JITABLE):
                seen.add(id(g))
                files.add(inspect.getfile(g))
                todo.append(g)
    files.discard(own)
    return sorted(files)


def _cacheable(fn):
    """``fn``, or a copy named with a digest of its foreign dependencies' sources (numba's cache checks only
    the kernel's own file, and names its entries after the function)."""
    import hashlib
    import types
    deps = _foreign_dependencies(fn)
    if not deps:
        return fn
    digest = hashlib.sha256()
    for path in deps:
        with open(path, "rb") as fh:
            digest.update(fh.read())
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__doc__ = fn.__doc__
    copy.__qualname__ = f"{fn.__qualname__}__deps_{digest.hexdigest()[:12]}"
    return copy


def lazy_njit(fn=None, **options):
    """``fn`` compiled with ``numba.njit(cache=True, **options)`` on its first call when numba is installed,
    else run as plain Python. ``py_func`` is the uncompiled function. Use as ``@lazy_njit`` or
    ``@lazy_njit(error_model="numpy")``."""
    if fn is None:
        return functools.partial(lazy_njit, **options)
    compiled = None

    @functools.wraps(fn)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            if numba_available():
                from numba import njit
                _register_jitables()
                compiled = njit(cache=True, **options)(_cacheable(fn))
            else:
                compiled = fn
        return compiled(*args)

    call.py_func = fn
    return call
