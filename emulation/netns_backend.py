"""Backend ``netns``: a network namespace joined to the host side by TUN devices and a user-space link.

Layout (one link, run name ``gt-<pid>-<n>``, see :mod:`emulation.resources`)::

    emulated side: namespace <run>-e, TUN <run>-i = 100.64.k.2, default route via 100.64.k.1
        |  (uplink)   python -m emulation.netns_link  (downlink)  |
    host side: TUN <run>-o = 100.64.k.1 peer 100.64.k.2, in the root namespace (Mahimahi's layout,
               testbeds.md §1.7: the host's services are reachable from inside at $MAHIMAHI_BASE)
               or, with ``isolate_host=True``, in its own namespace <run>-h (then 100.64.0.1/.2)

No NAT and no IP forwarding: the emulated side reaches the host only (unlike
Mahimahi, which masquerades to the Internet). Addresses come from
100.64.0.0/16; in the root namespace a /24 nobody uses is picked per link so
several links run at once. Both TUN devices belong to the link process, so
they disappear with it even on SIGKILL; namespaces are removed by
:meth:`NetnsLink.close` or, after a crash, by :func:`emulation.resources.cleanup`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import warnings
from pathlib import Path

from emulation.config import EmulationError, LinkSpec
from emulation.endpoint import Endpoint
from emulation.resources import (RunRecord, cleanup, kill_pid, load_records, new_run_name, allocate_host_index,
                                 release, state_dir, state_lock)
from emulation.sysnet import NETNS_DIR, in_netns, ip, is_root, process_start_time
from emulation.backend_base import ProcessLink

READY_TIMEOUT_S = 15.0


def check_netns_requirements() -> None:
    """Raise :class:`EmulationError` naming what is missing for the netns backend."""
    if not is_root():
        raise EmulationError("the netns backend needs root (network namespaces and TUN devices); "
                             "run as root, or use the mahimahi backend as a non-root user")
    if not os.path.exists("/dev/net/tun"):
        raise EmulationError("/dev/net/tun is missing: load the tun module (modprobe tun)")
    try:
        subprocess.run(["ip", "-V"], capture_output=True, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError):
        raise EmulationError("the `ip` command (iproute2) is missing") from None


def _disable_ipv6(dev: str, netns: str | None) -> None:
    """Keep IPv6 router solicitations etc. off the emulated link (they would show up in the logs)."""
    with in_netns(netns):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6", "w") as fh:
                fh.write("1")
        except OSError:
            pass  # no IPv6 in this kernel: nothing to disable


class NetnsLink(ProcessLink):
    """A running netns link; use through :class:`emulation.emulator.LinkEmulator`.

    spec: the validated link
    isolate_host: put the host side in its own namespace instead of the root one (default False)
    realtime: run the link process at SCHED_RR priority 1 (default True; see netns_link._raise_priority)
    pcap_dir: write emulated.pcap, host.pcap and link.json (addresses) there (default None: no capture)
    start_on_first_packet: the trace's clock (t = 0) starts when the emulated side sends its first packet
        (a player's first SYN) instead of when the devices are configured (default False); the start's
        wall-clock time is ``stats["trace_start_epoch_s"]`` either way
    """

    backend = "netns"

    def __init__(self, spec: LinkSpec, isolate_host: bool = False, realtime: bool = True,
                 pcap_dir: str | os.PathLike | None = None, start_on_first_packet: bool = False):
        if pcap_dir is not None and not Path(pcap_dir).is_dir():
            raise FileNotFoundError(f"pcap directory {pcap_dir} does not exist")
        self.pcap_dir = Path(pcap_dir) if pcap_dir is not None else None
        self.spec = spec
        self.realtime = realtime
        self.start_on_first_packet = start_on_first_packet
        self.isolate_host = isolate_host
        self.run_name = new_run_name()
        self.record: RunRecord | None = None
        self.proc: subprocess.Popen | None = None
        self.stats: dict = {}
        self.emulated: Endpoint | None = None
        self.host: Endpoint | None = None
        self.exit_status: int | None = None
        #: why the link process failed on its own during the run (None: it did not)
        self.error: str | None = None
        self._tmp_files: list[Path] = []

    @property
    def netns_emulated(self) -> str:
        return f"{self.run_name}-e"

    @property
    def netns_host(self) -> str | None:
        return f"{self.run_name}-h" if self.isolate_host else None

    def start(self) -> "NetnsLink":
        check_netns_requirements()
        cleanup(by_name=False)  # leftovers of runs whose owner died (SIGKILL)
        run = self.run_name
        rec = RunRecord(run, "netns")
        with state_lock():
            if self.isolate_host:
                host_addr, emu_addr = "100.64.0.1", "100.64.0.2"
            else:
                rec.host_index = allocate_host_index([r for r in load_records() if r.owner_alive()])
                host_addr, emu_addr = f"100.64.{rec.host_index}.1", f"100.64.{rec.host_index}.2"
                rec.links = [f"{run}-o"]
            rec.netns = [self.netns_emulated] + ([self.netns_host] if self.isolate_host else [])
            rec.save()
        self.record = rec
        try:
            for ns in rec.netns:
                ip("netns", "add", ns)
                ip("link", "set", "lo", "up", netns=ns)
            self._start_link_process()
            tun_o, tun_i = f"{run}-o", f"{run}-i"
            hns = self.netns_host
            _disable_ipv6(tun_o, hns)
            _disable_ipv6(tun_i, self.netns_emulated)
            ip("addr", "add", f"{host_addr}/32", "peer", f"{emu_addr}/32", "dev", tun_o, netns=hns)
            ip("link", "set", tun_o, "mtu", "1500", "txqueuelen", "1000", "up", netns=hns)
            ip("addr", "add", f"{emu_addr}/32", "peer", f"{host_addr}/32", "dev", tun_i, netns=self.netns_emulated)
            ip("link", "set", tun_i, "mtu", "1500", "txqueuelen", "1000", "up", netns=self.netns_emulated)
            ip("route", "add", "default", "via", host_addr, "dev", tun_i, netns=self.netns_emulated)
            # trace t = 0 now, with the link configured (a short --once trace cannot end while the devices are
            # being set up), or, with start_on_first_packet, at the emulated side's first packet after this
            self.proc.stdin.write(b"start\n")
            self.proc.stdin.flush()
        except BaseException:
            self.close()
            raise
        if self.pcap_dir is not None:
            (self.pcap_dir / "link.json").write_text(json.dumps(
                {"emulated_address": emu_addr, "host_address": host_addr, "run": run}))
        self.host = Endpoint("host", host_addr, os.path.join(NETNS_DIR, hns) if hns else None)
        self.emulated = Endpoint("emulated", emu_addr, os.path.join(NETNS_DIR, self.netns_emulated),
                                 env={"MAHIMAHI_BASE": host_addr})
        return self

    def _start_link_process(self) -> None:
        run = self.run_name
        d = state_dir()
        err_path, stats_path = d / f"{run}.link.err", d / f"{run}.stats.json"
        self._tmp_files += [err_path, stats_path]
        self._stats_path = stats_path
        cfg = {"spec": self.spec.to_json(), "tun_emulated": f"{run}-i", "netns_emulated": self.netns_emulated,
               "tun_host": f"{run}-o", "netns_host": self.netns_host, "stats_path": str(stats_path),
               "realtime": self.realtime, "start_on_first_packet": self.start_on_first_packet}
        if self.pcap_dir is not None:
            cfg["pcap_emulated"] = str(self.pcap_dir / "emulated.pcap")
            cfg["pcap_host"] = str(self.pcap_dir / "host.pcap")
        repo_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo_root, os.environ.get("PYTHONPATH", "")])}
        with open(err_path, "w") as err:
            # the config travels on stdin (no file another process's cleanup could remove before it is read)
            self.proc = subprocess.Popen([sys.executable, "-m", "emulation.netns_link", "-"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                                         start_new_session=True)
            self.proc.stdin.write(json.dumps(cfg).encode() + b"\n")
            self.proc.stdin.flush()
        self.record.pids.append([self.proc.pid, process_start_time(self.proc.pid) or 0])
        with state_lock():
            self.record.save()
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = b""
        while time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.1)[0]:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if line.strip() != b"ready":
            self.proc.kill()
            self.proc.wait()
            msg = err_path.read_text().strip().splitlines()
            raise EmulationError("the link process did not start: " + (msg[-1] if msg else "no output"))

    def close(self) -> None:
        """End the link process (it first delivers what its delay lines hold, up to delay_ms + 100 ms, then
        flushes its logs), the commands on both sides, namespaces, devices; remove the record.

        The link ends before the commands, so a far-side server still receives its client's last
        packets (and can finish by itself) instead of being killed while they are in flight."""
        if self.proc is not None:
            died_early = self.proc.poll()
            if died_early is None:
                kill_pid(self.proc.pid, timeout_s=10.0 + self.spec.delay_ms / 1000.0)
            self.proc.wait()
        self.close_endpoints()
        if self.proc is not None:
            self.exit_status = self.proc.returncode
            if died_early not in (None, 0, 77):  # the link itself failed while the run went on
                err_path = state_dir() / f"{self.run_name}.link.err"
                try:
                    lines = err_path.read_text().strip().splitlines()
                except OSError:
                    lines = []
                self.error = f"the link process of {self.run_name} failed (status {died_early}): " + \
                    (lines[-1] if lines else "no output")
                warnings.warn(self.error, RuntimeWarning, stacklevel=2)
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                self.stats = json.loads(self._stats_path.read_text())
            except (OSError, ValueError):
                self.stats = {}
        if self.record is not None:
            with state_lock():
                release(self.record)
            self.record = None
        for f in self._tmp_files:
            f.unlink(missing_ok=True)
