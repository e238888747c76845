"""Benchmarks of the netns backend (root): sustained iperf3 throughput and per-packet latency jitter,
and, with ``--compare``, the same runs side by side through real Mahimahi (when it is usable here).

Targets from issue 5: >= 500 Mbit/s sustained iperf3 throughput with 20 ms delay on a high-rate trace
(real Mahimahi here: ~0.5-0.7 Gbit/s with 20 ms and a 100-packet queue, ~1.8 Gbit/s without delay),
and per-packet added-latency jitter p99 <= 1 ms at 12 Mbit/s. CPU use of the link process is printed
beside each figure (user+system seconds per wall second, from /proc).

    .venv/bin/python benchmarks/emulation_netns.py [--duration-s 10] [--rate-mbps 1200] [--ceiling-rate-mbps 3000]
    .venv/bin/python benchmarks/emulation_netns.py --compare [--repeat 3] [--fidelity-duration-s 20]

``--compare`` prints one table, median [min-max] over ``--repeat`` runs, netns / Mahimahi ratio:
12 Mbit/s both ways with 20 ms each way (iperf3 -C cubic / -C bbr receiver throughput, the
sender's mean RTT with an infinite and a 20-packet droptail uplink queue, idle ping), then
capacity: a 100-opportunities-per-ms trace (1.2 Gbit/s ideal) with 20 ms and with no delay.
Both backends run with the host side in the root namespace (Mahimahi's layout).

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
from sender.iperf3 import run_over_link as iperf3  # noqa: E402
from emulation.probes import icmp_rtt_probe  # noqa: E402

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
        pids = link_cpu_pids(link)
        server = link.host.popen(["iperf3", "-s", "-1", "-B", link.host.address], stdout=subprocess.DEVNULL)
        wait_port(link.host, link.host.address, 5201)
        c0, t0 = sum(cpu_s(p) for p in pids), time.monotonic()
        res = link.emulated.run(["iperf3", "-c", link.host.address, "-C", cc, "-t", str(duration_s), "-J"],
                                timeout_s=duration_s + 30)
        c1, t1 = sum(cpu_s(p) for p in pids), time.monotonic()
        server.wait(timeout=10)
    end = json.loads(res.stdout)["end"]
    mbps = end["sum_received"]["bits_per_second"] / 1e6
    queue = f"droptail {queue_packets} pkts" if queue_packets else "infinite queue"
    print(f"iperf3 -C {cc}, trace {rate_mbps:g} Mbit/s, delay {delay_ms:g} ms, {queue}: {mbps:8.1f} Mbit/s "
          f"| link processes' CPU {100 * (c1 - c0) / (t1 - t0):5.1f}% of one core")


def jitter_run(rate_mbps: float, pps: int, duration_s: float, delay_ms: float) -> None:
    """One-way delay of a constant UDP stream (kernel receive timestamps; same clock on both sides)."""
    with LinkEmulator(rate_mbps, rate_mbps, delay_ms=delay_ms, isolate_host=True) as link:
        pids = link_cpu_pids(link)
        out: dict = {}

        def receiver():
            out["delays"] = link.host.call(_receive_owd, link.host.address, 9300, duration_s + 3)

        th = threading.Thread(target=receiver)
        th.start()
        time.sleep(0.5)
        c0, t0 = sum(cpu_s(p) for p in pids), time.monotonic()
        link.emulated.call(_send_stamped, link.host.address, 9300, pps, duration_s)
        c1, t1 = sum(cpu_s(p) for p in pids), time.monotonic()
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


def link_cpu_pids(link) -> list[int]:
    """The processes that forward packets (netns: the link process and its stages; Mahimahi: the mm-* shells)."""
    root = link.backend.proc.pid
    kids: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    kids.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except OSError:
                pass
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += kids.get(pid, [])
    if link.backend_name == "mahimahi":
        names = {}
        for pid in pids:
            try:
                names[pid] = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                pass
        return [p for p, n in names.items() if n.startswith("mm-")]
    return pids


def one_backend(backend: str, args) -> dict:
    """One repetition of every comparison run through ``backend``; figures by name."""
    out: dict = {}
    fd = args.fidelity_duration_s
    for queue in ("infinite", "droptail"):
        q = {"uplink_queue": "droptail", "uplink_queue_args": "packets=20"} if queue == "droptail" else {}
        with LinkEmulator(12, 12, delay_ms=20, backend=backend, **q) as link:
            if queue == "infinite":
                ping = link.emulated.call(icmp_rtt_probe, link.host.address, 60, 0.05)
                out["idle ping min, ms"] = ping.min_ms
                out["idle ping median, ms"] = ping.median_ms
                out["idle ping MAD, ms"] = ping.mad_ms
            for cc in ("cubic", "bbr"):
                r = iperf3(link, cc, fd)
                out[f"12 Mbit/s 20 ms {queue}: {cc} Mbit/s"] = r.throughput_mbps
                out[f"12 Mbit/s 20 ms {queue}: {cc} mean RTT, ms"] = r.rtt_mean_ms
    for delay in (20, 0):
        with LinkEmulator(args.rate_mbps, args.rate_mbps, delay_ms=delay, backend=backend) as link:
            for cc in ("cubic", "bbr"):
                pids = link_cpu_pids(link)
                c0, t0 = sum(cpu_s(p) for p in pids), time.monotonic()
                r = iperf3(link, cc, args.duration_s)
                c1, t1 = sum(cpu_s(p) for p in pids), time.monotonic()
                out[f"{args.rate_mbps:g} Mbit/s trace, {delay} ms: {cc} Mbit/s"] = r.throughput_mbps
                out[f"{args.rate_mbps:g} Mbit/s trace, {delay} ms: {cc} link CPU, % of a core"] = \
                    100 * (c1 - c0) / (t1 - t0)
    return out


def compare(args) -> int:
    from emulation.mahimahi_backend import mahimahi_problem
    problem = mahimahi_problem()
    backends = ["mahimahi", "netns"] if problem is None else ["netns"]
    if problem:
        print(f"Mahimahi not usable here ({problem}): netns only")
    runs: dict = {b: [] for b in backends}
    for i in range(args.repeat):
        for b in backends:  # interleaved, so a slow phase of the machine hits both alike
            runs[b].append(one_backend(b, args))
            print(f"  repetition {i + 1}/{args.repeat} {b} done", file=sys.stderr, flush=True)

    def fmt(vals):
        v = sorted(vals)
        med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
        return med, f"{med:8.2f} [{v[0]:.2f}-{v[-1]:.2f}]"

    keys = list(runs[backends[0]][0])
    width = max(len(k) for k in keys)
    print(f"{'median [min-max] of ' + str(args.repeat):{width}s} | " + " | ".join(f"{b:^24s}" for b in backends)
          + (" | netns/Mahimahi" if len(backends) == 2 else ""))
    for k in keys:
        cells, meds = [], []
        for b in backends:
            med, text = fmt([r[k] for r in runs[b]])
            cells.append(f"{text:24s}")
            meds.append(med)
        ratio = f" | {meds[1] / meds[0]:6.2f}" if len(backends) == 2 and meds[0] else ""
        print(f"{k:{width}s} | " + " | ".join(cells) + ratio)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration-s", type=int, default=10, help="iperf3 duration per run, s")
    ap.add_argument("--rate-mbps", type=float, default=1200.0,
                    help="high-rate trace, Mbit/s (1200 = 100 opportunities per ms)")
    ap.add_argument("--ceiling-rate-mbps", type=float, default=3000.0,
                    help="a trace faster than the link process, to print its ceiling, Mbit/s (0: skip)")
    ap.add_argument("--compare", action="store_true",
                    help="netns and real Mahimahi side by side (fidelity at 12 Mbit/s, capacity); see above")
    ap.add_argument("--repeat", type=int, default=3, help="--compare: repetitions per backend")
    ap.add_argument("--fidelity-duration-s", type=int, default=20, help="--compare: iperf3 s at 12 Mbit/s")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, TUN devices)")
        return 1
    if args.compare:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        return compare(args)
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
