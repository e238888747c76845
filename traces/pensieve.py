"""Pensieve / Genet two-column text traces: ``<time_s> <bandwidth_mbps>`` per line.

Reference: genet-simulators.md §7.1. Only the first two whitespace-separated
tokens of a line are used (Pensieve's ``load_trace``); blank lines are skipped.
The arrays are kept exactly as in the file (see :mod:`traces.trace`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from genet.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.trace import Trace


def read_pensieve(path: str | os.PathLike, name: str | None = None) -> Trace:
    path = Path(path)
    times: list[float] = []
    bws: list[float] = []
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"not a text file ({exc.reason})", path) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise TraceFormatError(
                f"expected two columns '<time_s> <bandwidth_mbps>', got {line.strip()!r}", path, lineno)
        try:
            t, bw = float(tokens[0]), float(tokens[1])
        except ValueError:
            raise TraceFormatError(f"non-numeric field in {line.strip()!r}", path, lineno) from None
        if not (np.isfinite(t) and np.isfinite(bw)):
            raise TraceFormatError(f"non-finite value in {line.strip()!r}", path, lineno)
        if times and t < times[-1]:
            raise TraceFormatError(f"timestamp {t} s is before the previous one ({times[-1]} s)", path, lineno)
        if bw < 0:
            raise TraceFormatError(f"negative bandwidth {bw} Mbps", path, lineno)
        times.append(t)
        bws.append(bw)
    if not times:
        raise TraceFormatError("empty trace file (no samples)", path)
    return Trace(np.array(times), np.array(bws), name=name if name is not None else path.stem,
                 meta={"source_format": "pensieve", "path": str(path)})


def write_pensieve(trace: Trace, path: str | os.PathLike) -> None:
    with atomic_text_writer(path) as fh:
        for t, bw in zip(trace.timestamps_s, trace.bandwidth_mbps):
            fh.write(f"{t:.6g}\t{bw:.6g}\n")
