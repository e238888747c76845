"""Reading and writing traces in any supported format, one file or a directory.

Formats: ``pensieve`` (two columns, s and Mbps), ``mahimahi`` (ms delivery
opportunities), ``json`` (Genet Trace JSON, incl. Pantheon-derived CC traces)
and ``csv`` (header with unit-suffixed columns).

Detection (when no format is given): ``.json`` -> json, ``.csv`` -> csv,
otherwise by content: one integer per line -> mahimahi, two or more columns
-> pensieve.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import os
from pathlib import Path
from typing import Callable, Iterable

from traces.csv_format import read_csv, write_csv
from traces.errors import TraceFormatError
from traces.genet_json import read_genet_json, write_genet_json
from traces.mahimahi import read_mahimahi, write_mahimahi
from traces.pensieve import read_pensieve, write_pensieve
from traces.textfile import read_trace_text
from traces.trace import Trace

FORMATS = ("pensieve", "mahimahi", "json", "csv")
READERS: dict[str, Callable[..., Trace]] = {
    "pensieve": read_pensieve, "mahimahi": read_mahimahi, "json": read_genet_json, "csv": read_csv}
WRITERS: dict[str, Callable[[Trace, str | os.PathLike], None]] = {
    "pensieve": write_pensieve, "mahimahi": write_mahimahi, "json": write_genet_json, "csv": write_csv}
#: File suffix used when writing a directory of traces.
SUFFIXES = {"pensieve": ".txt", "mahimahi": ".mahi", "json": ".json", "csv": ".csv"}
#: Files a dataset directory may hold besides traces.
IGNORED_SUFFIXES = {".md", ".png", ".pdf", ".svg", ".sha256", ".tar", ".gz", ".zip", ".part"}
#: (``calibration`` / ``calibration-check``: what ``genet emulate calibrate`` writes beside its traces.)
IGNORED_NAMES = {"readme", "license", "checksums", "sha256sums", "manifest", "calibration", "calibration-check"}
#: How much of a file detect_format reads first (bytes).
DETECT_BYTES = 64 * 1024


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadInputError(f"unknown trace format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def detect_format(path: str | os.PathLike) -> str:
    """Guess the format of a trace file from its suffix, then its first non-blank line (read from
    the file's first :data:`DETECT_BYTES` bytes when it is there, else from the whole, bounded, file)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".csv":
        return "csv"
    try:
        with open(path, "rb") as fh:
            head = fh.read(DETECT_BYTES + 1)
    except OSError as exc:
        raise TraceFormatError(f"cannot read the file ({exc.strerror or type(exc).__name__})", path) from None
    complete = len(head) <= DETECT_BYTES
    lines = head[:DETECT_BYTES].split(b"\n")
    if not complete:
        lines.pop()  # may be cut
    for lineno, raw in enumerate(lines, start=1):
        try:
            tokens = raw.decode("utf-8").split()
        except UnicodeDecodeError:
            raise TraceFormatError("not UTF-8 text", path, lineno) from None
        if tokens:
            return "mahimahi" if len(tokens) == 1 else "pensieve"
    if not complete:  # a long blank or cut first stretch: look at the whole file
        for lineno, line in enumerate(read_trace_text(path).split("\n"), start=1):
            tokens = line.split()
            if tokens:
                return "mahimahi" if len(tokens) == 1 else "pensieve"
    raise TraceFormatError("empty trace file (no samples)", path)


def read_trace(path: str | os.PathLike, fmt: str | None = None, name: str | None = None) -> Trace:
    """Read one trace file. ``fmt`` is detected when None."""
    path = Path(path)
    if not path.is_file():
        raise TraceFormatError("no such trace file", path)
    fmt = _check_format(fmt) if fmt else detect_format(path)
    return READERS[fmt](path, name=name)


def write_trace(trace: Trace, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write one trace atomically; ``fmt`` defaults from the suffix (else pensieve)."""
    path = Path(path)
    if fmt is None:
        fmt = {v: k for k, v in SUFFIXES.items()}.get(path.suffix.lower(), "pensieve")
    WRITERS[_check_format(fmt)](trace, path)
    return path


def is_trace_candidate(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or not path.is_file():
        return False
    if path.suffix.lower() in IGNORED_SUFFIXES or path.stem.lower() in IGNORED_NAMES:
        return False
    return True


def list_trace_files(directory: str | os.PathLike) -> list[Path]:
    """Trace files under ``directory`` (recursive, sorted, hidden/docs skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TraceFormatError("not a directory", directory)
    files = sorted(p for p in directory.rglob("*") if is_trace_candidate(p)
                   and not any(part.startswith(".") for part in p.relative_to(directory).parts))
    if not files:
        raise TraceFormatError("directory holds no trace files", directory)
    return files


def dataset_name(path: Path, root: Path) -> str:
    """A trace's name inside a dataset: its relative path without suffix."""
    rel = path.relative_to(root)
    return str(rel.with_suffix("")) if rel.suffix.lower() in {".json", ".csv", ".txt", ".mahi"} else str(rel)


def load_traces(path: str | os.PathLike, fmt: str | None = None) -> list[Trace]:
    """Read a trace file, or every trace in a directory (a named set)."""
    path = Path(path)
    if path.is_dir():
        return [read_trace(p, fmt, name=dataset_name(p, path)) for p in list_trace_files(path)]
    return [read_trace(path, fmt)]



def convert(src: str | os.PathLike, dst: str | os.PathLike, to: str, from_fmt: str | None = None,
            progress: Callable[[Iterable], Iterable] | None = None) -> list[Path]:
    """Convert a file (to file ``dst``) or a directory (into directory ``dst``,
    mirroring sub-directories). Returns the files written."""
    _check_format(to)
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        return [write_trace(read_trace(src, from_fmt), dst, to)]
    files = list_trace_files(src)
    written = []
    for p in (progress(files) if progress else files):
        trace = read_trace(p, from_fmt, name=dataset_name(p, src))
        rel = p.relative_to(src)
        out = dst / rel.parent / (Path(dataset_name(p, src)).name + SUFFIXES[to])
        written.append(write_trace(trace, out, to))
    return written
