"""Benchmark: reading and converting the shared ABR trace sets.

Prints traces/s and Mahimahi opportunities/s for Pensieve -> Mahimahi schedule
conversion, and the worst relative error of the round trip's mean bandwidth.
Usage: .venv/bin/python benchmarks/traces_convert.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from traces import load_traces
from traces.mahimahi import schedule_to_trace, trace_to_schedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    args = ap.parse_args()
    root = Path(args.shared) / "traces" / "abr"
    t0 = time.perf_counter()
    traces = [t for d in sorted(root.iterdir()) for t in load_traces(d)]
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    schedules = [trace_to_schedule(t) for t in traces]
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    backs = [schedule_to_trace(s) for s in schedules]
    t_back = time.perf_counter() - t0
    n_opp = sum(len(s) for s in schedules)
    worst = max(abs(b.mean_bandwidth_mbps / t.mean_bandwidth_mbps - 1) for t, b in zip(traces, backs))
    print(f"traces: {len(traces)} ({sum(len(t) for t in traces):,} samples)")
    print(f"read pensieve:        {len(traces) / t_read:10.0f} traces/s")
    print(f"rate -> mahimahi:     {len(traces) / t_write:10.0f} traces/s  ({n_opp / t_write / 1e6:.1f} M opportunities/s)")
    print(f"mahimahi -> rate:     {len(traces) / t_back:10.0f} traces/s")
    print(f"round-trip mean bandwidth error: worst {worst * 100:.4f} %")


if __name__ == "__main__":
    main()
