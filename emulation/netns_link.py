"""The user-space link process of the ``netns`` backend: ``python -m emulation.netns_link CONFIG.json``.

One single-threaded process owns both TUN devices (the emulated side's, in
its namespace, and the host side's) and moves packets between them through
two :class:`~emulation.link_queue.LinkQueue` directions, in the order of
Genet's ``mm-delay D mm-loss ... mm-link UP DOWN`` nesting (testbeds.md §1.4):

* uplink (emulated -> host): link queue -> Bernoulli loss -> delay;
* downlink (host -> emulated): delay -> Bernoulli loss -> link queue.

Time: Mahimahi's clock, integer ms since this process's start
(``CLOCK_MONOTONIC`` here, so wall-clock steps cannot disturb it; the log's
``# init timestamp`` is the matching epoch time). Delays are applied with ns
precision from the packet's departure (uplink: the opportunity's scheduled
ms) or read time (downlink) — Mahimahi's mm-delay rounds the arrival down to
its ms tick instead; the difference is below 1 ms per direction and gives
fractional ``delay_ms`` a meaning. The loop sleeps in ``select`` (us
timeouts, 1-ns timer slack) until the next packet, opportunity with a
non-empty queue, or delay release; idle opportunities are skipped in bulk.

Packet capture (optional, ``pcap_emulated``/``pcap_host`` in the config): every packet as it
crosses the emulated side's TUN device (uplink reads, downlink writes) or the host side's (uplink
writes, downlink reads), written here with its wall-clock time — exact and cheap, where a sniffer
would add a process and its own delays. See :mod:`emulation.pcap`.

Protocol with the parent: the config file holds the :class:`~emulation.config.LinkSpec`,
the device/namespace names and a stats path; the process prints ``ready`` on
stdout once both TUN devices exist, runs until SIGTERM/SIGINT, stdin EOF (the
parent died) or, with ``once``, the end of the trace (exit status 77 as
Mahimahi's ferry), then flushes the logs and writes the stats JSON.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sys
import time
from collections import deque

from emulation.config import LinkSpec
from emulation.link_queue import LinkQueue, write_log_header
from emulation.pcap import PcapWriter
from emulation.sysnet import in_netns, open_tun, set_parent_death_signal, set_timer_slack_ns

READ_BATCH = 64
EXIT_TRACE_FINISHED = 77


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop()


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


def run(config: dict) -> int:
    spec = LinkSpec.from_json(config["spec"])
    set_timer_slack_ns(1)
    _raise_priority(config.get("realtime", True))
    set_parent_death_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    with in_netns(config["netns_emulated"]):
        fd_e = open_tun(config["tun_emulated"])
    with in_netns(config.get("netns_host")):
        fd_h = open_tun(config["tun_host"])

    logs = []

    def open_log(direction_name, d):
        if not d.log_path:
            return None
        fh = open(d.log_path, "w", buffering=1 << 20)
        logs.append(fh)
        return fh

    up_log = open_log("Uplink", spec.uplink)
    down_log = open_log("Downlink", spec.downlink)
    rng = random.Random(spec.seed)
    delay_ns = int(round(spec.delay_ms * 1e6))
    up_loss, down_loss = spec.uplink.loss_rate, spec.downlink.loss_rate

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    init_ns = time.monotonic_ns()
    init_epoch_ns = time.time_ns()
    init_epoch_ms = init_epoch_ns // 1_000_000
    for fh, name, d in ((up_log, "Uplink", spec.uplink), (down_log, "Downlink", spec.downlink)):
        if fh is not None:
            write_log_header(fh, name, d.schedule.source, d.log_path, spec.command_line, d.queue, init_epoch_ms, 0)
    up = LinkQueue(spec.uplink.schedule, spec.uplink.queue, 0, spec.once, up_log, random.Random(rng.random()))
    down = LinkQueue(spec.downlink.schedule, spec.downlink.queue, 0, spec.once, down_log,
                     random.Random(rng.random()))
    end_ms = min(spec.uplink.schedule.period_ms, spec.downlink.schedule.period_ms) if spec.once else None
    up_delay: deque = deque()    # (release_ns, packet) after the uplink queue
    down_delay: deque = deque()  # (release_ns, packet) before the downlink queue
    stats = {"uplink_lost": 0, "downlink_lost": 0, "write_errors": 0}
    read, write, monotonic_ns = os.read, os.write, time.monotonic_ns
    rlist = [fd_e, fd_h, 0]
    pcap_e = PcapWriter(config["pcap_emulated"], init_ns, init_epoch_ns) if config.get("pcap_emulated") else None
    pcap_h = PcapWriter(config["pcap_host"], init_ns, init_epoch_ns) if config.get("pcap_host") else None
    logs += [w for w in (pcap_e, pcap_h) if w is not None]
    status = 0
    try:
        while True:
            now_ns = monotonic_ns()
            now_ms = (now_ns - init_ns) // 1_000_000
            # ---- when is the next thing to do?
            deadline_ns = None
            w = up.wait_ms(now_ms)
            if w is not None:
                deadline_ns = init_ns + (now_ms + w) * 1_000_000
            w = down.wait_ms(now_ms)
            if w is not None:
                t = init_ns + (now_ms + w) * 1_000_000
                deadline_ns = t if deadline_ns is None or t < deadline_ns else deadline_ns
            if up_delay and (deadline_ns is None or up_delay[0][0] < deadline_ns):
                deadline_ns = up_delay[0][0]
            if down_delay and (deadline_ns is None or down_delay[0][0] < deadline_ns):
                deadline_ns = down_delay[0][0]
            if end_ms is not None:
                t = init_ns + end_ms * 1_000_000
                deadline_ns = t if deadline_ns is None or t < deadline_ns else deadline_ns
            timeout = None if deadline_ns is None else max(0.0, (deadline_ns - now_ns) / 1e9)
            if timeout != 0.0:
                ready = select.select(rlist, (), (), timeout)[0]
            else:
                ready = select.select(rlist, (), (), 0)[0]
            now_ns = monotonic_ns()
            now_ms = (now_ns - init_ns) // 1_000_000
            # ---- uplink arrivals (emulated side -> link queue)
            if fd_e in ready:
                up.rationalize(now_ms)
                for _ in range(READ_BATCH):
                    try:
                        pkt = read(fd_e, 65536)
                    except BlockingIOError:
                        break
                    if pcap_e is not None:
                        pcap_e.write(now_ns, pkt)
                    up.enqueue(pkt, now_ms)
            # ---- downlink arrivals (host side -> delay line)
            if fd_h in ready:
                release = now_ns + delay_ns
                for _ in range(READ_BATCH):
                    try:
                        pkt = read(fd_h, 65536)
                    except BlockingIOError:
                        break
                    if pcap_h is not None:
                        pcap_h.write(now_ns, pkt)
                    down_delay.append((release, pkt))
            if 0 in ready and not os.read(0, 4096):
                break  # parent went away
            # ---- downlink: delay -> loss -> link queue (arrival at the release ms)
            while down_delay and down_delay[0][0] <= now_ns:
                release, pkt = down_delay.popleft()
                if down_loss and rng.random() < down_loss:
                    stats["downlink_lost"] += 1
                    continue
                rel_ms = (release - init_ns) // 1_000_000
                down.rationalize(rel_ms)
                down.enqueue(pkt, rel_ms)
            down.rationalize(now_ms)
            if down.departures:
                for _t, pkt in down.drain():
                    if pcap_e is not None:
                        pcap_e.write(now_ns, pkt)
                    try:
                        write(fd_e, pkt)
                    except OSError:
                        stats["write_errors"] += 1
            # ---- uplink: link queue -> loss -> delay
            up.rationalize(now_ms)
            if up.departures:
                for t, pkt in up.drain():
                    if up_loss and rng.random() < up_loss:
                        stats["uplink_lost"] += 1
                        continue
                    up_delay.append((init_ns + t * 1_000_000 + delay_ns, pkt))
            while up_delay and up_delay[0][0] <= now_ns:
                pkt = up_delay.popleft()[1]
                if pcap_h is not None:
                    pcap_h.write(now_ns, pkt)
                try:
                    write(fd_h, pkt)
                except OSError:
                    stats["write_errors"] += 1
            if end_ms is not None and now_ms >= end_ms:
                up.rationalize(end_ms)
                down.rationalize(end_ms)
                status = EXIT_TRACE_FINISHED
                break
    except _Stop:
        pass
    finally:
        if logs:  # account for the opportunities up to now, as Mahimahi's per-opportunity wakeups would
            end = (time.monotonic_ns() - init_ns) // 1_000_000
            for q in (up, down):
                try:
                    q.rationalize(end if end_ms is None else min(end, end_ms))
                except Exception:  # noqa: BLE001 - never lose the log flush below
                    pass
        for fh in logs:
            try:
                fh.flush()
                fh.close()
            except OSError:
                pass
        for name, q in (("uplink", up), ("downlink", down)):
            stats.update({f"{name}_arrived_packets": q.arrived_packets, f"{name}_departed_packets": q.departed_packets,
                          f"{name}_departed_bytes": q.departed_bytes, f"{name}_dropped_packets": q.dropped_packets,
                          f"{name}_dropped_bytes": q.dropped_bytes})
        stats["duration_ms"] = (time.monotonic_ns() - init_ns) // 1_000_000
        if config.get("stats_path"):
            from genet.atomic import atomic_write_text
            atomic_write_text(config["stats_path"], json.dumps(stats))
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m emulation.netns_link CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        config = json.load(fh)
    try:
        return run(config)
    except _Stop:
        return 0


if __name__ == "__main__":
    sys.exit(main())
