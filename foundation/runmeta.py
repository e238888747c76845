"""The one run-metadata record: what ran, from which code, where, with which versions, when.

Bottom of the import graph (standard library only, plus :mod:`foundation.atomic`). Every command that
writes results — ``genet eval abr|cc``, ``genet train`` (beside its ``run.json``), ``genet emulate
shell``, and the sender, player and deploy runs — writes the same record as ``run-metadata.json`` in
its output directory::

    meta = write_run_metadata(out_dir, seed=args.seed, extra={"traces": ...})   # at the start
    ...                                                                          # the run
    meta.finish(out_dir, status=0)                                               # at the end

The file is written at the start (so a killed run still says what it was) and again at the end
with ``finished_utc`` and ``wall_s``. A rerun into the same directory (a resumed evaluation or
training) keeps the earlier runs' records in ``previous`` (oldest first): nothing is lost.

Fields (see :class:`RunMetadata`): the command line (``argv`` and a copyable ``command``), the
project's git commit when the installed code is a git checkout (``commit``, ``dirty``), else only
the package ``version``; the ``seed`` (an int, a list of ints, or None); the host (:class:`HostInfo`:
hostname, platform, kernel, machine, CPU count and model); the ``versions`` of Python and of every
installed distribution the project depends on (numpy, onnxruntime, flask, and — when installed —
numba, torch, ...), read from package metadata without importing anything; start and finish times
in UTC (ISO 8601, ``Z``); and free-form ``extra``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

#: The file every run writes into its output directory.
RUN_METADATA_FILE = "run-metadata.json"
#: Version of the record's layout (bumped when a field changes meaning).
SCHEMA = 1
#: The distribution name of this project.
DISTRIBUTION = "genet-testbed"
#: Versions recorded when the project's own metadata is not available (running from a source tree).
FALLBACK_DISTRIBUTIONS = ("numpy", "onnxruntime", "flask", "tqdm", "numba", "gymnasium", "torch", "onnx",
                          "scikit-optimize", "matplotlib", "paramiko")
#: The project's source root (the folder holding genet/, traces/, ...): a git checkout in development.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_command_override: list[str] | None = None


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second with a ``Z`` (e.g. ``2026-12-01T20:15:27Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@contextlib.contextmanager
def command_context(argv: list[str]) -> Iterator[None]:
    """Record ``argv`` (e.g. ``["genet", "eval", "abr", ...]``) as this process's command while the block
    runs; ``app.cli.main`` uses it so a command called as ``main([...])`` (tests, ``genet demo``'s
    stages) records the command it was given instead of the outer process's ``sys.argv``."""
    global _command_override
    previous, _command_override = _command_override, [str(a) for a in argv]
    try:
        yield
    finally:
        _command_override = previous


def current_argv() -> list[str]:
    """The command of this run: the one set by :func:`command_context`, else ``sys.argv`` (with the
    ``genet`` entry point's path shortened to ``genet``)."""
    if _command_override is not None:
        return list(_command_override)
    argv = [str(a) for a in sys.argv]
    if argv and Path(argv[0]).name == "genet":
        argv[0] = "genet"
    return argv


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str | None:
    """The commit of the installed project when its code is a git checkout (an editable install or a
    source tree), else None (a wheel install: see :func:`package_version`). Only the project's own
    checkout counts: an installed copy inside some other repository gives None."""
    if not (PROJECT_ROOT / ".git").exists() or not (PROJECT_ROOT / "foundation" / "runmeta.py").is_file():
        return None
    commit = _git("rev-parse", "HEAD")
    return commit if commit and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def git_dirty() -> bool | None:
    """Whether tracked files of the checkout differ from :func:`git_commit` (None: not a checkout)."""
    if git_commit() is None:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def package_version() -> str | None:
    """The installed version of genet-testbed (None when it is not installed, e.g. a bare source tree)."""
    from importlib import metadata
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(@]", req.strip(), maxsplit=1)[0]


def dependency_names() -> list[str]:
    """Distribution names of every dependency of the project, base and extras (test tools excepted),
    from its installed metadata — so the list is pyproject.toml's; :data:`FALLBACK_DISTRIBUTIONS` when
    the project is not installed."""
    from importlib import metadata
    try:
        reqs = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return list(FALLBACK_DISTRIBUTIONS)
    names: list[str] = []
    for req in reqs:
        if re.search(r"""extra\s*==\s*["']test["']""", req):
            continue
        name = _requirement_name(req)
        if name and name.lower() != DISTRIBUTION and name not in names:
            names.append(name)
    return names


def installed_versions(names: list[str] | tuple[str, ...] | None = None) -> dict[str, str]:
    """``{"python": ..., DISTRIBUTION: ..., name: version}`` for each installed distribution of ``names``
    (default: :func:`dependency_names`). Reads package metadata only: nothing is imported."""
    from importlib import metadata
    versions = {"python": platform.python_version()}
    own = package_version()
    if own:
        versions[DISTRIBUTION] = own
    for name in (dependency_names() if names is None else names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


@dataclass
class HostInfo:
    """The machine a run ran on.

    hostname: the host's name; platform: ``platform.platform()`` (OS, kernel, libc);
    kernel: the kernel release (``uname -r``); machine: the architecture (x86_64, aarch64);
    cpu_count: logical CPUs (count); cpu_model: the CPU's model name (None where unknown).
    """

    hostname: str
    platform: str
    kernel: str
    machine: str
    cpu_count: int | None
    cpu_model: str | None = None

    @classmethod
    def current(cls) -> "HostInfo":
        return cls(hostname=socket.gethostname(), platform=platform.platform(), kernel=platform.release(),
                   machine=platform.machine(), cpu_count=os.cpu_count(), cpu_model=_cpu_model())


@dataclass
class RunMetadata:
    """One run's metadata record (``run-metadata.json``).

    argv: the command as a list (``["genet", "eval", "abr", ...]``); command: the same, shell-quoted;
    commit: git commit of the project's code (None when it is not a git checkout); dirty: tracked files
    differed from it (None: not a checkout); version: the installed genet-testbed version (None: not
    installed); seed: the run's seed(s); host: :class:`HostInfo`; versions: Python's and the installed
    dependencies' versions; started_utc / finished_utc: ISO 8601 UTC (finished_utc None while running
    or after a crash); wall_s: seconds from start to finish (None while running); status: the run's
    exit status when it finished (None otherwise); extra: free-form fields of the command; previous:
    the records of earlier runs into the same directory, oldest first; schema: :data:`SCHEMA`.
    """

    argv: list[str]
    command: str
    commit: str | None
    dirty: bool | None
    version: str | None
    seed: int | list[int] | None
    host: HostInfo
    versions: dict[str, str]
    started_utc: str
    finished_utc: str | None = None
    wall_s: float | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    previous: list[dict[str, Any]] = field(default_factory=list)
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()

    @classmethod
    def collect(cls, seed: int | list[int] | tuple[int, ...] | None = None, extra: dict[str, Any] | None = None,
                argv: list[str] | None = None) -> "RunMetadata":
        """The record of the run starting now (``argv`` default: :func:`current_argv`)."""
        argv = current_argv() if argv is None else [str(a) for a in argv]
        if isinstance(seed, tuple):
            seed = list(seed)
        commit = git_commit()
        return cls(argv=argv, command=shlex.join(argv), commit=commit,
                   dirty=git_dirty() if commit else None, version=package_version(), seed=seed,
                   host=HostInfo.current(), versions=installed_versions(), started_utc=utc_now(),
                   extra=dict(extra or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run metadata") -> "RunMetadata":
        """The record from its JSON form; a missing or unknown field raises BadInputError naming it."""
        from foundation.errors import BadInputError
        if not isinstance(data, dict):
            raise BadInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise BadInputError(f"{where}: unknown field(s) {', '.join(unknown)}")
        required = {n for n, f in cls.__dataclass_fields__.items()
                    if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise BadInputError(f"{where}: missing field(s) {', '.join(missing)}")
        host = data["host"]
        try:
            host = HostInfo(**host)
        except TypeError as exc:
            raise BadInputError(f"{where}: field 'host': {exc}") from None
        return cls(**{**data, "host": host})

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write the record to ``out_dir/run-metadata.json`` atomically; returns the path."""
        from foundation.atomic import atomic_write_text
        path = Path(out_dir) / RUN_METADATA_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, default=str) + "\n")
        return path

    def finish(self, out_dir: str | os.PathLike, status: int | None = 0, **extra: Any) -> Path:
        """Mark the run finished now (``finished_utc``, ``wall_s``, ``status``, more ``extra`` fields)
        and rewrite ``out_dir/run-metadata.json``."""
        self.finished_utc = utc_now()
        self.wall_s = round(time.monotonic() - self._t0, 3)
        self.status = status
        self.extra.update(extra)
        return self.write(out_dir)


def read_run_metadata(path: str | os.PathLike) -> RunMetadata:
    """A ``run-metadata.json`` file (or the directory holding one) as a :class:`RunMetadata`."""
    from foundation.errors import BadInputError
    path = Path(path)
    if path.is_dir():
        path = path / RUN_METADATA_FILE
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise BadInputError(f"{path}: not valid JSON ({exc})") from None
    return RunMetadata.from_dict(data, where=str(path))


def write_run_metadata(out_dir: str | os.PathLike, seed: int | list[int] | tuple[int, ...] | None = None,
                       extra: dict[str, Any] | None = None, argv: list[str] | None = None) -> RunMetadata:
    """Collect the record of the run starting now and write it to ``out_dir/run-metadata.json``
    (creating ``out_dir``). An earlier run's record already there moves into ``previous`` (a
    record that cannot be read is kept there as ``{"unreadable": text}``). Returns the record; call
    :meth:`RunMetadata.finish` at the end of the run."""
    meta = RunMetadata.collect(seed=seed, extra=extra, argv=argv)
    path = Path(out_dir) / RUN_METADATA_FILE
    if path.is_file():
        text = path.read_text(errors="replace")
        try:
            old = json.loads(text)
            if not isinstance(old, dict):
                raise ValueError("not an object")
        except ValueError:
            old = {"unreadable": text}
        earlier = old.pop("previous", []) if isinstance(old.get("previous"), list) else []
        meta.previous = [*earlier, old]
    meta.write(out_dir)
    return meta


__all__ = ["RUN_METADATA_FILE", "HostInfo", "RunMetadata", "write_run_metadata", "read_run_metadata",
           "git_commit", "package_version", "installed_versions", "command_context", "current_argv", "utc_now"]
