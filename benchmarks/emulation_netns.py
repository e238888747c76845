"""Benchmarks of the netns backend (root): sustained iperf3 throughput and per-packet latency jitter.

Targets from issue 5: >= 500 Mbit/s sustained iperf3 throughput with 20 ms delay on a high-rate trace
(real Mahimahi here: ~0.5-0.7 Gbit/s with 20 ms and a 100-packet queue, ~1.8 Gbit/s without delay),
and per-packet added-latency jitter p99 <= 1 ms at 12 Mbit/s. CPU use of the link process is printed
beside each figure (user+system seconds per wall second, from /proc).

    .venv/bin/python benchmarks/emulation_netns.py [--duration-s 10] [--rate-mbps 1200] [--ceiling-rate-mbps 3000]

The one-way-delay stream is sent every 2 ms, in phase with the 1-ms opportunity grid, so its jitter shows
scheduling noise; a stream out of phase adds Mahimahi's own quantisation (0-1 ms, by design).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulation import LinkEmulator  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def wait_port(endpoint, address: str, port: int) -> None:
    for _ in range(100):
        if endpoint.run(["sh", "-c", f"ss -ltn | grep -q '{address}:{port} '"]).returncode == 0:
            return
        time.sleep(0.05)


def iperf_run(rate_mbps: float, delay_ms: float, queue_packets: int, duration_s: int, cc: str) -> None:
    q = {"uplink_queue": "droptail", "uplink_queue_args": f"packets={queue_packets}"} if queue_packets else {}
    with LinkEmulator(rate_mbps, rate_mbps, delay_ms=delay_ms, isolate_host=True, **q) as link:
        pid = link.backend.proc.pid
        server = link.host.popen(["iperf3", "-s", "-1", "-B", link.host.address], stdout=subprocess.DEVNULL)
        wait_port(link.host, link.host.address, 5201)
        c0, t0 = cpu_s(pid), time.monotonic()
        res = link.emulated.run(["iperf3", "-c", link.host.address, "-C", cc, "-t", str(duration_s), "-J"],
                                timeout_s=duration_s + 30)
        c1, t1 = cpu_s(pid), time.monotonic()
        server.wait(timeout=10)
    end = json.loads(res.stdout)["end"]
    mbps = end["sum_received"]["bits_per_second"] / 1e6
    queue = f"droptail {queue_packets} pkts" if queue_packets else "infinite queue"
    print(f"iperf3 -C {cc}, trace {rate_mbps:g} Mbit/s, delay {delay_ms:g} ms, {queue}: {mbps:8.1f} Mbit/s "
          f"| link process CPU {100 * (c1 - c0) / (t1 - t0):5.1f}% of one core")


def jitter_run(rate_mbps: float, pps: int, duration_s: float, delay_ms: float) -> None:
    """One-way delay of a constant UDP stream (kernel receive timestamps; same clock on both sides)."""
    with LinkEmulator(rate_mbps, rate_mbps, delay_ms=delay_ms, isolate_host=True) as link:
        pid = link.backend.proc.pid
        out: dict = {}

        def receiver():
            out["delays"] = link.host.call(_receive_owd, link.host.address, 9300, duration_s + 3)

        th = threading.Thread(target=receiver)
        th.start()
        time.sleep(0.5)
        c0, t0 = cpu_s(pid), time.monotonic()
        link.emulated.call(_send_stamped, link.host.address, 9300, pps, duration_s)
        c1, t1 = cpu_s(pid), time.monotonic()
        th.join()
    d = sorted(out["delays"])
    base = d[0]
    added = [x - base for x in d]
    p = lambda q: added[min(len(added) - 1, int(q * len(added)))]  # noqa: E731
    print(f"one-way delay over {rate_mbps:g} Mbit/s, {delay_ms:g} ms, {pps} pkt/s x {len(d)}: min {base:.3f} ms, "
          f"jitter (delay - min) p50 {p(0.5):.3f} p99 {p(0.99):.3f} max {added[-1]:.3f} ms "
          f"| link process CPU {100 * (c1 - c0) / (t1 - t0):5.1f}%")


def _send_stamped(address: str, port: int, pps: int, duration_s: float) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((address, port))
    n = int(pps * duration_s)
    start = time.monotonic()
    for i in range(n):
        wait = start + i / pps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sock.send(struct.pack("!q", time.clock_gettime_ns(time.CLOCK_REALTIME)) + b"\0" * 992)
    return n


def _receive_owd(address: str, port: int, duration_s: float) -> list[float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)
    sock.bind((address, port))
    sock.settimeout(duration_s)
    delays = []
    while True:
        try:
            data, anc, _f, _a = sock.recvmsg(2048, 1024)
        except socket.timeout:
            break
        sec, nsec = struct.unpack("qq", anc[0][2][:16])
        delays.append((sec * 1_000_000_000 + nsec - struct.unpack("!q", data[:8])[0]) / 1e6)
        sock.settimeout(1.0)
    return delays


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration-s", type=int, default=10, help="iperf3 duration per run, s")
    ap.add_argument("--rate-mbps", type=float, default=1200.0,
                    help="high-rate trace, Mbit/s (1200 = 100 opportunities per ms)")
    ap.add_argument("--ceiling-rate-mbps", type=float, default=3000.0,
                    help="a trace faster than the link process, to print its ceiling, Mbit/s (0: skip)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, TUN devices)")
        return 1
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    iperf_run(args.rate_mbps, 20, 0, args.duration_s, "cubic")
    iperf_run(args.rate_mbps, 20, 100, args.duration_s, "bbr")
    iperf_run(args.rate_mbps, 20, 100, args.duration_s, "cubic")
    iperf_run(args.rate_mbps, 0, 0, args.duration_s, "cubic")
    if args.ceiling_rate_mbps:
        iperf_run(args.ceiling_rate_mbps, 20, 0, args.duration_s, "cubic")
        iperf_run(args.ceiling_rate_mbps, 0, 0, args.duration_s, "cubic")
    jitter_run(12, 500, 10, 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
