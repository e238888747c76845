"""Small measurement tools run on link endpoints: RTT probes and a constant-rate UDP stream.

``ping`` is not installed everywhere (it is not on the CI machine), so
:func:`icmp_rtt_probe` is ping in Python (raw ICMP socket, root, the peer's
kernel answers, kernel receive timestamps); :func:`udp_echo_server` +
:func:`udp_rtt_probe` is a user-space UDP echo for non-root use. Both report
ping's figures (min/avg/max/mdev in ms; mdev is the standard deviation of the RTTs)
and two that one scheduling outlier cannot move much, for tests and benchmarks to
bound instead of mdev: ``mad_ms`` (median absolute deviation from the median) and
``trimmed_mdev_ms`` (mdev after dropping the largest ``TRIM_FRACTION`` of the RTTs,
at least one).
"""

from __future__ import annotations

import math
import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable

#: share of the largest RTTs that ``trimmed_mdev_ms`` leaves out (rounded up: at least one when n >= 2)
TRIM_FRACTION = 0.02


@dataclass
class RttSummary:
    """RTT statistics of a probe run, in ms (ping's definitions)."""

    sent: int
    received: int
    min_ms: float
    avg_ms: float
    max_ms: float
    mdev_ms: float
    rtts_ms: list[float]
    median_ms: float = math.nan
    mad_ms: float = math.nan
    trimmed_mdev_ms: float = math.nan

    @property
    def loss_rate(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 0.0


def _mdev(values: list[float]) -> float:
    """ping's mdev: the population standard deviation."""
    n = len(values)
    avg = sum(values) / n
    return math.sqrt(max(0.0, sum(v * v for v in values) / n - avg * avg))


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def summarize_rtts(rtts_ms: list[float], sent: int) -> RttSummary:
    if not rtts_ms:
        return RttSummary(sent, 0, math.nan, math.nan, math.nan, math.nan, [])
    n = len(rtts_ms)
    median = _median(rtts_ms)
    drop = min(n - 1, math.ceil(TRIM_FRACTION * n))
    kept = sorted(rtts_ms)[:n - drop]
    return RttSummary(sent, n, min(rtts_ms), sum(rtts_ms) / n, max(rtts_ms), _mdev(rtts_ms), list(rtts_ms),
                      median_ms=median, mad_ms=_median([abs(r - median) for r in rtts_ms]),
                      trimmed_mdev_ms=_mdev(kept))


def udp_echo_server(address: str, port: int, duration_s: float) -> int:
    """Echo every UDP datagram back to its sender for ``duration_s`` seconds; return how many were echoed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    end = time.monotonic() + duration_s
    n = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data, peer = sock.recvfrom(65536)
        except socket.timeout:
            break
        sock.sendto(data, peer)
        n += 1
    sock.close()
    return n


def _paced_probe(sock: socket.socket, send: Callable[[int], int], receive: Callable[[], tuple[int, int] | None],
                 count: int, interval_s: float, timeout_s: float) -> RttSummary:
    """The ping-style loop both probes share: send request ``seq`` every ``interval_s``
    (``send(seq)`` returns its send time, ns), collect replies (``receive()`` returns
    (seq, arrival time ns) or None) until all came back or ``timeout_s`` after the last send."""
    import select
    sent_at: dict[int, int] = {}
    rtts: list[float] = []
    start = time.monotonic()
    seq = 0
    last_deadline = None
    while True:
        now = time.monotonic()
        if seq < count and now >= start + seq * interval_s:
            sent_at[seq] = send(seq)
            seq += 1
            if seq == count:
                last_deadline = time.monotonic() + timeout_s
            continue
        if last_deadline is not None and (now >= last_deadline or len(rtts) == count):
            break
        wake = start + seq * interval_s if seq < count else last_deadline
        if not select.select([sock], [], [], max(0.0, wake - now))[0]:
            continue
        reply = receive()
        if reply is not None and reply[0] in sent_at:
            rtts.append((reply[1] - sent_at.pop(reply[0])) / 1e6)
    sock.close()
    return summarize_rtts(rtts, count)


def udp_rtt_probe(address: str, port: int, count: int = 50, interval_s: float = 0.05, size_bytes: int = 56,
                  timeout_s: float = 2.0) -> RttSummary:
    """Send ``count`` echo requests ``interval_s`` apart and time the replies (ping-style)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((address, port))
    sock.setblocking(False)
    pad = b"\0" * max(0, size_bytes - 12)

    def send(seq: int) -> int:
        t = time.monotonic_ns()
        sock.send(struct.pack("!IQ", seq, t) + pad)
        return t

    def receive() -> tuple[int, int]:
        data = sock.recv(65536)
        t = time.monotonic_ns()
        return struct.unpack("!IQ", data[:12])[0], t

    return _paced_probe(sock, send, receive, count, interval_s, timeout_s)


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def icmp_rtt_probe(address: str, count: int = 50, interval_s: float = 0.05, size_bytes: int = 56,
                   timeout_s: float = 2.0) -> RttSummary:
    """ping: ICMP echo requests on a raw socket (needs root), answered by the peer's kernel.

    Replies are timestamped by the kernel on arrival (``SO_TIMESTAMPNS``), so the
    prober's own scheduling delays do not show up as jitter, as with ping; the
    prober runs at real-time priority 1 when allowed (root), so that a loaded
    machine does not delay it between taking a send time and sending.
    """
    import os
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))  # this process only (a probe's own)
    except (OSError, AttributeError):
        pass
    SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    ident = (os.getpid() ^ id(sock)) & 0xFFFF
    payload = b"\0" * max(0, size_bytes - 8)

    def send(seq: int) -> int:
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        body = struct.pack("!Q", seq) + payload
        msg = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + body), ident, seq) + body
        t = time.clock_gettime_ns(time.CLOCK_REALTIME)
        sock.sendto(msg, (address, 0))
        return t

    def receive() -> tuple[int, int] | None:
        data, anc, _flags, _addr = sock.recvmsg(65536, 1024)
        t_ns = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                t_ns = sec * 1_000_000_000 + nsec
        if t_ns is None:
            t_ns = time.clock_gettime_ns(time.CLOCK_REALTIME)
        ihl = (data[0] & 0x0F) * 4
        icmp_type, _code, _ck, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        return (rseq, t_ns) if icmp_type == 0 and rid == ident else None

    return _paced_probe(sock, send, receive, count, interval_s, timeout_s)


def udp_constant_stream(address: str, port: int, rate_pps: float, count: int, size_bytes: int = 200) -> int:
    """Send ``count`` UDP datagrams of ``size_bytes`` at ``rate_pps``, numbered; return how many were sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((address, port))
    pad = b"\0" * max(0, size_bytes - 4)
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate_pps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.send(struct.pack("!I", i) + pad)
    sock.close()
    return count


def udp_count_receiver(address: str, port: int, idle_timeout_s: float = 1.0, first_timeout_s: float = 10.0) -> int:
    """Count distinct numbered datagrams until ``idle_timeout_s`` passes without one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind((address, port))
    seen = set()
    sock.settimeout(first_timeout_s)
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        seen.add(struct.unpack("!I", data[:4])[0])
        sock.settimeout(idle_timeout_s)
    sock.close()
    return len(seen)
