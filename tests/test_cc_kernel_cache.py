"""The CC simulator's numba kernels are cached under a digest of all their source files (genet/cc/kernels.py):
numba alone checks only a kernel's own file, and would load a stale kernel after a change in a file whose
functions it inlines (the rate sender compiles genet/cc/aurora.py's start-up rules; events.py the senders')."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from genet.cc import kernels

CC_DIR = Path(kernels.__file__).resolve().parent


def test_every_file_with_kernels_or_their_functions_is_in_the_digest():
    """A file that defines kernels (``@kernel``) or hands its functions to ``kernel(...)`` from another file is
    hashed; so is every file whose names such a call compiles (the rate sender's start-up rules: aurora.py)."""
    listed = set(kernels.KERNEL_SOURCES)
    compiled_from = set()
    for path in CC_DIR.rglob("*.py"):
        text = path.read_text()
        rel = path.relative_to(CC_DIR).as_posix()
        if "@kernel" in text or re.search(r"\bkernel\(\w", text):
            assert rel in listed, f"{rel} defines CC kernels but is not in KERNEL_SOURCES"
        for name in re.findall(r"=\s*kernel\((\w+)\)", text):
            for other in CC_DIR.rglob("*.py"):
                if re.search(rf"^def {name}\(", other.read_text(), re.M):
                    compiled_from.add(other.relative_to(CC_DIR).as_posix())
    assert compiled_from and compiled_from <= listed, compiled_from - listed


def test_a_kernels_cache_name_carries_the_digest_of_the_sources():
    digest = hashlib.sha256()
    for rel in kernels.KERNEL_SOURCES:
        digest.update(rel.encode() + b"\0" + (CC_DIR / rel).read_bytes())
    assert kernels.sources_digest() == digest.hexdigest()[:12]
    from genet.cc.events import run_events
    from genet.cc.senders import rate
    for dispatcher in (run_events, rate._window_open):
        assert dispatcher.py_func.__qualname__.endswith(f"__src_{kernels.sources_digest()}")
        assert dispatcher._cache._cache_path  # numba caches it on disk (cache=True)


def test_a_kernel_computes_what_its_python_function_computes():
    from genet.cc.aurora import startup_window_open
    from genet.cc.senders import rate
    for args in ((0, 0, 50), (10, 0, 9), (10, 0, 10), (10, 1, 500)):
        assert rate._window_open(*args) == startup_window_open(*args)
