"""The one results journal and the one run-folder lock: results survive a crash, reruns resume, and no
second command writes into a run folder that is in use.

Bottom of the import graph (standard library only, plus :mod:`foundation.errors`): genet, sender, player
and deploy all use it.

**Journal** (:class:`Journal`): an append-only file of records, one JSON object per line (JSON Lines,
ASCII: ``json.dumps``), that a command appends to as each unit of work (a policy on a trace, an
emulated session, a remote run) finishes, and that a rerun reads to skip what is done. A record is a
dict; the convention for new journals is ``{"key": {...what identifies the row: policy, environment,
repetition, settings...}, ...payload}``, looked up with :meth:`Journal.find` (``find(key=k)``) or
:meth:`Journal.index` (the last record per computed key). The five journals of the product use it:
``genet eval abr`` / ``eval cc`` / ``emulate abr`` / ``emulate cc`` (``OUT/results.jsonl``) and
``genet deploy run`` (``OUT/journal.jsonl``).

Crash safety:

* :meth:`Journal.append` writes the record's whole line (ending in ``\\n``) with one ``write()``
  (repeated only for the rest if the kernel writes less), flushes and ``fsync``\\ s it, under an
  exclusive ``flock`` of the journal file, so appends from several threads or processes never
  interleave inside a line. A crash (SIGKILL, power loss) can therefore leave at most a *torn last
  line*: a record's start without its ``\\n``.
* Reading ignores a torn last line (:attr:`Journal.torn_tail`; a one-line warning). The next append,
  under the lock, first cuts the fragment away (truncates the file after its last ``\\n``), so the new
  record is a whole line of its own and is never lost by being glued onto the fragment. A last line
  that is a complete record only missing its ``\\n`` is a record: the append writes the ``\\n`` first.
* A line anywhere else that is not a record (not UTF-8, not JSON, not an object: damage, or a line a
  pre-fix version glued onto a fragment) is skipped with a one-line warning naming the file and the
  line numbers (:attr:`Journal.skipped`), never a traceback. Blank lines are ignored.
* A file that holds no record and does not start with ``{`` is not a journal (someone else's file
  where the command writes its journal): :class:`~foundation.errors.BadInputError` naming the file, rather
  than appending to it, or cutting its last line away.

**Run-folder lock** (:func:`run_folder_lock`): every command that writes a run folder (``genet eval
abr|cc --out``, ``genet emulate abr|cc --out``, ``genet deploy run --out``, ``genet run``) holds an
exclusive non-blocking ``flock`` on ``OUT/.genet.lock`` (which says the holder's PID and command)
while it works; a second command on the same folder fails at once with one line naming the holder
(``genet: error: out is in use by PID 1234 (genet deploy run); wait for it or use another --out``).
The kernel releases the lock when the holder ends, however it ends (SIGKILL too): there is no stale
lock to clear by hand. The lock is per folder: ``genet run`` holds its run folder while the commands
it starts lock their own sub-folders (``RUN/simulate/...``), and a command that calls another one
in-process on the same folder (same thread) nests without refusing itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator

from foundation.errors import BadInputError, GenetRuntimeError

#: The lock file in a run folder (holds ``{"pid": ..., "command": ..., "started_utc": ...}``).
LOCK_FILE = ".genet.lock"

_MISSING = object()
_TAIL_BLOCK = 1 << 16  # bytes read at a time when looking backwards for the last newline


def _default_warn(message: str) -> None:
    print(f"genet: warning: {message}", file=sys.stderr)


def _parse(raw: bytes) -> tuple[dict | None, str]:
    """The record a line holds, or None and why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    try:
        rec = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    return rec, ""


class Journal:
    """An append-only JSON Lines file of records (dicts); see the module's documentation.

    ``Journal(path)`` reads what is there (a missing file is an empty journal; it is created by the
    first append). ``records`` holds the records in file order, then those appended through this
    object. ``json_default``: ``json.dumps``'s ``default`` for values JSON cannot hold (None: a
    TypeError, so a bug does not write a string where a number belongs). ``warn``: where the one-line
    warnings about skipped lines go (default: ``genet: warning: ...`` on stderr)."""

    def __init__(self, path: str | os.PathLike, *, json_default: Callable[[Any], Any] | None = None,
                 warn: Callable[[str], None] | None = _default_warn):
        self.path = Path(path)
        self.json_default = json_default
        self.warn = warn or (lambda message: None)
        self.records: list[dict] = []
        self.skipped: list[int] = []  # 1-based numbers of complete lines that are not records
        self.torn_tail = False  # the file ends in a fragment (a crash mid-write): ignored, cut by the next append
        self._lock = threading.Lock()
        self.reload()

    # reading -------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the file again (what other processes appended since)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            data = b""
        else:
            with fh:
                with contextlib.suppress(OSError):  # a filesystem without flock: read as is
                    fcntl.flock(fh, fcntl.LOCK_SH)  # an append under way finishes its line first
                data = fh.read()
        *lines, tail = data.split(b"\n")
        records, skipped, why = [], [], {}
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            rec, reason = _parse(raw)
            if rec is None:
                skipped.append(n)
                why.setdefault(reason, n)
            else:
                records.append(rec)
        torn = False
        if tail.strip(b" \t\r\n\0"):
            rec, _ = _parse(tail)
            if rec is None:
                torn = True
            else:
                records.append(rec)  # complete, only its newline missing
        if not records and data.strip(b" \t\r\n\0")[:1] not in (b"", b"{"):
            raise BadInputError(f"{self.path} is not a journal of genet results (it does not start with a JSON "
                                f"object): move it away or use another --out")
        self.records, self.skipped, self.torn_tail = records, skipped, torn
        if skipped:
            shown = ", ".join(map(str, skipped[:5])) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            reasons = "; ".join(f"{r} (line {n})" for r, n in why.items())
            self.warn(f"{self.path}: skipped {len(skipped)} line(s) that are not records: line {shown} ({reasons})")
        if torn:
            self.warn(f"{self.path}: line {len(lines) + 1} is cut short (a crash while writing it): ignored; the "
                      f"next record replaces it")

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict]:
        return iter(list(self.records))

    def find(self, **fields: Any) -> list[dict]:
        """The records whose top-level ``fields`` equal the given values (e.g. ``find(key=k, status="ok")``)."""
        return [r for r in self.records if all(r.get(k, _MISSING) == v for k, v in fields.items())]

    def last(self, **fields: Any) -> dict | None:
        """The last record :meth:`find` would give, or None."""
        for r in reversed(self.records):
            if all(r.get(k, _MISSING) == v for k, v in fields.items()):
                return r
        return None

    def count(self, **fields: Any) -> int:
        return len(self.find(**fields))

    def index(self, key_of: Callable[[dict], Hashable], /, **fields: Any) -> dict[Hashable, dict]:
        """``key_of(record) -> record`` over the records matching ``fields`` (the last one wins; ``fields``
        may name ``key``); a record ``key_of`` cannot read (KeyError, TypeError, ValueError: another layout)
        is left out."""
        out: dict[Hashable, dict] = {}
        for r in self.find(**fields):
            try:
                k = key_of(r)
            except (KeyError, TypeError, ValueError):
                continue
            out[k] = r
        return out

    # writing -------------------------------------------------------------------------------------
    def append(self, record: dict) -> None:
        """Append one record as one whole line (flushed and fsynced before this returns)."""
        self.extend([record])

    def extend(self, records: Iterable[dict]) -> None:
        """Append records, each a whole line, in one write and one fsync."""
        records = list(records)
        for r in records:
            if not isinstance(r, dict):
                raise TypeError(f"a journal record is a dict, not {type(r).__name__}")
        if not records:
            return
        data = "".join(json.dumps(r, default=self.json_default) + "\n" for r in records).encode("ascii")
        with self._lock:
            self._write(data)
            self.records.extend(records)
            self.torn_tail = False

    def _write(self, data: bytes) -> None:
        new = not self.path.exists()
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
        try:
            with contextlib.suppress(OSError):  # a filesystem without flock: the run-folder lock still holds
                fcntl.flock(fd, fcntl.LOCK_EX)
            start = self._repair_tail(fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):  # no half line left behind (a full disk, Ctrl-C)
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)  # releases the flock
        if new:
            _fsync_dir(self.path.parent)

    def _repair_tail(self, fd: int) -> int:
        """Under the lock: make the file end in a newline; returns its size after."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        end = size
        cut = 0  # the offset just after the last newline
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            block = os.pread(fd, end - start, start)
            i = block.rfind(b"\n")
            if i >= 0:
                cut = start + i + 1
                break
            end = start
        if cut == size:
            return size
        tail = os.pread(fd, size - cut, cut)
        if tail.strip(b" \t\r\n\0") and _parse(tail)[0] is not None:
            os.write(fd, b"\n")  # a complete record without its newline: keep it
            return size + 1
        os.ftruncate(fd, cut)  # a torn fragment: cut it away, the next record starts a line of its own
        return cut


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# run-folder lock -----------------------------------------------------------------------------------
_held: dict[str, list] = {}  # real path of a locked folder -> [owning thread id, nesting depth]
_held_guard = threading.Lock()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"PID {int(info['pid'])} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _busy(out_dir: str | os.PathLike, holder: str) -> GenetRuntimeError:
    return GenetRuntimeError(f"{out_dir} is in use by {holder}; wait for it or use another --out")


@contextlib.contextmanager
def run_folder_lock(out_dir: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold ``OUT/.genet.lock`` (exclusive, non-blocking ``flock``) for the block; ``command`` (e.g.
    ``"genet deploy run"``) is written into the lock file with this process's PID. The folder is
    created if missing (and removed again if the block leaves nothing in it). Held by another
    process: :class:`~foundation.errors.GenetRuntimeError` at once, naming its PID and command. Nested use
    on the same folder in the same thread is allowed; another thread of this process is refused."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out_dir} exists and is not a folder: use another --out")
    created = []
    p = out.absolute()
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    out.mkdir(parents=True, exist_ok=True)
    real = os.path.realpath(out)
    me = threading.get_ident()
    with _held_guard:
        held = _held.get(real)
        if held is not None:
            if held[0] != me:
                raise _busy(out_dir, f"PID {os.getpid()} (another thread of this process)")
            held[1] += 1
    if held is not None:
        try:
            yield out
        finally:
            with _held_guard:
                _held[real][1] -= 1
        return
    lock_path = os.path.join(real, LOCK_FILE)
    for _ in range(20):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise _busy(out_dir, holder) from None
        try:  # the previous holder may have removed the file between our open and flock: lock the new one
            st, mine = os.stat(lock_path), os.fstat(fd)
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    else:
        raise GenetRuntimeError(f"{out_dir}: cannot lock {LOCK_FILE}: the file keeps being replaced")
    try:
        info = json.dumps({"pid": os.getpid(), "command": command,
                           "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        with _held_guard:
            _held[real] = [me, 0]
        try:
            yield out
        finally:
            with _held_guard:
                _held.pop(real, None)
            emptied = bool(created) and os.listdir(real) == [LOCK_FILE]
            if emptied:  # a command that stopped before writing anything leaves no folder behind
                with contextlib.suppress(OSError):
                    os.unlink(lock_path)
            else:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    if emptied:
        for folder in created:  # deepest first; stops at the first that is not empty
            try:
                os.rmdir(folder)
            except OSError:
                break
