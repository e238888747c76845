"""The one error type for bad trace input."""

from __future__ import annotations

from foundation.errors import BadInputError

import os


class TraceFormatError(BadInputError):
    """A trace file or trace value is malformed.

    The message always names where: ``path:line: what`` for text formats,
    ``path: field 'name': what`` for JSON fields, or ``path: what`` for
    whole-file problems. ``path``, ``line`` and ``field`` are kept as attributes.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 line: int | None = None, field: str | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = self.path or "<trace>"
        if line is not None:
            where = f"{where}:{line}"
        if field is not None:
            where = f"{where}: field '{field}'"
        super().__init__(f"{where}: {message}")
