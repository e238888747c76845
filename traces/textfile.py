"""Reading a trace file's text, bounded and without echoing it.

Every trace reader goes through :func:`read_trace_text`: it refuses a file
larger than :data:`MAX_TRACE_FILE_BYTES` or with more than
:data:`MAX_TRACE_LINES` lines before decoding it, and turns an unreadable or
non-UTF-8 file into a one-line :class:`~traces.errors.TraceFormatError` naming
the file. Error messages of the readers name the file and line and say what is
wrong (:func:`describe_token`), never the line itself: a trace path may be a
symlink to a file that holds secrets (docs/security.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from traces.errors import TraceFormatError

#: Largest trace file any reader opens (bytes): 128 MiB, room for a Mahimahi file of
#: MAX_TRACE_LINES opportunities (the largest shipped trace is under 100 KB).
MAX_TRACE_FILE_BYTES = 128 * 1024 * 1024
#: Most lines (samples or delivery opportunities) a text trace file may hold.
MAX_TRACE_LINES = 10_000_000
_NEWLINE = re.compile(r"\r\n|\r|\n")


def read_trace_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of a trace file (bounded; one-line errors naming the file)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_TRACE_FILE_BYTES:
                raise TraceFormatError(f"file is {size:,} bytes, above the limit of {MAX_TRACE_FILE_BYTES:,} "
                                       "bytes for a trace (MAX_TRACE_FILE_BYTES)", path)
            data = fh.read(MAX_TRACE_FILE_BYTES + 1)
    except OSError as exc:
        raise TraceFormatError(f"cannot read the file ({exc.strerror or type(exc).__name__})", path) from None
    if len(data) > MAX_TRACE_FILE_BYTES:  # grew while being read, or not a regular file
        raise TraceFormatError(f"file is larger than the limit of {MAX_TRACE_FILE_BYTES:,} bytes for a trace "
                               "(MAX_TRACE_FILE_BYTES)", path)
    lines = max(data.count(b"\n"), data.count(b"\r")) + (0 if data.endswith((b"\n", b"\r")) else 1)
    if lines > MAX_TRACE_LINES:
        raise TraceFormatError(f"file has {lines:,} lines, above the limit of {MAX_TRACE_LINES:,} for a trace "
                               "(MAX_TRACE_LINES)", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TraceFormatError(f"not UTF-8 text (byte {exc.start + 1} of the file)", path, line) from None


def split_lines(text: str) -> list[str]:
    """The lines of a text file as an editor numbers them (``\\n``, ``\\r\\n`` or ``\\r`` ends a line)."""
    return _NEWLINE.split(text)


def describe_token(text: str) -> str:
    """A value's length and character class, never the value itself (a trace path may point at a
    file of secrets): e.g. ``"12 characters"``, ``"1 character, not ASCII"``."""
    s = text.strip()
    if not s:
        return "an empty value"
    kind = (", not ASCII" if not s.isascii() else
            ", with control characters" if any(ord(c) < 32 or ord(c) == 127 for c in s) else "")
    return f"{len(s)} character{'s' if len(s) != 1 else ''}{kind}"
