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

numba's first compile or cache load in a process imports its array-math lowering (``numba.np.arraymath``), which
probes for BLAS with ``import scipy.linalg.cython_blas``: that runs all of ``scipy.linalg`` (scipy's array-API
layer, ``numpy.f2py``: about 0.1 s, a tenth of a 50-episode ``genet eval lb``) although no kernel here calls BLAS.
:func:`_import_numba` gives the probe the one extension module it asks for, without the package around it
(:func:`_import_arraymath_without_scipy_linalg`); kernels that do call BLAS still get it.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import sys

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


def _import_arraymath_without_scipy_linalg() -> None:
    """Import ``numba.np.arraymath`` with ``scipy.linalg.cython_blas`` loaded on its own (its extension module,
    from scipy's folder) standing in ``sys.modules`` while numba's BLAS probe runs, instead of the whole
    ``scipy.linalg`` package. The stand-in leaves ``sys.modules`` right after, so a later ``import scipy.linalg``
    is the ordinary one (Cython hands back the same module object), and a kernel that calls BLAS imports it by
    name as numba always does. No scipy, no such module, or one that will not load: the ordinary import."""
    name = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules or name in sys.modules:
        return
    spec = None
    try:
        scipy_spec = importlib.util.find_spec("scipy")
        for folder in (scipy_spec.submodule_search_locations or []) if scipy_spec else []:
            finder = importlib.machinery.FileFinder(os.path.join(folder, "linalg"), (
                importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
            spec = finder.find_spec(name)
            if spec is not None:
                break
    except (ValueError, ImportError, OSError):
        spec = None
    if spec is None or spec.loader is None:
        return
    try:
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception:  # not loadable on its own: numba's probe does the ordinary import
        sys.modules.pop(name, None)
        return
    try:
        import numba.np.arraymath  # noqa: F401  (its BLAS probe finds the module above)
    finally:
        if sys.modules.get(name) is module:
            del sys.modules[name]


def _import_numba():
    """The ``numba`` package, its array-math lowering imported without ``scipy.linalg`` (module docstring)."""
    import numba
    _import_arraymath_without_scipy_linalg()
    return numba


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
    deps = _foreign_dependencies(fn)
    if not deps:
        return fn
    digest = hashlib.sha256()
    for path in deps:
        with open(path, "rb") as fh:
            digest.update(fh.read())
    return cache_named(fn, f"deps_{digest.hexdigest()[:12]}")


def cache_named(fn, tag: str):
    """A copy of ``fn`` whose qualified name (what numba names its cache entries after) ends in ``__TAG``: a
    kernel compiled from it gets cache entries of its own, so a new tag (a digest of sources numba does not
    check) recompiles it."""
    import types
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__doc__ = fn.__doc__
    copy.__module__ = fn.__module__
    copy.__qualname__ = f"{fn.__qualname__}__{tag}"
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
                njit = _import_numba().njit
                _register_jitables()
                compiled = njit(cache=True, **options)(_cacheable(fn))
            else:
                compiled = fn
        return compiled(*args)

    call.py_func = fn
    return call
