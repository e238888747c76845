"""Decision latency inside the running sender (issue 12: p99 <= 200 us): observation build + ONNX call +
rate update, per monitor interval, read from the sender's own log (``decision_us``).

Runs the shipped Aurora model (or --policy) for --duration-s over a netns link (12 Mbit/s, 20 ms each way,
BDP queue; root) or over loopback (--loopback), then prints p50/p90/p99/max.

    python benchmarks/sender_decision_latency.py [--policy models/cc/genet.onnx] [--duration-s 20] [--loopback]
        [--no-low-latency-idle]

The sender keeps its decision path warm (it spins and rehearses the decision in the last 2 ms before an
interval's end) and, as root, holds /dev/cpu_dma_latency at 0 while it runs; --no-low-latency-idle runs it
without the latter (sender/udp_sender.py explains both). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# as genet emulate cc runs them: real-time priority (SCHED_RR 1) as root, so other load on the machine
# does not take the sender's core (GENET_BENCH_NO_RT=1 turns this off)
RT = ["chrt", "-r", "1"] if os.geteuid() == 0 and not os.environ.get("GENET_BENCH_NO_RT") else []
GENET = [*RT, sys.executable, "-m", "app.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default=str(ROOT / "models" / "cc" / "genet.onnx"))
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--loopback", action="store_true")
    ap.add_argument("--no-low-latency-idle", action="store_true", help="pass --no-low-latency-idle to the sender")
    args = ap.parse_args()
    from sender.udp_sender import read_log
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        log = tmp / "run.jsonl"

        def go(host, emu_run, popen):
            rx = popen(GENET + ["sender", "receive", "--bind", host, "--port", "0", "--once", "--ready-file",
                                str(tmp / "port")])
            while not (tmp / "port").exists():
                time.sleep(0.02)
            emu_run(GENET + ["sender", "send", "--to", f"{host}:{(tmp / 'port').read_text().strip()}", "--policy",
                             args.policy, "--duration-s", str(args.duration_s), "--log", str(log), "--min-rtt-ms", "40",
                             *(["--no-low-latency-idle"] if args.no_low_latency_idle else [])])
            rx.wait(timeout=10)

        if args.loopback:
            go("127.0.0.1", lambda c: subprocess.run(c, capture_output=True, timeout=args.duration_s + 60),
               lambda c: subprocess.Popen(c, stdout=subprocess.DEVNULL))
            where = "loopback"
        else:
            from emulation import LinkEmulator
            with LinkEmulator(12.0, 1000.0, delay_ms=20, uplink_queue="droptail", uplink_queue_args="packets=40",
                              isolate_host=True) as link:
                go(link.host.address, lambda c: link.emulated.run(c, timeout_s=args.duration_s + 60),
                   lambda c: link.host.popen(c, stdout=subprocess.DEVNULL))
            where = "netns link 12 Mbit/s, 20 ms, 40-packet queue"
        dec = np.array([r["decision_us"] for r in read_log(log) if r.get("type") == "mi"])
    print(f"machine: {os.cpu_count()} cores, load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{where}; policy {args.policy}")
    print(f"decisions: {dec.size}; decision latency (observation + ONNX + rate update): "
          f"p50 {np.percentile(dec, 50):.0f} us, p90 {np.percentile(dec, 90):.0f} us, "
          f"p99 {np.percentile(dec, 99):.0f} us, max {dec.max():.0f} us")


if __name__ == "__main__":
    main()
