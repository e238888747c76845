"""Writers never leave half-written files: write a temporary sibling, then rename.

Bottom of the import graph (standard library only): traces, genet, emulation, sender, player and
deploy all write results through it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of finished files: what open() would give (0666 minus the umask), not mkstemp's 0600.
FILE_MODE = 0o666 & ~_umask()


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give a finished temporary file the usual permissions and rename it onto ``path``."""
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike, binary: bool) -> Iterator[IO]:
    """A temporary sibling of ``path`` opened for writing; renamed onto ``path`` (after fsync) only if
    the block succeeds, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="\n")) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_text_writer(path: str | os.PathLike) -> Iterator[TextIO]:
    """Open ``path`` for writing text (a context manager); it appears only if the block succeeds."""
    return _atomic_file(path, binary=False)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with _atomic_file(path, binary=True) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_text_writer(path) as fh:
        fh.write(text)
