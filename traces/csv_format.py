"""CSV traces with a header row, for users' own data.

Required columns: a time column and a bandwidth column, each with its unit in
the name: ``timestamp_s`` or ``timestamp_ms``; ``bandwidth_mbps``,
``bandwidth_kbps`` or ``bandwidth_bps``. Optional per-trace columns, taken
from the first row that fills them: ``delay_ms``, ``loss_rate``,
``queue_packets``. Other columns are ignored. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from genet.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.trace import Trace

TIME_COLUMNS = {"timestamp_s": 1.0, "timestamp_ms": 1e-3, "time_s": 1.0}
BANDWIDTH_COLUMNS = {"bandwidth_mbps": 1.0, "bandwidth_kbps": 1e-3, "bandwidth_bps": 1e-6}
PROPERTY_COLUMNS = ("delay_ms", "loss_rate", "queue_packets")


def read_csv(path: str | os.PathLike, name: str | None = None) -> Trace:
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"not a text file ({exc.reason})", path) from None
    rows = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip() and not line.startswith("#")]
    if not rows:
        raise TraceFormatError("empty CSV file (no header)", path)
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    tcol = next((c for c in TIME_COLUMNS if c in header), None)
    bcol = next((c for c in BANDWIDTH_COLUMNS if c in header), None)
    if tcol is None or bcol is None:
        raise TraceFormatError(
            f"header must name a time column ({', '.join(TIME_COLUMNS)}) and a bandwidth column "
            f"({', '.join(BANDWIDTH_COLUMNS)}); got {header}", path, header_line)
    ti, bi = header.index(tcol), header.index(bcol)
    props: dict[str, float | None] = {k: None for k in PROPERTY_COLUMNS}
    times, bws = [], []
    for lineno, line in rows[1:]:
        fields = next(csv.reader(io.StringIO(line)))
        if len(fields) < len(header):
            raise TraceFormatError(f"expected {len(header)} fields, got {len(fields)}", path, lineno)
        try:
            t = float(fields[ti]) * TIME_COLUMNS[tcol]
            bw = float(fields[bi]) * BANDWIDTH_COLUMNS[bcol]
        except ValueError:
            raise TraceFormatError(f"non-numeric field in {line.strip()!r}", path, lineno) from None
        if times and t < times[-1]:
            raise TraceFormatError(f"timestamp {t} s is before the previous one ({times[-1]} s)", path, lineno)
        if bw < 0:
            raise TraceFormatError(f"negative bandwidth {bw} Mbps", path, lineno)
        for key in PROPERTY_COLUMNS:
            if key in header and props[key] is None and fields[header.index(key)].strip():
                try:
                    props[key] = float(fields[header.index(key)])
                except ValueError:
                    raise TraceFormatError(f"non-numeric {key} {fields[header.index(key)]!r}", path, lineno) from None
        times.append(t)
        bws.append(bw)
    if not times:
        raise TraceFormatError("CSV has a header but no samples", path)
    q = props["queue_packets"]
    return Trace(np.array(times), np.array(bws), name=name if name is not None else path.stem,
                 delay_ms=props["delay_ms"], loss_rate=props["loss_rate"],
                 queue_packets=int(round(q)) if q is not None else None,
                 meta={"source_format": "csv", "path": str(path)})


def write_csv(trace: Trace, path: str | os.PathLike) -> None:
    with atomic_text_writer(path) as fh:
        fh.write("timestamp_s,bandwidth_mbps,delay_ms,loss_rate,queue_packets\n")
        for i, (t, bw) in enumerate(zip(trace.timestamps_s, trace.bandwidth_mbps)):
            extra = ["" if (v is None or i) else f"{v:g}" for v in (trace.delay_ms, trace.loss_rate, trace.queue_packets)]
            fh.write(f"{t:.6g},{bw:.6g},{','.join(extra)}\n")
