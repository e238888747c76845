"""Backend ``mininet``: two Mininet hosts on a LinuxBridge, bandwidth replayed from the trace with htb.

Topology (k = a free index, names carry the ``gt-`` prefix so cleanup finds them)::

    gt-<k>e (emulated side, 100.64.k.2) -- gt-<k>s (LinuxBridge) -- gt-<k>h (host side, 100.64.k.1)

No Open vSwitch and no controller are needed. The bottleneck is shaped on
the bridge's ports: the egress of the port facing the host side carries the
uplink, the port facing the emulated side the downlink. Each port gets
``htb`` (root 5:, class 5:1, burst 15 kB as Mininet's TCIntf) and a leaf
queue (the hosts' interfaces get ``gso_max_segs 1``, so no TCP super-packets: a packet limit counts
1500-byte packets, as Mahimahi's queues do): ``pfifo limit N`` (droptail packets), ``bfifo limit B`` (droptail
bytes), ``pfifo_head_drop limit N`` (drophead packets), Linux ``codel`` / ``pie``
(when the kernel has them) or a 100000-packet pfifo for ``infinite``. A thread replays the trace: at every sample boundary
it runs ``tc class change ... htb rate`` (the queue keeps its packets), looping
unless ``once``. This is a fluid approximation, not Mahimahi's per-packet
delivery opportunities; use the netns backend for those.

Logs (``uplink_log`` / ``downlink_log``): htb logs nothing, so the backend captures each logged
direction on the bridge's two ports (arrival at the port it enters by, departure after the qdisc at
the port it leaves by) and writes an mm-link-format log from that capture when the link closes
(:mod:`emulation.bridge_capture`): the same log, read by the same metric code, as the other backends.

Delay and loss need netem. Kernels without it (like the CI machine's) get a
clear :class:`~emulation.config.EmulationError` pointing to the netns
backend or the Vagrant VM, never a silently ignored option.

Mininet is Debian's ``mininet`` package; its module lives in
``/usr/lib/python3/dist-packages``, appended to ``sys.path`` only when this
backend is used.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import heapq
import os
import subprocess
import sys
import threading
import time

from emulation.config import EmulationError, LinkSpec, QueueSpec, TraceLike
from emulation.endpoint import Endpoint
from emulation.resources import (RunRecord, allocate_host_index, cleanup, load_records, release, state_lock)
from emulation.sysnet import is_root, process_start_time

DIST_PACKAGES = "/usr/lib/python3/dist-packages"
HTB_BURST = "15k"
INFINITE_QUEUE_PACKETS = 100000
MIN_RATE_KBIT = 1  # htb cannot be set to 0; a 0-Mbit/s sample becomes 1 kbit/s


def import_mininet():
    """Import Mininet (from Debian's dist-packages if the venv lacks it); raise EmulationError if absent."""
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        if os.path.isdir(os.path.join(DIST_PACKAGES, "mininet")) and DIST_PACKAGES not in sys.path:
            sys.path.append(DIST_PACKAGES)
        try:
            import mininet.net  # noqa: F401
        except ImportError:
            raise EmulationError("Mininet is not installed: apt-get install mininet (scripts/provision.sh does it); "
                                 "or use --backend netns") from None
    import mininet
    return mininet


def mininet_problem() -> str | None:
    """Why the mininet backend cannot run here (None: it can)."""
    if not is_root():
        return "the mininet backend needs root"
    try:
        import_mininet()
    except EmulationError as exc:
        return str(exc)
    for tool in ("brctl", "tc", "mnexec"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            return f"the mininet backend needs `{tool}` (apt-get install mininet bridge-utils iproute2)"
    return None


def kernel_has_netem() -> bool:
    """Try a netem qdisc on the loopback of a throwaway namespace of ours."""
    ns = f"gt-netem-{os.getpid():x}"
    try:
        if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode:
            return False
        res = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                              "delay", "1ms"], capture_output=True)
        return res.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def require_netem() -> None:
    """Raise the backend's clear error when delay or loss is asked for and this kernel has no netem."""
    if not kernel_has_netem():
        raise EmulationError(
            "the mininet backend adds delay and loss with netem, and this kernel has no netem (sch_netem): "
            "use --backend netns (delay and loss in user space, the default) or run in the Vagrant VM, "
            "whose kernel has netem")


def rate_trace(source: TraceLike):
    """The rate :class:`~traces.Trace` to replay (a number is a constant rate, 1-s samples)."""
    from pathlib import Path
    from traces.io import read_trace
    from traces.trace import Trace
    if isinstance(source, Trace):
        return source
    if isinstance(source, (int, float)) and not isinstance(source, bool):
        return Trace.constant(float(source), 1.0)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        return read_trace(source)
    raise BadInputError(f"mininet backend: cannot replay {source!r} (expected a trace file, a Trace or Mbit/s)")


def leaf_qdisc(queue: QueueSpec) -> list[str]:
    if queue.kind == "infinite":
        return ["pfifo", "limit", str(INFINITE_QUEUE_PACKETS)]
    if queue.packets and queue.bytes:
        raise BadInputError("mininet backend: a queue takes packets= or bytes=, not both")
    if queue.kind == "codel":  # Linux's codel qdisc (limit in packets)
        if not queue.packets:
            raise BadInputError("mininet backend: codel needs packets= (Linux codel's limit counts packets)")
        return ["codel", "limit", str(queue.packets), "target", f"{queue.target_ms}ms",
                "interval", f"{queue.interval_ms}ms"]
    if queue.kind == "pie":  # Linux's pie qdisc (limit in packets; its own, draft-conformant units)
        if not queue.packets:
            raise BadInputError("mininet backend: pie needs packets= (Linux pie's limit counts packets)")
        return ["pie", "limit", str(queue.packets), "target", f"{queue.qdelay_ref_ms}ms"]
    if queue.kind == "droptail":
        return ["pfifo", "limit", str(queue.packets)] if queue.packets else ["bfifo", "limit", str(queue.bytes)]
    if queue.bytes:
        raise BadInputError("mininet backend: drophead needs packets= (Linux pfifo_head_drop counts packets)")
    return ["pfifo_head_drop", "limit", str(queue.packets)]


def tc(*args: str) -> None:
    res = subprocess.run(["tc"] + list(args), capture_output=True, text=True)
    if res.returncode:
        raise EmulationError(f"`tc {' '.join(args)}` failed: {res.stderr.strip()}")


class MininetLink:
    """A running Mininet link; use through :class:`emulation.emulator.LinkEmulator`."""

    backend = "mininet"

    def __init__(self, spec: LinkSpec, uplink: TraceLike, downlink: TraceLike):
        self.spec = spec
        self.uplink_trace = rate_trace(uplink)
        self.downlink_trace = rate_trace(downlink)
        leaf_qdisc(spec.uplink.queue)
        leaf_qdisc(spec.downlink.queue)
        self.needs_netem = spec.delay_ms > 0 or spec.uplink.loss_rate > 0 or spec.downlink.loss_rate > 0
        self.net = None
        self.record: RunRecord | None = None
        self.emulated: Endpoint | None = None
        self.host: Endpoint | None = None
        self.stats: dict = {"rate_changes": 0}
        self.run_name = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        #: time.monotonic() at trace t = 0 (set when the replay starts)
        self.replay_start_monotonic: float | None = None
        self._captures: dict = {}  # direction -> BridgeCapture (logged directions)
        self._init_epoch_ns = 0

    def start(self) -> "MininetLink":
        problem = mininet_problem()
        if problem:
            raise EmulationError(problem)
        if self.needs_netem:
            require_netem()
        import_mininet()
        from mininet.log import setLogLevel
        from mininet.net import Mininet
        from mininet.nodelib import LinuxBridge
        setLogLevel("error")
        cleanup(by_name=False)  # leftovers of runs whose owner died (SIGKILL)
        with state_lock():
            k = allocate_host_index([r for r in load_records() if r.owner_alive()])
            self.run_name = f"gt-{k}m"
            sw, emu, hst = f"gt-{k}s", f"gt-{k}e", f"gt-{k}h"
            self.record = RunRecord(self.run_name, "mininet", host_index=k,
                                    links=[sw, f"{sw}-eth1", f"{sw}-eth2"])
            self.record.save()
        self.k = k
        try:
            net = Mininet(topo=None, switch=LinuxBridge, controller=None, build=False,
                          ipBase=f"100.64.{k}.0/24", autoSetMacs=True)
            self.net = net
            s = net.addSwitch(sw, dpid=str(k))
            e = net.addHost(emu, ip=f"100.64.{k}.2/24")
            h = net.addHost(hst, ip=f"100.64.{k}.1/24")
            net.addLink(e, s)  # gt-<k>s-eth1 faces the emulated side
            net.addLink(h, s)  # gt-<k>s-eth2 faces the host side
            net.build()
            net.start()
            for node in (e, h):  # no TSO/GSO super-packets: the queue's packet limit counts 1500-byte packets
                for intf in node.intfNames():
                    if intf != "lo":
                        node.cmd(f"ip link set dev {intf} gso_max_segs 1")
            with state_lock():
                self.record.pids = [[p, process_start_time(p) or 0] for p in (e.pid, h.pid)]
                self.record.save()
            self.ports = {"uplink": f"{sw}-eth2", "downlink": f"{sw}-eth1"}
            for direction, d in (("uplink", self.spec.uplink), ("downlink", self.spec.downlink)):
                dev = self.ports[direction]
                trace = self.uplink_trace if direction == "uplink" else self.downlink_trace
                tc("qdisc", "add", "dev", dev, "root", "handle", "5:0", "htb", "default", "1")
                tc("class", "add", "dev", dev, "parent", "5:0", "classid", "5:1", "htb",
                   "rate", f"{self._kbit(trace.bandwidth_mbps[0])}kbit", "burst", HTB_BURST)
                if self.needs_netem:
                    limit = d.queue.packets or INFINITE_QUEUE_PACKETS
                    tc("qdisc", "add", "dev", dev, "parent", "5:1", "handle", "10:", "netem",
                       "delay", f"{self.spec.delay_ms}ms", "loss", f"{100 * d.loss_rate}%", "limit", str(limit))
                else:
                    leaf = leaf_qdisc(d.queue)
                    try:
                        tc("qdisc", "add", "dev", dev, "parent", "5:1", "handle", "10:", *leaf)
                    except EmulationError as exc:
                        if "unknown" in str(exc):
                            raise EmulationError(f"this kernel has no {leaf[0]} qdisc for the {direction} "
                                                 f"{d.queue.kind} queue; use --backend netns (all queues in "
                                                 "user space)") from None
                        raise
            from emulation.bridge_capture import BridgeCapture
            if self.spec.uplink.log_path:  # uplink: arrives by the emulated side's port, leaves by the host's
                self._captures["uplink"] = BridgeCapture(self.ports["downlink"], self.ports["uplink"],
                                                         f"100.64.{k}.2")
            if self.spec.downlink.log_path:
                self._captures["downlink"] = BridgeCapture(self.ports["uplink"], self.ports["downlink"],
                                                           f"100.64.{k}.1")
        except BaseException:
            self.close()
            raise
        self._init_epoch_ns = time.time_ns()
        self.host = Endpoint("host", f"100.64.{k}.1", f"/proc/{h.pid}/ns/net")
        self.emulated = Endpoint("emulated", f"100.64.{k}.2", f"/proc/{e.pid}/ns/net",
                                 env={"MAHIMAHI_BASE": f"100.64.{k}.1"})
        self._thread = threading.Thread(target=self._replay, name=f"{self.run_name}-replay", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _kbit(mbps: float) -> int:
        return max(MIN_RATE_KBIT, int(round(mbps * 1000)))

    def _replay(self) -> None:
        """Change the htb rates at every sample boundary of both traces (looping unless once).

        Sample i holds from t[i] to t[i+1]; the trace loops with period t[-1] (a trace of
        duration 0 keeps its only rate).
        """
        start = self.replay_start_monotonic = time.monotonic()
        traces = {"uplink": self.uplink_trace, "downlink": self.downlink_trace}
        times = {d: tr.timestamps_s - tr.timestamps_s[0] for d, tr in traces.items()}
        events: list = [(0.0, d, 0, 0) for d in traces]
        heapq.heapify(events)
        end_s = min(tr.duration_s for tr in traces.values()) if self.spec.once else None
        current: dict = {}
        while events and not self._stop.is_set():
            when, direction, loop, i = heapq.heappop(events)
            if end_s is not None and when >= end_s:
                break
            delay = start + when - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            kbit = self._kbit(traces[direction].bandwidth_mbps[i])
            if current.get(direction) != kbit:
                try:
                    tc("class", "change", "dev", self.ports[direction], "parent", "5:0", "classid", "5:1", "htb",
                       "rate", f"{kbit}kbit", "burst", HTB_BURST)
                except EmulationError as exc:
                    if not self._stop.is_set():
                        self.stats["error"] = str(exc)  # the thread cannot raise into the caller
                    return
                current[direction] = kbit
                self.stats["rate_changes"] += 1
            t = times[direction]
            period = float(t[-1])
            if period <= 0:
                continue
            if i + 1 <= len(t) - 2:
                heapq.heappush(events, (loop * period + float(t[i + 1]), direction, loop, i + 1))
            else:
                heapq.heappush(events, ((loop + 1) * period, direction, loop + 1, 0))
        if end_s is not None and not self._stop.is_set():
            if self._stop.wait(max(0.0, start + end_s - time.monotonic())):
                return
            self._finished.set()

    @property
    def running(self) -> bool:
        return self.net is not None and not self._finished.is_set()

    def wait_finished(self, timeout_s: float | None = None):
        return 77 if self._finished.wait(timeout_s) else None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for direction, cap in list(self._captures.items()):
            d = getattr(self.spec, direction)
            try:
                if self._init_epoch_ns:
                    self.stats[f"{direction}_capture"] = cap.write_log(
                        d.log_path, d, direction.capitalize(), self.spec.command_line, self._init_epoch_ns)
            finally:
                cap.stop()
            del self._captures[direction]
        for ep in (self.emulated, self.host):
            if ep is not None:
                ep.close()
        if self.net is not None:
            try:
                self.net.stop()
            except Exception:  # noqa: BLE001 - the record-based release below still runs
                pass
            self.net = None
        if self.record is not None:
            with state_lock():
                release(self.record)
            self.record = None
