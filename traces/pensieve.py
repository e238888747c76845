"""Pensieve / Genet two-column text traces: ``<time_s> <bandwidth_mbps>`` per line.

Reference: genet-simulators.md §7.1. Only the first two whitespace-separated
tokens of a line are used (Pensieve's ``load_trace``); blank lines are skipped.
The arrays are kept exactly as in the file (see :mod:`traces.trace`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from foundation.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.textfile import describe_token, read_trace_text, split_lines
from traces.trace import MAX_BANDWIDTH_MBPS, Trace


def read_pensieve(path: str | os.PathLike, name: str | None = None) -> Trace:
    """Read a two-column trace. Errors name the file and line, never the line's text."""
    path = Path(path)
    times: list[float] = []
    bws: list[float] = []
    text = read_trace_text(path)
    for lineno, line in enumerate(split_lines(text), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise TraceFormatError("expected two columns '<time_s> <bandwidth_mbps>', got one", path, lineno)
        try:
            t, bw = float(tokens[0]), float(tokens[1])
        except ValueError:
            i = 0 if not _is_number(tokens[0]) else 1
            raise TraceFormatError(f"non-numeric field in column {i + 1} ({describe_token(tokens[i])})",
                                   path, lineno) from None
        if not (math.isfinite(t) and math.isfinite(bw)):  # (math: 20x cheaper than numpy per scalar)
            raise TraceFormatError("non-finite value (nan or inf)", path, lineno)
        if times and t < times[-1]:
            raise TraceFormatError(f"timestamp {t} s is before the previous one ({times[-1]} s)", path, lineno)
        if bw < 0:
            raise TraceFormatError(f"negative bandwidth {bw} Mbps", path, lineno)
        if bw > MAX_BANDWIDTH_MBPS:
            raise TraceFormatError(f"bandwidth {bw:.6g} Mbps is above the limit of {MAX_BANDWIDTH_MBPS:g} Mbps "
                                   "(MAX_BANDWIDTH_MBPS)", path, lineno)
        times.append(t)
        bws.append(bw)
    if not times:
        raise TraceFormatError("empty trace file (no samples)", path)
    return Trace(np.array(times), np.array(bws), name=name if name is not None else path.stem,
                 meta={"source_format": "pensieve", "path": str(path)})


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def write_pensieve(trace: Trace, path: str | os.PathLike) -> None:
    with atomic_text_writer(path) as fh:
        for t, bw in zip(trace.timestamps_s, trace.bandwidth_mbps):
            fh.write(f"{t:.6g}\t{bw:.6g}\n")
