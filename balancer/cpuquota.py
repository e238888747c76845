"""A worker's service rate enforced by the kernel: a cgroup v1 ``cpu`` controller quota (root only).

A worker of rate r gets ``r x CPUS_PER_RATE`` CPUs (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), and a job of
size S burns ``S x time_unit_ms x CPUS_PER_RATE`` ms of CPU time (measured with the thread's own CPU clock), so
the kernel's throttling stretches it to ``S / r`` time units of wall-clock time: the job's work does not depend
on the rate, the quota does. Limits of the method: the quota is granted per period (:func:`period_us`, at least
:data:`MIN_PERIOD_US`), so a job's service time is exact only to about a period; and on a busy machine a worker
may get less CPU than its quota (it is then slower than its rate — a real effect, which pacing does not have).

Groups are ``<mount>/genet-lb/<name>-<pid>`` under the ``cpu`` hierarchy (``/sys/fs/cgroup/cpu`` or wherever
``/proc/mounts`` says); the worker moves itself in on start and out on exit, then removes its group;
:func:`cleanup_stale` removes the empty groups of workers that died (SIGKILL).

Standard library only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from foundation.errors import GenetRuntimeError

#: CPUs of quota per unit of service rate (rate 2 -> 0.1 CPU): Genet's rates [0.5, 1, 2] take 0.175 CPU in all.
CPUS_PER_RATE = 0.05
#: The shortest quota period (us): the kernel's shortest quota is 1000 us, and short periods cost overhead.
MIN_PERIOD_US = 10_000
#: The longest period the kernel accepts (us).
MAX_PERIOD_US = 1_000_000
#: The kernel's smallest quota (us).
MIN_QUOTA_US = 1_000
GROUP_DIR = "genet-lb"


def cpu_mount() -> Path | None:
    """Where the cgroup v1 ``cpu`` controller is mounted (None: not mounted)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "cgroup" and "cpu" in parts[3].split(","):
            return Path(parts[1])
    return None


def period_us(cpus: float) -> int:
    """The quota period for a quota of ``cpus`` CPUs: the quota must be at least :data:`MIN_QUOTA_US`."""
    need = MIN_QUOTA_US / cpus if cpus > 0 else MAX_PERIOD_US
    return int(min(MAX_PERIOD_US, max(MIN_PERIOD_US, need)))


def cleanup_stale(mount: Path | None = None) -> None:
    """Remove the groups of workers that are gone (empty groups whose pid no longer exists)."""
    mount = mount or cpu_mount()
    if mount is None:
        return
    base = mount / GROUP_DIR
    if not base.is_dir():
        return
    for d in base.iterdir():
        pid = d.name.rpartition("-")[2]
        if d.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                d.rmdir()
            except OSError:
                pass


class CpuQuota:
    """This process in a ``cpu`` group of ``rate x CPUS_PER_RATE`` CPUs (a context manager)."""

    def __init__(self, rate: float, name: str = "worker", cpus_per_rate: float = CPUS_PER_RATE) -> None:
        self.cpus = min(float(os.cpu_count() or 1), rate * cpus_per_rate)
        self.cpus_per_rate = cpus_per_rate
        self.name = name
        self.path: Path | None = None

    def __enter__(self) -> "CpuQuota":
        mount = cpu_mount()
        if mount is None:
            raise GenetRuntimeError("--enforce cgroup: no cgroup v1 'cpu' controller is mounted (use --enforce pacing)")
        if os.geteuid() != 0:
            raise GenetRuntimeError("--enforce cgroup needs root (it writes a cpu quota under "
                                    f"{mount}); use --enforce pacing")
        cleanup_stale(mount)
        base = mount / GROUP_DIR
        base.mkdir(exist_ok=True)
        self.root = mount
        self.path = base / f"{self.name}-{os.getpid()}"
        self.path.mkdir(parents=True, exist_ok=True)  # (the parent may just have been removed by a worker leaving)
        period = period_us(self.cpus)
        try:
            (self.path / "cpu.cfs_period_us").write_text(str(period))
            (self.path / "cpu.cfs_quota_us").write_text(str(max(MIN_QUOTA_US, int(round(period * self.cpus)))))
            (self.path / "cgroup.procs").write_text(str(os.getpid()))
        except OSError as exc:
            self.__exit__()
            raise GenetRuntimeError(f"{self.path}: cannot set the cpu quota ({exc.strerror})") from None
        self.period_us = period
        return self

    def __exit__(self, *exc) -> None:
        if self.path is None:
            return
        try:
            (self.root / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            pass
        for d in (self.path, self.path.parent):  # the shared parent too, when no other worker is in it
            try:
                d.rmdir()
            except OSError:
                pass
        self.path = None

    def burn(self, units: float, time_unit_ms: float) -> None:
        """Burn the CPU time of a job of ``units`` work units (``units x time_unit_ms x cpus_per_rate`` ms)."""
        need_s = units * time_unit_ms * self.cpus_per_rate / 1000.0
        end = time.thread_time() + need_s
        x = 0
        while time.thread_time() < end:
            for _ in range(200):
                x += 1


__all__ = ["CPUS_PER_RATE", "MIN_PERIOD_US", "CpuQuota", "cpu_mount", "period_us", "cleanup_stale"]
