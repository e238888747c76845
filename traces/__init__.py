"""traces/: the one trace type, its file formats, generators and datasets.

>>> from traces import Trace, read_trace, load_traces

The names below load on first use (``import traces`` stays cheap: declaring ``genet traces``'s commands,
and so ``genet --help``, imports no numpy).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Trace": "traces.trace",
    "TraceFormatError": "traces.errors",
    "FORMATS": "traces.io",
    "read_trace": "traces.io",
    "write_trace": "traces.io",
    "load_traces": "traces.io",
    "convert": "traces.io",
    "detect_format": "traces.io",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'traces' has no attribute {name!r}")
