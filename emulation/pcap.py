"""Packet captures of a netns link and their per-flow summary (Pantheon-style analysis).

Capture: the link process writes classic pcap files (``LINKTYPE_RAW``: each
record is an IPv4 packet, the TUN header stripped; microsecond wall-clock
timestamps) of what crosses each side: ``emulated.pcap`` (uplink packets
entering the link, downlink packets leaving it) and ``host.pcap`` (the
reverse). Writing them inside the link process is exact and costs one
buffered write per packet; a sniffer would add its own process and delays.
Any pcap tool reads them (scapy: ``scapy.utils.rdpcap``; Wireshark; tcpdump -r).

Summary (:func:`flow_summary`): packets are matched across the two files by
their bytes (the link never alters a packet), in order, per 5-tuple
(src, sport, dst, dport, protocol) and direction. For each flow:
sent and delivered packets, loss rate, delivered throughput over the flow's
delivery span, and one-way delay through the link (mean, 90th and 95th
percentile by :func:`foundation.metrics.percentile` — Pantheon's ``tunnel_graph``
figures: throughput, p95 one-way delay, loss).
"""

from __future__ import annotations

import math
import os
import struct
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from foundation.metrics import percentile
from foundation.packets import TUN_HEADER_BYTES
from traces.errors import TraceFormatError

LINKTYPE_RAW = 101
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Append packets (with their 4-byte TUN header) to a pcap file; times are monotonic ns mapped to epoch."""

    def __init__(self, path: str | os.PathLike, mono_origin_ns: int, epoch_origin_ns: int):
        self.fh = open(path, "wb", buffering=1 << 20)
        self.offset_ns = epoch_origin_ns - mono_origin_ns
        self.fh.write(_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))

    def write(self, mono_ns: int, packet: bytes) -> None:
        t_us = (mono_ns + self.offset_ns) // 1000
        n = len(packet) - TUN_HEADER_BYTES
        self.fh.write(_RECORD.pack(t_us // 1_000_000, t_us % 1_000_000, n, n))
        self.fh.write(packet[TUN_HEADER_BYTES:])

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def read_pcap(path: str | os.PathLike) -> list[tuple[float, bytes]]:
    """(time in s since the epoch, IPv4 packet) of every record of a LINKTYPE_RAW pcap file."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < _GLOBAL.size:
        raise TraceFormatError("not a pcap file (shorter than its header)", path)
    magic, _vmaj, _vmin, _tz, _sig, _snap, linktype = _GLOBAL.unpack_from(data, 0)
    if magic != 0xA1B2C3D4:
        raise TraceFormatError(f"not a little-endian microsecond pcap file (magic {magic:#x})", path)
    if linktype != LINKTYPE_RAW:
        raise TraceFormatError(f"link type {linktype}, expected {LINKTYPE_RAW} (raw IP, as the link writes)", path)
    out = []
    off = _GLOBAL.size
    while off + _RECORD.size <= len(data):
        sec, usec, incl, _orig = _RECORD.unpack_from(data, off)
        off += _RECORD.size
        out.append((sec + usec / 1e6, data[off:off + incl]))
        off += incl
    return out


def five_tuple(packet: bytes) -> tuple[str, int, str, int, int] | None:
    """(src, sport, dst, dport, protocol) of an IPv4 packet (ports 0 when not TCP/UDP); None if not IPv4."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    proto = packet[9]
    src = ".".join(map(str, packet[12:16]))
    dst = ".".join(map(str, packet[16:20]))
    sport = dport = 0
    if proto in (6, 17) and len(packet) >= ihl + 4:
        sport, dport = struct.unpack_from("!HH", packet, ihl)
    return src, sport, dst, dport, proto


@dataclass
class FlowSummary:
    """One direction of one 5-tuple through the link.

    direction: uplink (emulated -> host) or downlink
    src, sport, dst, dport, protocol: the 5-tuple (protocol 6 TCP, 17 UDP, 1 ICMP)
    sent_packets / delivered_packets: entering / leaving the link
    loss_rate: 1 - delivered / sent
    throughput_mbps: delivered IP bytes x 8 / (last - first delivery), Mbit/s (nan with < 2 deliveries)
    mean_one_way_delay_ms / p90_one_way_delay_ms / p95_one_way_delay_ms: one-way delay through the link, ms
    min_one_way_delay_ms / median_one_way_delay_ms: the same delays' minimum and median (nearest rank), ms: the
        link's own delay, which a scheduling stall on a loaded machine (it moves the mean and the tail) leaves alone
    """

    direction: str
    src: str
    sport: int
    dst: str
    dport: int
    protocol: int
    sent_packets: int
    delivered_packets: int
    loss_rate: float
    throughput_mbps: float
    mean_one_way_delay_ms: float
    p90_one_way_delay_ms: float
    p95_one_way_delay_ms: float
    min_one_way_delay_ms: float = math.nan
    median_one_way_delay_ms: float = math.nan


def flow_summary(emulated_pcap: str | os.PathLike, host_pcap: str | os.PathLike,
                 emulated_address: str, host_address: str) -> list[FlowSummary]:
    """Per-flow throughput, one-way delay and loss from the two captures of one link."""
    emu, host = read_pcap(emulated_pcap), read_pcap(host_pcap)
    out: list[FlowSummary] = []
    for direction, sent_side, recv_side, src_addr in (("uplink", emu, host, emulated_address),
                                                       ("downlink", host, emu, host_address)):
        delivered: dict[bytes, deque] = defaultdict(deque)
        for t, p in recv_side:
            ft = five_tuple(p)
            if ft and ft[0] == src_addr:
                delivered[p].append(t)
        flows: dict[tuple, dict] = {}
        for t, p in sent_side:
            ft = five_tuple(p)
            if not ft or ft[0] != src_addr:
                continue
            f = flows.setdefault(ft, {"sent": 0, "delays": [], "times": [], "bytes": 0})
            f["sent"] += 1
            q = delivered.get(p)
            while q and q[0] < t - 1e-6:
                q.popleft()  # a delivery before this send belongs to an earlier identical packet
            if q:
                t_out = q.popleft()
                f["delays"].append((t_out - t) * 1000.0)
                f["times"].append(t_out)
                f["bytes"] += len(p)
        for ft, f in sorted(flows.items()):
            n = len(f["delays"])
            span = (max(f["times"]) - min(f["times"])) if n >= 2 else 0.0
            delays = f["delays"]
            out.append(FlowSummary(
                direction, ft[0], ft[1], ft[2], ft[3], ft[4], f["sent"], n,
                1.0 - n / f["sent"] if f["sent"] else math.nan,
                f["bytes"] * 8 / span / 1e6 if span > 0 else math.nan,
                sum(delays) / n if n else math.nan, percentile(delays, 90), percentile(delays, 95),
                min(delays) if n else math.nan, percentile(delays, 50)))
    return out


def format_flows(flows: list[FlowSummary]) -> str:
    lines = [f"{'direction':9} {'flow':44} {'sent':>7} {'deliv':>7} {'loss':>6} {'Mbit/s':>8} "
             f"{'mean ms':>8} {'p95 ms':>8}"]
    names = {6: "tcp", 17: "udp", 1: "icmp"}
    for f in flows:
        flow = f"{names.get(f.protocol, f.protocol)} {f.src}:{f.sport} -> {f.dst}:{f.dport}"
        lines.append(f"{f.direction:9} {flow:44} {f.sent_packets:7d} {f.delivered_packets:7d} "
                     f"{100 * f.loss_rate:5.1f}% {f.throughput_mbps:8.2f} {f.mean_one_way_delay_ms:8.2f} {f.p95_one_way_delay_ms:8.2f}")
    return "\n".join(lines)
