"""CSV traces with a header row, for users' own data.

Required columns: a time column and a bandwidth column, each with its unit in
the name: ``timestamp_s`` or ``timestamp_ms``; ``bandwidth_mbps``,
``bandwidth_kbps`` or ``bandwidth_bps``. Optional per-trace columns, taken
from the first row that fills them: ``delay_ms``, ``loss_rate``,
``queue_packets``. Other columns are ignored. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from foundation.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.textfile import describe_token, read_trace_text, split_lines
from traces.trace import MAX_BANDWIDTH_MBPS, Trace, check_link_property

TIME_COLUMNS = {"timestamp_s": 1.0, "timestamp_ms": 1e-3, "time_s": 1.0}
BANDWIDTH_COLUMNS = {"bandwidth_mbps": 1.0, "bandwidth_kbps": 1e-3, "bandwidth_bps": 1e-6}
PROPERTY_COLUMNS = ("delay_ms", "loss_rate", "queue_packets")


def read_csv(path: str | os.PathLike, name: str | None = None) -> Trace:
    """Read a CSV trace. Errors name the file, line and column, never the line's text."""
    path = Path(path)
    text = read_trace_text(path)
    rows = [(i + 1, line) for i, line in enumerate(split_lines(text))
            if line.strip() and not line.startswith("#")]
    if not rows:
        raise TraceFormatError("empty CSV file (no header)", path)
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in _fields(header_text, path, header_line)]
    tcol = next((c for c in TIME_COLUMNS if c in header), None)
    bcol = next((c for c in BANDWIDTH_COLUMNS if c in header), None)
    if tcol is None or bcol is None:
        raise TraceFormatError(
            f"header must name a time column ({', '.join(TIME_COLUMNS)}) and a bandwidth column "
            f"({', '.join(BANDWIDTH_COLUMNS)}); it has {len(header)} column{'s' if len(header) != 1 else ''} and "
            f"{'no time column' if tcol is None else 'no bandwidth column'}", path, header_line)
    ti, bi = header.index(tcol), header.index(bcol)
    props: dict[str, float | int | None] = {k: None for k in PROPERTY_COLUMNS}
    times, bws = [], []
    for lineno, line in rows[1:]:
        fields = _fields(line, path, lineno)
        if len(fields) < len(header):
            raise TraceFormatError(f"expected {len(header)} fields, got {len(fields)}", path, lineno)
        t = _number(fields[ti], tcol, path, lineno) * TIME_COLUMNS[tcol]
        bw = _number(fields[bi], bcol, path, lineno) * BANDWIDTH_COLUMNS[bcol]
        if not (math.isfinite(t) and math.isfinite(bw)):
            raise TraceFormatError(f"non-finite {tcol if not math.isfinite(t) else bcol} (nan or inf)", path, lineno)
        if times and t < times[-1]:
            raise TraceFormatError(f"timestamp {t} s is before the previous one ({times[-1]} s)", path, lineno)
        if bw < 0:
            raise TraceFormatError(f"negative bandwidth {bw} Mbps", path, lineno)
        if bw > MAX_BANDWIDTH_MBPS:
            raise TraceFormatError(f"bandwidth {bw:.6g} Mbps is above the limit of {MAX_BANDWIDTH_MBPS:g} Mbps "
                                   "(MAX_BANDWIDTH_MBPS)", path, lineno)
        for key in PROPERTY_COLUMNS:
            if key in header and props[key] is None and fields[header.index(key)].strip():
                value = _number(fields[header.index(key)], key, path, lineno)
                props[key] = check_link_property(key, value, path, lineno, field=key)
        times.append(t)
        bws.append(bw)
    if not times:
        raise TraceFormatError("CSV has a header but no samples", path)
    return Trace(np.array(times), np.array(bws), name=name if name is not None else path.stem,
                 delay_ms=props["delay_ms"], loss_rate=props["loss_rate"], queue_packets=props["queue_packets"],
                 meta={"source_format": "csv", "path": str(path)})


def _fields(line: str, path: Path, lineno: int) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:  # e.g. "field larger than field limit (131072)"; names no content
        raise TraceFormatError(f"malformed CSV line ({exc})", path, lineno) from None


def _number(text: str, column: str, path: Path, lineno: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise TraceFormatError(f"non-numeric field in column {column} ({describe_token(text)})", path, lineno) from None


def write_csv(trace: Trace, path: str | os.PathLike) -> None:
    with atomic_text_writer(path) as fh:
        fh.write("timestamp_s,bandwidth_mbps,delay_ms,loss_rate,queue_packets\n")
        for i, (t, bw) in enumerate(zip(trace.timestamps_s, trace.bandwidth_mbps)):
            extra = ["" if (v is None or i) else f"{v:g}" for v in (trace.delay_ms, trace.loss_rate, trace.queue_packets)]
            fh.write(f"{t:.6g},{bw:.6g},{','.join(extra)}\n")
