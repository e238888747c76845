"""`genet emulate cc --jobs N` wall time (issue 12: --jobs 4 over 8 Pantheon traces within 1.3 x
(8 x trace duration / 4)). Prints the wall time, the ideal (sum of run durations / jobs) and their ratio.

    python benchmarks/sender_emulate_jobs.py [--traces ../shared/traces/cc/pantheon-ethernet] [-n 8] [--jobs 4]
        [--policy models/cc/genet.onnx] [--duration-s S]   (root)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", default=str(ROOT.parent / "shared" / "traces" / "cc" / "pantheon-ethernet"))
    ap.add_argument("-n", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--policy", default=str(ROOT / "models" / "cc" / "genet.onnx"))
    ap.add_argument("--duration-s", type=float, default=None)
    args = ap.parse_args()
    from traces import load_traces
    traces = load_traces(args.traces)[: args.n]
    with tempfile.TemporaryDirectory() as d:
        tdir = Path(d) / "traces"
        tdir.mkdir()
        from traces.io import write_trace
        for i, t in enumerate(traces):
            write_trace(t, tdir / f"t{i:02d}.json")
        durations = [min(t.duration_s, args.duration_s or t.duration_s) for t in traces]
        cmd = [sys.executable, "-m", "app.cli", "emulate", "cc", "--policy", args.policy, "--traces", str(tdir),
               "--jobs", str(args.jobs), "--no-sim", "--no-plots", "--out", str(Path(d) / "out")]
        if args.duration_s:
            cmd += ["--duration-s", str(args.duration_s)]
        t0 = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if res.returncode:
            print(res.stderr[-2000:])
            raise SystemExit(res.returncode)
        import json
        rows = json.loads((Path(d) / "out" / "results.json").read_text())
    ideal = sum(durations) / args.jobs
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{len(traces)} traces ({sum(durations):.0f} s of runs), --jobs {args.jobs}: wall {wall:.1f} s, "
          f"ideal {ideal:.1f} s, ratio {wall / ideal:.2f} (target <= 1.3)")
    mean = lambda k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    print(f"per run (mean): link setup {mean('link_setup_s'):.2f} s, run incl. setup/teardown {mean('run_wall_s'):.2f} s "
          f"for {sum(durations) / len(durations):.1f} s of traffic, log analysis {mean('analysis_s'):.2f} s; "
          f"peak trace rate {max(t.bandwidth_mbps.max() for t in traces):.0f} Mbit/s")
    _ = shutil


if __name__ == "__main__":
    main()
