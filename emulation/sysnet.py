"""Linux plumbing: TUN devices, entering network namespaces, process settings (ctypes, no dependencies).

TUN devices are opened with ``IFF_TUN`` and *with* the 4-byte packet-info
header (no ``IFF_NO_PI``), as Mahimahi does (testbeds.md §1.7): every read and
write carries it, which is why one delivery opportunity is 1504 bytes.
A TUN device is created in the network namespace the opening thread is in,
so :func:`in_netns` switches the calling thread there for the open.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import ctypes
import ctypes.util
import fcntl
import os
import struct
import subprocess
from contextlib import contextmanager
from typing import Iterator

from emulation.config import EmulationError

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
NETNS_DIR = "/var/run/netns"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Run the body with the calling thread in network namespace ``name`` (None: stay)."""
    if name is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(own)
    finally:
        os.close(own)


def open_tun(name: str) -> int:
    """Create (or attach to) TUN device ``name`` in the current namespace; return a non-blocking fd."""
    if len(name.encode()) > 15:
        raise BadInputError(f"interface name {name!r} is longer than 15 bytes")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise EmulationError(f"cannot open /dev/net/tun ({exc.strerror}); the netns backend needs root and TUN") \
            from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN))
    except OSError as exc:
        os.close(fd)
        raise EmulationError(f"TUNSETIFF {name}: {exc.strerror}") from None
    return fd


def set_parent_death_signal(signum: int) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


def set_timer_slack_ns(ns: int) -> None:
    """Make sleeps wake closer to their deadline (default slack is 50 us)."""
    _libc.prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0)


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip [-n NETNS] ARGS``; raise :class:`EmulationError` with its stderr on failure."""
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise EmulationError("the `ip` command (iproute2) is not installed") from None
    if check and res.returncode != 0:
        raise EmulationError(f"`{' '.join(cmd)}` failed: {res.stderr.strip()}")
    return res


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def list_links(prefix: str) -> list[str]:
    """Interfaces of the root namespace whose name starts with ``prefix``."""
    names = []
    for name in os.listdir("/sys/class/net"):
        if name.startswith(prefix):
            names.append(name)
    return sorted(names)


def is_root() -> bool:
    return os.geteuid() == 0


def process_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of ``pid``, None if it does not exist; guards against pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        return int(data.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None
