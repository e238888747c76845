"""Names, run records and leftover cleanup for everything the emulators create.

Naming scheme (predictable, so a cleanup never touches anything else):

* run name ``gt-<pid hex>-<n hex>`` (``n`` counts links opened by that process);
* namespaces ``<run>-e`` (emulated side) and ``<run>-h`` (host side, when isolated);
* TUN devices ``<run>-o`` (host side) and ``<run>-i`` (emulated side);
* Mininet objects ``<run>-s`` (bridge), ``<run>-h1``/``<run>-h2`` ... 

Every link first writes a record ``<state dir>/<run>.json`` (owner pid and its
start time, the link process pid, namespaces, devices) and only then creates
anything; the record is removed last. A record whose owner is gone marks a
leftover (the owner was killed with SIGKILL); so does a namespace or
root-namespace interface with one of our exact name shapes that no live record
claims (e.g. the state directory was wiped). :func:`cleanup` removes those: the
next link releases dead owners' runs automatically, ``genet emulate cleanup``
also sweeps by name.
State directory: ``$GENET_EMULATION_STATE_DIR`` or ``/run/genet-testbed``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import count
from pathlib import Path
from typing import Iterator

from emulation.sysnet import ip, list_links, list_netns, process_start_time
from foundation.atomic import atomic_write_text

PREFIX = "gt-"
_counter = count()


def state_dir() -> Path:
    d = Path(os.environ.get("GENET_EMULATION_STATE_DIR", "/run/genet-testbed"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_run_name() -> str:
    """A run name unique on this machine while this process lives (<= 12 chars, so devices fit IFNAMSIZ)."""
    return f"{PREFIX}{os.getpid():x}-{next(_counter) % 0x1000:x}"


@contextmanager
def state_lock() -> Iterator[None]:
    """Serialises record creation and cleanup between processes."""
    fh = open(state_dir() / ".lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


@dataclass
class RunRecord:
    """What one link created (written before creating it).

    run: run name (``gt-...``)
    backend: netns | mininet | mahimahi
    owner_pid / owner_start: the process that owns it (start time guards against pid reuse)
    netns: namespaces created
    links: root-namespace interfaces created
    pids: helper processes as [pid, start time] (link process...)
    host_index: the /24 used in 100.64.0.0/16 when the host side is the root namespace (0: none)
    """

    run: str
    backend: str
    owner_pid: int = field(default_factory=os.getpid)
    owner_start: int | None = field(default_factory=lambda: process_start_time(os.getpid()))
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    pids: list[list[int]] = field(default_factory=list)
    host_index: int = 0

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.run}.json"

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(asdict(self)))

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def owner_alive(self) -> bool:
        start = process_start_time(self.owner_pid)
        return start is not None and (self.owner_start is None or start == self.owner_start)


def load_records() -> list[RunRecord]:
    records = []
    for p in sorted(state_dir().glob(f"{PREFIX}*.json")):
        try:
            records.append(RunRecord(**json.loads(p.read_text())))
        except (json.JSONDecodeError, TypeError, OSError):
            p.unlink(missing_ok=True)  # a torn record: its resources are found by name below
    return records


def allocate_host_index(records: list[RunRecord]) -> int:
    """A free /24 index k in 1..254 for host-side addresses 100.64.k.1 (host) / 100.64.k.2 (emulated).

    Avoids indices of live records and any address or route of the root namespace in 100.64.k.0/24.
    Call under :func:`state_lock`.
    """
    used = {r.host_index for r in records}
    res = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True)
    text = res.stdout + routes.stdout
    for k in range(1, 255):
        if k not in used and f"100.64.{k}." not in text:
            return k
    raise RuntimeError("no free 100.64.k.0/24 block for the host side of a link (254 links running?)")


def kill_pid(pid: int, timeout_s: float = 2.0) -> None:
    """SIGTERM then SIGKILL one process we started."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process_start_time(pid) is None or _is_zombie(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_netns_processes(netns: str) -> None:
    """End every process still inside namespace ``netns`` (ours: it carries our prefix)."""
    res = ip("netns", "pids", netns, check=False)
    pids = [int(p) for p in res.stdout.split() if p.isdigit()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2.0
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if process_start_time(p) is not None and not _is_zombie(p)]
        if pids:
            time.sleep(0.02)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_netns(netns: str) -> None:
    if netns in list_netns():
        kill_netns_processes(netns)
        ip("netns", "delete", netns, check=False)


def remove_link(name: str) -> None:
    if os.path.exists(f"/sys/class/net/{name}"):
        ip("link", "delete", name, check=False)


def release(record: RunRecord) -> None:
    """Remove everything ``record`` lists, then the record."""
    for pid, start in record.pids:
        if process_start_time(pid) == start:  # still the process we started, not a reused pid
            kill_pid(pid)
    for ns in record.netns:
        remove_netns(ns)
    for name in record.links:
        remove_link(name)
    for p in state_dir().glob(f"{record.run}.*"):  # link config, stderr, stats files
        if p != record.path:
            p.unlink(missing_ok=True)
    record.remove()


@dataclass
class Leftovers:
    """Resources found with no live owner."""

    records: list[RunRecord] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.netns or self.links)

    def describe(self) -> str:
        parts = []
        if self.records:
            parts.append("runs " + ", ".join(r.run for r in self.records))
        if self.netns:
            parts.append("namespaces " + ", ".join(self.netns))
        if self.links:
            parts.append("interfaces " + ", ".join(self.links))
        return "; ".join(parts) or "nothing"


#: Exact shapes of the names we create (so a sweep by name never touches another tool's ``gt-`` objects).
NAME_PATTERNS = (re.compile(r"gt-[0-9a-f]+-[0-9a-f]+-[eoih]"),  # netns backend: namespaces and TUN devices
                 re.compile(r"gt-\d+[seh](-eth\d+)?"),              # mininet backend: bridge, hosts, ports
                 re.compile(r"gt-netem-[0-9a-f]+"))                 # the netem probe's namespace


def is_our_name(name: str) -> bool:
    return any(p.fullmatch(name) for p in NAME_PATTERNS)


def find_leftovers(include_live: bool = False, by_name: bool = True) -> Leftovers:
    """Our resources whose owner is dead (``include_live``: every one of ours).

    by_name: also sweep namespaces and root-namespace interfaces whose names have our exact
             shapes but that no live record claims (default True; automatic cleanups at link start
             use False and only release runs whose owner died)
    """
    records = load_records()
    live = [] if include_live else [r for r in records if r.owner_alive()]
    dead = [r for r in records if include_live or not r.owner_alive()]
    claimed_ns = {ns for r in live for ns in r.netns}
    claimed_links = {name for r in live for name in r.links}
    live_runs = {r.run for r in live}

    def claimed(name: str, claimed_set: set[str]) -> bool:
        return name in claimed_set or any(name.startswith(run + "-") for run in live_runs)

    if not by_name:
        return Leftovers(dead, [], [])
    dead_names = {n for r in dead for n in r.netns + r.links}
    netns = [ns for ns in list_netns() if is_our_name(ns) and ns not in dead_names and not claimed(ns, claimed_ns)]
    links = [n for n in list_links(PREFIX)
             if is_our_name(n) and n not in dead_names and not claimed(n, claimed_links)]
    return Leftovers(dead, netns, links)


def cleanup(include_live: bool = False, by_name: bool = True) -> Leftovers:
    """Remove leftovers (see :func:`find_leftovers`); return what was removed."""
    with state_lock():
        found = find_leftovers(include_live, by_name)
        for r in found.records:
            release(r)
        for ns in found.netns:
            remove_netns(ns)
        for name in found.links:
            remove_link(name)
        runs = {r.run for r in load_records()}
        for p in state_dir().glob(f"{PREFIX}*.*"):  # files of runs that no longer have a record
            if p.name.split(".", 1)[0] not in runs:
                p.unlink(missing_ok=True)
    return found
