"""Mahimahi-format link logs for the mininet backend, from packet captures on the bridge's ports.

The mininet backend's bottleneck is an ``htb`` qdisc on a bridge port's egress, which logs nothing, so
the log is built from what crosses the bridge: an ``AF_PACKET`` socket on the port the direction
enters by (its ingress: the packet *arrives* at the link) and one on the port it leaves by (its
egress; the kernel hands outgoing packets to packet sockets after the qdisc, so this is the
*departure*), both with kernel receive timestamps (``SO_TIMESTAMPNS``). Packets are matched across
the two by their first bytes (IP header and the start of the transport header: a bridge changes
nothing), in order. At close the log is written as ``mm-link`` writes it (:mod:`emulation.logstats`
reads it; the same metric code as every other backend):

* ``T + SIZE`` for every arrival and ``T - SIZE DELAY`` for every departure (DELAY = departure ms -
  arrival ms), SIZE = IP length + 4 (Mahimahi's TUN header, so the sizes read as the other backends');
* ``T # 1504`` for every delivery opportunity of the direction's schedule up to the last event (the
  rate htb is given: the log's capacity, used as the reward's normaliser);
* packets that arrive and never leave were dropped by the queue: no ``d`` lines (htb drops are not
  seen), so loss = 1 - departed / arrived bytes as for the other backends.

Times are integer ms since ``init_epoch_ns`` (the replay's start). Limits: a packet socket can itself
drop packets when its buffer overflows (8 MiB here; counted in ``stats["socket_drops"]``), and
segmentation offload can show TCP super-packets (sizes above 1504) on veth ports.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections import defaultdict, deque

from emulation.config import DirectionSpec
from emulation.link_queue import OPPORTUNITY_BYTES, write_log_header
from foundation.packets import TUN_HEADER_BYTES

ETH_P_ALL = 0x0003
ETH_HEADER_BYTES = 14
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SOL_PACKET = 263
PACKET_STATISTICS = 6
#: Bytes of each packet used to match it across the two ports (IPv4 header + transport header start).
MATCH_BYTES = 48
_TIMESPEC = struct.Struct("=qq")


class BridgeCapture:
    """Capture one direction of a bridged link: ``ingress_dev`` (where packets arrive from ``src_ip``)
    and ``egress_dev`` (where they leave, after the qdisc); :meth:`write_log` turns it into an mm-link log."""

    def __init__(self, ingress_dev: str, egress_dev: str, src_ip: str):
        self.src = socket.inet_aton(src_ip)
        self.socks = {}
        for role, dev in (("arrival", ingress_dev), ("departure", egress_dev)):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.bind((dev, 0))
            s.setblocking(False)
            self.socks[role] = s
        self.events: dict[str, list] = {"arrival": [], "departure": []}  # (epoch ns, key, log size)
        self.stats = {"socket_drops": 0}
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="bridge-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        by_fd = {s.fileno(): (role, s) for role, s in self.socks.items()}
        rlist = list(by_fd) + [self._wake_r]
        src = self.src
        while not self._stop.is_set():
            ready = select.select(rlist, (), (), 0.5)[0]
            for fd in ready:
                if fd == self._wake_r:
                    continue
                role, s = by_fd[fd]
                out = self.events[role]
                want_out = role == "departure"
                for _ in range(256):
                    try:
                        data, anc, _flags, addr = s.recvmsg(ETH_HEADER_BYTES + MATCH_BYTES, 64)
                    except (BlockingIOError, InterruptedError):
                        break
                    if (addr[2] == socket.PACKET_OUTGOING) != want_out or len(data) < ETH_HEADER_BYTES + 20:
                        continue
                    if data[12:14] != b"\x08\x00" or data[ETH_HEADER_BYTES + 12:ETH_HEADER_BYTES + 16] != src:
                        continue  # not IPv4 from this direction's sender (ARP, the other direction)
                    ts = next((_TIMESPEC.unpack_from(d) for lvl, typ, d in anc
                               if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS), None)
                    t_ns = ts[0] * 1_000_000_000 + ts[1] if ts else time.time_ns()
                    ip_len = int.from_bytes(data[ETH_HEADER_BYTES + 2:ETH_HEADER_BYTES + 4], "big")
                    out.append((t_ns, bytes(data[ETH_HEADER_BYTES:]), ip_len + TUN_HEADER_BYTES))

    def stop(self) -> None:
        """Stop capturing (drains what the sockets hold first)."""
        if self._stop.is_set():
            return
        time.sleep(0.05)  # the last departures' timestamps are taken; let the thread read them
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for s in self.socks.values():
            try:
                self.stats["socket_drops"] += struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
            except OSError:
                pass
            s.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def write_log(self, path: str, direction: DirectionSpec, name: str, command_line: str,
                  init_epoch_ns: int) -> dict:
        """Write the mm-link log (see the module notes); returns counts."""
        self.stop()
        pending: dict[bytes, deque] = defaultdict(deque)
        lines: list[tuple[int, int, str]] = []  # (ms, order within the ms, line)

        def ms(t_ns: int) -> int:
            return max(0, (t_ns - init_epoch_ns) // 1_000_000)

        arrivals = sorted(self.events["arrival"])
        departures = sorted(self.events["departure"])
        i = 0
        matched = 0
        for t_dep, key, size in departures:
            while i < len(arrivals) and arrivals[i][0] <= t_dep:
                pending[arrivals[i][1]].append(arrivals[i][0])
                i += 1
            q = pending.get(key)
            if not q:
                continue  # left without being seen arriving (before the capture started)
            t_arr = q.popleft()
            lines.append((ms(t_dep), 2, f"{ms(t_dep)} - {size} {ms(t_dep) - ms(t_arr)}"))
            matched += 1
        lines.extend((ms(t), 1, f"{ms(t)} + {size}") for t, _k, size in arrivals)
        end_ms = max((x[0] for x in lines), default=0)
        sched = direction.schedule
        for loop in range(end_ms // sched.period_ms + 1):
            for slot, count in zip(sched.slot_ms, sched.slot_count):
                t = loop * sched.period_ms + slot
                if t > end_ms:
                    break
                lines.extend([(t, 0, f"{t} # {OPPORTUNITY_BYTES}")] * count)
        lines.sort(key=lambda x: (x[0], x[1]))
        with open(path, "w") as fh:
            write_log_header(fh, name, sched.source, path, command_line, direction.queue,
                             init_epoch_ns // 1_000_000, 0)
            fh.write("".join(line + "\n" for _t, _o, line in lines))
        return {"arrived": len(arrivals), "departed": matched, "socket_drops": self.stats["socket_drops"]}
