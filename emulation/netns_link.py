"""The user-space link process of the ``netns`` backend: ``python -m emulation.netns_link -`` (config on stdin).

It owns both TUN devices (the emulated side's, in its namespace, and the host
side's) and moves packets between them through two
:class:`~emulation.link_queue.LinkQueue` directions, in the order of Genet's
``mm-delay D mm-loss ... mm-link UP DOWN`` nesting (testbeds.md §1.4):

* uplink (emulated -> host): link queue -> Bernoulli loss -> delay;
* downlink (host -> emulated): delay -> Bernoulli loss -> link queue.

Random losses go into the direction's log (when it has one) as ``T l 1 SIZE`` lines, the shape of
Mahimahi's ``d`` drop lines (Mahimahi itself never logs ``mm-loss``): the stage that applies the
loss writes them to ``LOG.random-loss`` and the first stage appends that file to the log when the
link closes (see :mod:`emulation.logstats`), so one log holds every way a packet was lost.

One process per Mahimahi ferry, as ``mm-delay D mm-link ...`` runs them: mm-link and mm-delay
each run one process per direction, so with a delay there are four stages — uplink link queue,
uplink delay, downlink delay, downlink link queue — joined by datagram socket pairs (without a
delay, two: one link queue per direction, as mm-link alone). The first stage is this process;
it forks the others after the devices exist. Each direction has a core on a multi-core machine,
and each stage keeps its own sub-millisecond timing, as Mahimahi's processes do.

Time, as Mahimahi keeps it (``mahimahi:src/util/timestamp.cc``, ``event_loop.cc``,
``delay_queue.cc``): an integer-millisecond clock (ms since the link started,
``CLOCK_MONOTONIC`` here so wall-clock steps cannot disturb it; the log's
``# init timestamp`` is the matching epoch time), and a loop that sleeps
``poll``-style for the whole number of ms until its next event *counted from
when it computes the wait* plus the kernel's 50-us timer slack — so, as in
Mahimahi, the instant within a millisecond at which a tick's packets go out
drifts with every wakeup and is re-phased by every packet arrival. The delay line stamps a packet with the ms
it arrives in and releases it in the ms ``delay_ms`` later (a fractional
``delay_ms`` is released at the first tick at or after arrival + delay_ms; mm-delay
takes whole ms only). The link runs at real-time priority (so a loaded machine does
not add its own jitter), for which the kernel applies no timer slack: the 50 us
Mahimahi gets by default are added to each timed wait instead.
Measured (issue 18): with ns-exact timers instead, BBR's delivery-rate samples
were exact, its bandwidth estimate never exceeded the link and its mean RTT was a
third below Mahimahi's; Mahimahi's sub-ms timing noise makes BBR's max filter
overestimate the link by a few percent, so it runs into its 2-BDP window, and so
does this link now. Idle opportunities are skipped in bulk (the loop wakes for
an opportunity only when that direction has a packet waiting).

Teardown drains the delay line: on SIGTERM/SIGINT a direction stops reading
new packets and keeps delivering what it had accepted (delay line and link
queue) for up to ``delay_ms`` + 100 ms (less when it is empty), so the far side sees its peer's last
packets (a TCP server sees its client's FIN). The end of a ``once`` trace
ends at once (exit status 77, as Mahimahi's ferry).

Packet capture (optional, ``pcap_emulated``/``pcap_host`` in the config): every packet as it
crosses the emulated side's TUN device (uplink reads, downlink writes) or the host side's (uplink
writes, downlink reads), written here with its wall-clock time — exact and cheap, where a sniffer
would add a process and its own delays; each stage writes its own part, merged in time order
at the end. See :mod:`emulation.pcap`.

Protocol with the parent: the config (one JSON line on stdin, or a file) holds the
:class:`~emulation.config.LinkSpec`, the device/namespace names and a stats path; the process
prints ``ready`` on stdout once both TUN devices exist, starts the trace's clock when the parent
writes a line on stdin (its addresses and routes are then in place) — or, with ``start_on_first_packet``,
at the first packet the emulated side sends after that — runs until SIGTERM/SIGINT, stdin EOF
(the parent died) or, with ``once``, the end of the trace, then flushes the logs and writes the
stats JSON.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import select
import shutil
import signal
import socket
import struct
import sys
import time
from collections import deque

from emulation.config import LinkSpec
from emulation.link_queue import LinkQueue, write_log_header
from emulation.pcap import PcapWriter
from emulation.sysnet import in_netns, open_tun, set_parent_death_signal, set_timer_slack_ns

READ_BATCH = 64
EXIT_TRACE_FINISHED = 77
#: Mahimahi's processes run with the kernel's default timer slack
MAHIMAHI_TIMER_SLACK_NS = 50_000
SIBLING_ENDED = -1
#: a stopping stage keeps delivering for its delay plus this (every stage gets the stop at the same time,
#: while on a loaded machine the packets may be a few ms behind in the pipeline); it ends earlier when empty
DRAIN_MARGIN_MS = 100
_stopping = [False]
_forward_stop_to: list[int] = []  # the uplink process passes a stop on to the downlink process at once


def _request_stop(signum, frame):
    _stopping[0] = True  # the wakeup fd (signal.set_wakeup_fd) ends the current select
    for pid in _forward_stop_to:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _wakeup_pipe() -> int:
    """A fresh signal wakeup pipe for this process (its read end)."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    return r


def _raise_priority(realtime: bool) -> str:
    """Keep a busy machine from adding ms of jitter to the link (root only; harmless when refused).

    ``realtime``: SCHED_RR at the lowest real-time priority (1), so a wakeup
    preempts normal tasks at once (the kernel's RT throttling still reserves
    5% of each CPU for them); otherwise, or when refused, nice -20.
    """
    if realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
            return "SCHED_RR"
        except (OSError, AttributeError):
            pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -20)
        return "nice -20"
    except OSError:
        return "default"


class PassThrough:
    """The link-queue interface without a link (a delay stage): every packet leaves the ms it arrives."""

    def __init__(self) -> None:
        self.departures: list = []
        self.arrived_packets = self.departed_packets = self.departed_bytes = 0
        self.dropped_packets = self.dropped_bytes = 0

    def enqueue(self, packet: bytes, now_ms: int) -> bool:
        self.departures.append((now_ms, packet))
        return True

    def rationalize(self, now_ms: int) -> None:
        pass

    def wait_ms(self, now_ms: int) -> int | None:
        return 0 if self.departures else None

    def drain(self) -> list:
        out = self.departures
        self.departures = []
        self.arrived_packets += len(out)
        self.departed_packets += len(out)
        self.departed_bytes += sum(len(p) for _t, p in out)
        return out


def forward(queue, src: int, dst: int, *, delay_ms: float, loss_rate: float, rng: random.Random,
            delay_first: bool, init_ns: int, end_ms: int | None, pcap_in=None, pcap_out=None,
            watch_fds: tuple[int, ...] = (), wake_fd: int | None = None, src_external: bool = True,
            late_s: float = 0.0, loss_log=None, precise: bool = False) -> tuple[int, dict]:
    """One stage: move packets from ``src`` to ``dst`` until stopped; return (status, counters).

    queue: the direction's :class:`LinkQueue`, or a :class:`PassThrough` (a delay stage)
    delay_first: downlink order (delay -> loss -> queue), else uplink (queue -> loss -> delay)
    src_external: ``src`` is a TUN device (stop reading it when draining), not the previous stage's socket
    late_s: added to every timed sleep — the kernel's timer slack, which it applies to Mahimahi's
            (normal-priority) poll but not to a real-time process's select
    watch_fds: fds whose EOF ends the loop at once: stdin (the parent died: status 0) or a pipe the
               other direction's process holds open (it ended: status SIBLING_ENDED)
    wake_fd: the signal wakeup pipe; after a signal the loop drains (module docstring)
    loss_log: a text file for the ``T l 1 SIZE`` line of each random loss (None: not logged)
    precise: the precise clock (:data:`emulation.config.CLOCKS`): time in fractional ms (ns-resolution), a
             delayed packet leaves at arrival + ``delay_ms`` exactly, waits are not rounded up to whole ms
    """
    read, write, monotonic_ns, sel = os.read, os.write, time.monotonic_ns, select.select
    line: deque = deque()  # the delay line: (release_ms, packet)
    lost = write_errors = 0
    rlist = [src, *watch_fds] + ([wake_fd] if wake_fd is not None else [])
    drain_until = None
    status = 0
    enqueue, rationalize, wait_ms = queue.enqueue, queue.rationalize, queue.wait_ms
    ceil = (lambda x: x) if precise else math.ceil

    def clock_ms(ns: int):  # Mahimahi: whole ms since the start; precise: fractional ms
        return (ns - init_ns) / 1e6 if precise else (ns - init_ns) // 1_000_000

    while True:
        now_ms = clock_ms(monotonic_ns())
        if _stopping[0] and drain_until is None:
            drain_until = now_ms + math.ceil(delay_ms) + DRAIN_MARGIN_MS
            if src_external:
                rlist = [fd for fd in rlist if fd != src]
        if drain_until is not None and (now_ms >= drain_until or (
                not line and queue.wait_ms(now_ms) is None and (src_external or not sel([src], (), (), 0)[0]))):
            break
        # ---- how many whole ms until the next event (Mahimahi: poll(wait_time()), counted from now)
        w = wait_ms(now_ms)
        if line:
            d = max(0, ceil(line[0][0]) - now_ms)
            w = d if w is None or d < w else w
        if end_ms is not None:
            d = max(0, end_ms - now_ms)
            w = d if w is None or d < w else w
        if drain_until is not None:
            d = max(0, drain_until - now_ms)
            w = d if w is None or d < w else w
        ready = sel(rlist, (), (), None if w is None else (w / 1000.0 + late_s if w else 0.0))[0]
        now_ns = monotonic_ns()
        now_ms = clock_ms(now_ns)
        if ready:
            if src in ready:
                if delay_first:
                    release = now_ms + delay_ms
                    for _ in range(READ_BATCH):
                        try:
                            pkt = read(src, 65536)
                        except BlockingIOError:
                            break
                        if pcap_in is not None:
                            pcap_in.write(now_ns, pkt)
                        line.append((release, pkt))
                else:
                    rationalize(now_ms)
                    for _ in range(READ_BATCH):
                        try:
                            pkt = read(src, 65536)
                        except BlockingIOError:
                            break
                        if pcap_in is not None:
                            pcap_in.write(now_ns, pkt)
                        enqueue(pkt, now_ms)
            if wake_fd is not None and wake_fd in ready:
                try:
                    read(wake_fd, 4096)
                except BlockingIOError:
                    pass
            for fd in watch_fds:
                if fd in ready and fd in rlist and not read(fd, 4096):
                    if fd != 0 and drain_until is not None:  # the other direction finished its own drain
                        rlist.remove(fd)
                        continue
                    return 0 if fd == 0 else SIBLING_ENDED, {"lost": lost, "write_errors": write_errors}
        if delay_first:
            # ---- delay -> loss -> link queue (arrival in the ms the delay ends) -> the far side
            while line and line[0][0] <= now_ms:
                pkt = line.popleft()[1]
                if loss_rate and rng.random() < loss_rate:
                    lost += 1
                    if loss_log is not None:
                        loss_log.write(f"{int(now_ms)} l 1 {len(pkt)}\n")
                    continue
                rationalize(now_ms)
                enqueue(pkt, now_ms)
            rationalize(now_ms)
            if queue.departures:
                for _t, pkt in queue.drain():
                    if pcap_out is not None:
                        pcap_out.write(now_ns, pkt)
                    try:
                        write(dst, pkt)
                    except OSError:
                        write_errors += 1
        else:
            # ---- link queue -> loss -> delay (mm-delay stamps the ms it reads the packet in) -> the far side
            rationalize(now_ms)
            if queue.departures:
                release = now_ms + delay_ms
                for _t, pkt in queue.drain():
                    if loss_rate and rng.random() < loss_rate:
                        lost += 1
                        if loss_log is not None:
                            loss_log.write(f"{int(now_ms)} l 1 {len(pkt)}\n")
                        continue
                    line.append((release, pkt))
            while line and line[0][0] <= now_ms:
                pkt = line.popleft()[1]
                if pcap_out is not None:
                    pcap_out.write(now_ns, pkt)
                try:
                    write(dst, pkt)
                except OSError:
                    write_errors += 1
        if end_ms is not None and now_ms >= end_ms:
            rationalize(end_ms)
            status = EXIT_TRACE_FINISHED
            break
    return status, {"lost": lost, "write_errors": write_errors}


def _counters(name: str, q: LinkQueue, extra: dict) -> dict:
    return {f"{name}_lost": extra["lost"], f"{name}_write_errors": extra["write_errors"],
            f"{name}_arrived_packets": q.arrived_packets, f"{name}_departed_packets": q.departed_packets,
            f"{name}_departed_bytes": q.departed_bytes, f"{name}_dropped_packets": q.dropped_packets,
            f"{name}_dropped_bytes": q.dropped_bytes}


def merge_pcaps(out_path: str, parts: list[str]) -> None:
    """Merge pcap files (each in time order, same global header) into one, in time order."""
    hdr = 24
    rec = struct.Struct("<IIII")

    def records(path):
        with open(path, "rb") as fh:
            data = fh.read()
        off = hdr
        while off + rec.size <= len(data):
            sec, usec, incl, _o = rec.unpack_from(data, off)
            yield (sec, usec), data[off:off + rec.size + incl]
            off += rec.size + incl

    with open(parts[0], "rb") as fh:
        header = fh.read(hdr)
    tmp = out_path + ".tmp"
    with open(tmp, "wb", buffering=1 << 20) as out:
        out.write(header)
        for _key, blob in heapq.merge(*(records(p) for p in parts), key=lambda r: r[0]):
            out.write(blob)
    os.replace(tmp, out_path)
    for p in parts:
        os.unlink(p)


def run(config: dict) -> int:
    spec = LinkSpec.from_json(config["spec"])
    slack_ns = int(config.get("timer_slack_ns", MAHIMAHI_TIMER_SLACK_NS))
    set_timer_slack_ns(max(1, slack_ns))
    # a real-time task gets no timer slack from the kernel (fs/select.c): add Mahimahi's ourselves
    late_s = slack_ns / 1e9 if _raise_priority(config.get("realtime", True)) == "SCHED_RR" else 0.0
    set_parent_death_signal(signal.SIGTERM)
    wake_r = _wakeup_pipe()
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    with in_netns(config["netns_emulated"]):
        fd_e = open_tun(config["tun_emulated"])
    with in_netns(config.get("netns_host")):
        fd_h = open_tun(config["tun_host"])

    def open_log(d):
        return open(d.log_path, "w", buffering=1 << 20) if d.log_path else None

    up_log, down_log = open_log(spec.uplink), open_log(spec.downlink)
    rng = random.Random(spec.seed)
    up_loss_rng, down_loss_rng = random.Random(rng.random()), random.Random(rng.random())
    up_q_rng, down_q_rng = random.Random(rng.random()), random.Random(rng.random())

    end_ms = min(spec.uplink.schedule.period_ms, spec.downlink.schedule.period_ms) if spec.once else None
    precise = spec.clock == "precise"
    up_q = LinkQueue(spec.uplink.schedule, spec.uplink.queue, 0, spec.once, up_log, up_q_rng, spread=precise)
    down_q = LinkQueue(spec.downlink.schedule, spec.downlink.queue, 0, spec.once, down_log, down_q_rng,
                       spread=precise)
    ue, uh, de, dh = "pcap_emulated", "pcap_host", "pcap_emulated", "pcap_host"
    # stage: (name, queue, src, dst, log, options, pcap_in key, pcap_out key)
    if spec.delay_ms > 0:  # Mahimahi's four ferries: mm-link and mm-delay, one process per direction each
        up_w, up_r = _stage_socketpair()
        down_w, down_r = _stage_socketpair()
        stages = [
            ("uplink-link", up_q, fd_e, up_w, up_log, dict(delay_ms=0, loss_rate=0.0, delay_first=False), ue, None),
            ("uplink-delay", PassThrough(), up_r, fd_h, None,
             dict(delay_ms=spec.delay_ms, loss_rate=spec.uplink.loss_rate, delay_first=False,
                  src_external=False), None, uh),
            ("downlink-delay", PassThrough(), fd_h, down_w, None,
             dict(delay_ms=spec.delay_ms, loss_rate=spec.downlink.loss_rate, delay_first=True), dh, None),
            ("downlink-link", down_q, down_r, fd_e, down_log,
             dict(delay_ms=0, loss_rate=0.0, delay_first=True, src_external=False), None, de)]
    else:  # mm-link alone: one process per direction
        stages = [("uplink-link", up_q, fd_e, fd_h, up_log,
                   dict(delay_ms=0, loss_rate=spec.uplink.loss_rate, delay_first=False), ue, uh),
                  ("downlink-link", down_q, fd_h, fd_e, down_log,
                   dict(delay_ms=0, loss_rate=spec.downlink.loss_rate, delay_first=True), dh, de)]
    loss_rngs = {"uplink": up_loss_rng, "downlink": down_loss_rng}
    pcap_finals = sorted({config[k] for st in stages for k in st[6:8] if k and config.get(k)})
    directions = {"uplink": ("Uplink", spec.uplink), "downlink": ("Downlink", spec.downlink)}

    def run_stage(index: int, watch: tuple[int, ...], wake_fd: int, init_ns: int,
                  init_epoch_ns: int) -> tuple[int, dict]:
        name, queue, src, dst, log, opts, pin, pout = stages[index]
        for other in stages:
            if other[4] is not None and other[4] is not log:
                other[4].close()  # the other stages' logs (nothing written yet: closing writes nothing)
        direction = name.split("-")[0]
        if log is not None:  # the clock's start is known only now: each stage heads its own log
            title, d = directions[direction]
            write_log_header(log, title, d.schedule.source, d.log_path, spec.command_line, d.queue,
                             init_epoch_ns // 1_000_000, 0)
        pe = PcapWriter(f"{config[pin]}.{name}", init_ns, init_epoch_ns) if pin and config.get(pin) else None
        po = PcapWriter(f"{config[pout]}.{name}", init_ns, init_epoch_ns) if pout and config.get(pout) else None
        extra = {"lost": 0, "write_errors": 0}
        status = 1
        log_path = getattr(spec, direction).log_path
        loss_log = open(log_path + RANDOM_LOSS_SUFFIX, "w", buffering=1 << 16) if (
            opts["loss_rate"] and log_path) else None
        try:
            status, extra = forward(queue, src, dst, rng=loss_rngs[direction], init_ns=init_ns,
                                    end_ms=end_ms, pcap_in=pe, pcap_out=po, watch_fds=watch, wake_fd=wake_fd,
                                    late_s=0.0 if precise else late_s, loss_log=loss_log, precise=precise, **opts)
        finally:
            _finish(queue, log, init_ns, end_ms, [w for w in (pe, po, loss_log) if w is not None])
        return status, _counters(name, queue, extra)

    # Every other stage is forked before the clock starts (a fork of this process takes ms on a busy
    # machine: forked after t = 0, three of them delayed the sender's first packet past trace ms 5); each
    # waits on its start pipe for the clock's origin, and exits at once on its EOF (the link never started).
    children = []  # (pid, stats read end, alive read end)
    start_pipes = []  # write ends: the clock's origin goes to every child stage
    parent = os.getpid()
    for index in range(1, len(stages)):
        stats_r, stats_w = os.pipe()
        alive_r, alive_w = os.pipe()  # the stage holds alive_w: EOF = it ended
        start_r, start_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # ---- a child stage
            status = 1
            try:
                _forward_stop_to.clear()  # the first stage stops every stage
                for _pid, r1, r2 in children:
                    os.close(r1)
                    os.close(r2)
                for w in start_pipes:
                    os.close(w)
                os.close(stats_r)
                os.close(alive_r)
                os.close(start_w)
                set_parent_death_signal(signal.SIGTERM)
                if os.getppid() != parent:
                    os._exit(1)
                wake = _wakeup_pipe()  # a signal must not wake the uplink stage's select
                origin = _read_exactly(start_r, _CLOCK_ORIGIN.size)
                if origin is None:
                    os._exit(0)  # the link never started
                status, counters = run_stage(index, (), wake, *_CLOCK_ORIGIN.unpack(origin))
                with os.fdopen(stats_w, "w") as fh:
                    fh.write(json.dumps(counters))
            except BaseException:  # noqa: BLE001 - the traceback goes to the link's stderr
                import traceback
                traceback.print_exc()
                status = 1
            finally:
                os._exit(status)
        os.close(stats_w)
        os.close(alive_w)
        os.close(start_r)
        children.append((pid, stats_r, alive_r))
        start_pipes.append(start_w)
        _forward_stop_to.append(pid)

    def never_started() -> int:
        for w in start_pipes:
            os.close(w)
        for pid, stats_r, alive_r in children:
            os.close(stats_r)
            os.close(alive_r)
            os.waitpid(pid, 0)
        return 0

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    go = b""
    while not go.endswith(b"\n"):  # the trace starts (t = 0) when the parent has configured the devices
        chunk = os.read(0, 64)
        if not chunk:
            return never_started()  # the parent went away before starting the link
        go += chunk
    if config.get("start_on_first_packet"):
        # t = 0 at the emulated side's first packet (it stays in the device for the uplink stage to read at
        # ms 0); IPv6 is off on both devices, so nothing but the programs' own traffic starts it
        while not _stopping[0]:
            ready = select.select([fd_e, 0, wake_r], (), ())[0]
            if fd_e in ready:
                break
            if 0 in ready and not os.read(0, 64):
                return never_started()  # the parent went away before anything was sent
    init_ns = time.monotonic_ns()
    init_epoch_ns = time.time_ns()
    origin = _CLOCK_ORIGIN.pack(init_ns, init_epoch_ns)
    for w in start_pipes:
        try:
            os.write(w, origin)
        except OSError:
            pass  # that stage already ended: its exit status tells
        os.close(w)
    if _stopping[0]:
        _request_stop(signal.SIGTERM, None)
    # ---- the uplink link stage (this process)
    status, stats = 1, {}
    try:
        status, stats = run_stage(0, (0,) + tuple(c[2] for c in children), wake_r, init_ns, init_epoch_ns)
    finally:
        for pid in _forward_stop_to:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        codes = []
        for pid, stats_r, alive_r in children:
            with os.fdopen(stats_r) as fh:
                text = fh.read()
            os.close(alive_r)
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            try:
                stats.update(json.loads(text))
            except ValueError:
                print(f"a link stage failed (exit status {codes[-1]})", file=sys.stderr)
                status = status or 1
        if status == SIBLING_ENDED:
            status = EXIT_TRACE_FINISHED if codes and all(c == EXIT_TRACE_FINISHED for c in codes) else 1
            if status == 1:
                print(f"a link stage ended unexpectedly (exit statuses {codes})", file=sys.stderr)
        out = {}
        for direction in ("uplink", "downlink"):
            link_c = {k[len(direction) + 6:]: v for k, v in stats.items() if k.startswith(f"{direction}-link_")}
            delay_c = {k[len(direction) + 7:]: v for k, v in stats.items() if k.startswith(f"{direction}-delay_")}
            out[f"{direction}_lost"] = link_c.get("lost", 0) + delay_c.get("lost", 0)
            for k in ("arrived_packets", "departed_packets", "departed_bytes", "dropped_packets", "dropped_bytes"):
                out[f"{direction}_{k}"] = link_c.get(k, 0)
        out["write_errors"] = sum(v for k, v in stats.items() if k.endswith("_write_errors"))
        out["duration_ms"] = (time.monotonic_ns() - init_ns) // 1_000_000
        out["trace_start_epoch_s"] = init_epoch_ns / 1e9
        for d in (spec.uplink, spec.downlink):
            if d.log_path:
                append_random_losses(d.log_path)
        for final in pcap_finals:
            merge_pcaps(final, [f"{final}.{st[0]}" for st in stages if os.path.exists(f"{final}.{st[0]}")])
        if config.get("stats_path"):
            from foundation.atomic import atomic_write_text
            atomic_write_text(config["stats_path"], json.dumps(out))
    return status


#: Suffix of the file a stage writes its random-loss lines to (appended to the log at the end).
RANDOM_LOSS_SUFFIX = ".random-loss"


def append_random_losses(log_path: str) -> None:
    """Append the ``l`` lines of ``log_path`` + :data:`RANDOM_LOSS_SUFFIX` to the log; remove that file."""
    part = log_path + RANDOM_LOSS_SUFFIX
    if not os.path.exists(part):
        return
    try:
        with open(part, "rb") as src, open(log_path, "ab") as dst:
            shutil.copyfileobj(src, dst)
    finally:
        os.unlink(part)


#: The clock's origin a child stage waits for: (monotonic ns, epoch ns) at trace ms 0.
_CLOCK_ORIGIN = struct.Struct("<qq")


def _read_exactly(fd: int, n: int) -> bytes | None:
    """``n`` bytes from a blocking pipe, or None at EOF first."""
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _stage_socketpair() -> tuple[int, int]:
    """(write end, read end) between two stages: datagrams keep packet boundaries; a big buffer (~7,000
    full-size packets) so a burst never blocks the writer; non-blocking."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for sock in (a, b):
        for opt in (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
                break
            except OSError:
                continue
        sock.setblocking(False)
    return a.detach(), b.detach()


def _finish(q: LinkQueue, log, init_ns: int, end_ms: int | None, pcaps: list) -> None:
    """Account for the opportunities up to now (as Mahimahi's per-opportunity wakeups would), flush the files."""
    if log is not None:
        end = (time.monotonic_ns() - init_ns) // 1_000_000
        try:
            q.rationalize(end if end_ms is None else min(end, end_ms))
        except Exception:  # noqa: BLE001 - never lose the flush below
            pass
    for fh in ([log] if log is not None else []) + pcaps:
        try:
            fh.flush()
            fh.close()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m emulation.netns_link CONFIG.json|-  (-: one JSON line on stdin)", file=sys.stderr)
        return 2
    if argv[0] == "-":
        line = b""
        while not line.endswith(b"\n"):  # unbuffered: stdin stays the parent-death pipe afterwards
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return 0
            line += chunk
        config = json.loads(line)
    else:
        with open(argv[0]) as fh:
            config = json.load(fh)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
