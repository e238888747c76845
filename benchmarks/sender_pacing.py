"""Pacing accuracy and CPU of the UDP sender (issue 12): const:RATE for --duration-s at each rate, to a
receiver over loopback (default) or over an unlimited netns link (--netns: 2000 Mbit/s, 0 ms, root).

Prints, per target rate: the achieved send rate over the run, the receiver's rate, the error, the
sender's CPU use (user+sys seconds / wall seconds of its process: 100 % = one core), its CPU time per
packet (send + ACK + bookkeeping) and the rate one core could carry at that cost (12000 bits / CPU per
packet). The sender busy-waits up to 200 us before each send, so at high rates it shows ~100 % of a core
and CPU/packet is an upper bound (the ceiling a lower bound).

    python benchmarks/sender_pacing.py [--rates 1,10,100,300] [--duration-s 10] [--netns]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# as genet emulate cc runs them: real-time priority (SCHED_RR 1) as root, so other load on the machine
# does not take the sender's core (GENET_BENCH_NO_RT=1 turns this off)
RT = ["chrt", "-r", "1"] if os.geteuid() == 0 and not os.environ.get("GENET_BENCH_NO_RT") else []
GENET = [*RT, sys.executable, "-m", "app.cli"]


def one(rate: float, duration_s: float, tmp: Path, link=None) -> dict:
    port_file = tmp / f"port-{rate:g}"
    rx_cmd = GENET + ["sender", "receive", "--bind", link.host.address if link else "127.0.0.1", "--port", "0",
                      "--once", "--ready-file", str(port_file)]
    rx = (link.host.popen(rx_cmd, stdout=subprocess.DEVNULL) if link else
          subprocess.Popen(rx_cmd, stdout=subprocess.DEVNULL))
    while not port_file.exists():
        time.sleep(0.02)
    port = port_file.read_text().strip()
    cmd = GENET + ["sender", "send", "--to", f"{link.host.address if link else '127.0.0.1'}:{port}", "--policy",
                   f"const:{rate:g}", "--duration-s", str(duration_s)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = (link.emulated.run(cmd, timeout_s=duration_s + 60) if link else
           subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60))
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rx.wait(timeout=10)
    s = json.loads(res.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"target_mbps": rate, "send_mbps": s["send_rate_mbps"], "receiver_mbps": s["receiver_throughput_mbps"],
            "error_pct": 100 * (s["send_rate_mbps"] / rate - 1), "cpu_pct": 100 * cpu / wall,
            "decision_p99_us": s["decision_p99_us"],
            "cpu_us_per_packet": 1e6 * cpu / max(1, s["packets_sent"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="1,10,100,300")
    ap.add_argument("--duration-s", type=float, default=10.0)
    ap.add_argument("--netns", action="store_true")
    args = ap.parse_args()
    rates = [float(x) for x in args.rates.split(",")]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; path: "
          f"{'netns link 2000 Mbit/s' if args.netns else 'loopback'}; {args.duration_s:g} s per rate")
    print(f"{'target':>8} {'sent':>9} {'received':>9} {'error':>8} {'sender CPU':>10} {'CPU/packet':>11} "
          f"{'1-core ceiling':>15}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for rate in rates:
            if args.netns:
                from emulation import LinkEmulator
                with LinkEmulator(2000.0, 2000.0, isolate_host=True) as link:
                    r = one(rate, args.duration_s, tmp, link)
            else:
                r = one(rate, args.duration_s, tmp)
            print(f"{r['target_mbps']:>8g} {r['send_mbps']:>9.3f} {r['receiver_mbps'] or 0:>9.3f} "
                  f"{r['error_pct']:>+7.2f}% {r['cpu_pct']:>9.0f}% {r['cpu_us_per_packet']:>9.1f}us "
                  f"{12000 / r['cpu_us_per_packet']:>11.0f} Mbit/s", flush=True)


if __name__ == "__main__":
    main()
