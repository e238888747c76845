"""Real servers vs the simulator for LB: `genet emulate lb` on short workloads, per-workload mean completion time.

Runs ``--policies`` (default least_work; add models/lb/genet.onnx when it exists) on ``-n`` generated workloads
(Genet's generator: ``--num-jobs`` jobs, uniform sizes up to ``--job-size-max-work``, Exp(``--job-interval-ms``)
gaps; Genet's rates 0.5, 1, 2) with real workers, balancer and client over emulated links (``--backend netns``,
root; ``--delay-ms`` one-way per path) or on loopback, and prints per workload the emulated and simulated mean
completion time (ms) and their gap, then per policy the mean gap, the largest and how many workloads are within
10 %. The simulator runs the same jobs with FIFO queues (no shuffle, as the real workers) and no network delay.

    sudo python benchmarks/lb_fidelity.py --out runs/lb-fidelity [-n 10] [--delay-ms 0] [--backend netns]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.cli import main as genet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", default="least_work")
    ap.add_argument("-n", type=int, default=10, help="workloads (seeds --seed ...)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--num-jobs", type=int, default=40)
    ap.add_argument("--job-interval-ms", type=float, default=100.0)
    ap.add_argument("--job-size-max-work", type=float, default=500.0, help="load ~0.73 of the 3.5 work/ms")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--client-delay-ms", type=float, default=0.0)
    ap.add_argument("--backend", default="netns", choices=("netns", "loopback"))
    ap.add_argument("--time-unit-ms", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.monotonic()
    status = genet(["emulate", "lb", "--policy", a.policies, "-n", str(a.n), "--seed", str(a.seed),
                    "--num-jobs", str(a.num_jobs), "--job-interval-ms", str(a.job_interval_ms),
                    "--job-size-max-work", str(a.job_size_max_work), "--delay-ms", str(a.delay_ms),
                    "--client-delay-ms", str(a.client_delay_ms), "--backend", a.backend,
                    "--time-unit-ms", str(a.time_unit_ms), "--out", a.out])
    wall = time.monotonic() - t0
    if not (Path(a.out) / "results.json").is_file():
        return status or 1
    rows = json.loads((Path(a.out) / "results.json").read_text())
    print(f"\nLB fidelity: {a.n} workloads x {a.num_jobs} jobs (sizes <= {a.job_size_max_work:g}, gaps Exp("
          f"{a.job_interval_ms:g}) ms), rates 0.5/1/2, backend {a.backend}, delay {a.delay_ms:g} ms per worker path, "
          f"{a.client_delay_ms:g} ms client path, {a.time_unit_ms:g} ms per time unit; wall {wall:.0f} s")
    print(f"{'policy':<20} {'workload':<10} {'emulated ms':>12} {'simulated ms':>13} {'gap %':>7} "
          f"{'emu p95 slowdown':>17} {'sim':>6} {'failed':>6}")
    for r in rows:
        gap = 100.0 * (r["mean_completion_time_s"] / r["sim_mean_completion_time_s"] - 1.0)
        print(f"{Path(r['policy']).name:<20} {r['workload']:<10} {1000 * r['mean_completion_time_s']:>12.1f} "
              f"{1000 * r['sim_mean_completion_time_s']:>13.1f} {gap:>+7.1f} {r['p95_slowdown']:>17.2f} "
              f"{r['sim_p95_slowdown']:>6.2f} {r['jobs_failed']:>6}")
    for p in dict.fromkeys(r["policy"] for r in rows):
        gaps = np.array([100.0 * (r["mean_completion_time_s"] / r["sim_mean_completion_time_s"] - 1.0)
                         for r in rows if r["policy"] == p])
        print(f"{Path(p).name}: mean gap {gaps.mean():+.1f} %, |gap| max {np.abs(gaps).max():.1f} %, "
              f"{int(np.sum(np.abs(gaps) <= 10.0))}/{gaps.size} workloads within 10 %")
    return status


if __name__ == "__main__":
    sys.exit(main())
