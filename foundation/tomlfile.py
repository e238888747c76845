"""TOML files of genet-testbed (run configs, inventories, campaigns, testbed paths): read with one-line
errors, strings written with a correct escaper, and the check every string value of a config gets.

* :func:`read_toml` reads a file as UTF-8 TOML; anything wrong with it (missing, unreadable, larger
  than :data:`MAX_TOML_BYTES`, not UTF-8, not TOML, integers past Python's digit limit, nesting deeper
  than :data:`MAX_TOML_DEPTH`) is the caller's error class with one line naming the file, never a
  traceback.
* :func:`toml_string` writes a TOML basic string (quotes, backslashes and every control character
  escaped), so a written file always parses back to the same text.
* :func:`control_char` finds a control character (or a Unicode line / paragraph separator) in a
  string: names, paths and words of a config are one line of printable text.
* :func:`show` is a value as an error message quotes it: ``repr`` (so a newline stays ``\\n``),
  cut to a length that keeps the message one readable line.

Standard library only; imports nothing of genet but :mod:`foundation.errors`.
"""

from __future__ import annotations

import os
import tomllib
import unicodedata
from pathlib import Path
from typing import Any

from foundation.errors import BadInputError

MAX_TOML_BYTES = 1 << 20   # a config or inventory is a few kB; refuse a file past 1 MiB before parsing it
MAX_TOML_DEPTH = 32        # tables and arrays nested deeper than this are refused
SHOW_CHARS = 80            # a quoted value in an error message is cut to this many characters


def control_char(text: str) -> str | None:
    """The first control character (Unicode category Cc: C0, DEL, C1) or line / paragraph separator in
    ``text``, else None."""
    for c in text:
        if unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            return c
    return None


def show(value: Any, limit: int = SHOW_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (``...`` marks the cut): one line, always."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deeply>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (``"..."``): quotes, backslashes and control characters escaped."""
    out = []
    for c in str(text):
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif unicodedata.category(c) == "Cc" or c in "\u2028\u2029":
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _depth(data: Any) -> int:
    """Nesting depth of parsed TOML (iterative: a deep value cannot exhaust the stack here)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_TOML_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def read_toml(path: str | os.PathLike, error: type[BadInputError] = BadInputError) -> tuple[dict, str]:
    """Parse the TOML file ``path``; return (data, its text). Every problem with the file is ``error``
    (a :class:`BadInputError` subclass) with one line naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a TOML file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise error(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) > MAX_TOML_BYTES:
        raise error(f"{path}: larger than {MAX_TOML_BYTES >> 20} MiB; not a config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise error(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})") from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise error(f"{path}: not valid TOML: tables or arrays nested too deeply "
                    f"(at most {MAX_TOML_DEPTH} levels)") from None
    except ValueError as exc:  # TOMLDecodeError (line and column in the message), or int()'s digit limit
        why = " ".join(str(exc).split())
        raise error(f"{path}: not valid TOML: {why[:200]}") from None
    if _depth(data) > MAX_TOML_DEPTH:
        raise error(f"{path}: tables or arrays nested deeper than {MAX_TOML_DEPTH} levels")
    return data, text
