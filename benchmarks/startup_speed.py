"""Whole-process speed of ``genet eval abr --compat genet --policy bba`` beside Genet's own BBA evaluation
(issue 26: start-up is part of speed; target: ours >= 3x faster as a whole process). Prints figures, asserts
nothing.

    .venv/bin/python benchmarks/startup_speed.py [--runs 7] [--traces DIR]
    .venv/bin/python benchmarks/startup_speed.py --genet-src DIR [--genet-python PY]

Each command runs as a fresh process ``--runs`` times (ours and Genet's alternating, so both see the same
load; every run of ours writes a new output folder: a rerun into the same folder would resume from its
journal); the median wall time and the median CPU time (user + sys of the process and its children) are
printed, and the ratio. Also printed: the simulation's own time inside our process (``elapsed_s`` of
results.json) and ``genet --help``'s start-up.

Genet's figure needs a checkout of https://github.com/GenetProject/Genet given as ``--genet-src`` (nothing of it
is copied here): its ABR-A simulator's ``BBA.test_on_traces`` (src/simulator/abr_simulator/bba.py, the
simulator ``--compat genet`` reproduces) over the same traces, with Genet's own trace loader and video sizes
(data/abr/video_sizes), one CSV log per trace as Genet writes. Its modules import numpy, numba, matplotlib and
pandas: ``--genet-python`` names an interpreter that has them (default: this one). Without ``--genet-src`` only
our figure is printed. The traces default to Genet's 290 FCC test traces (abr_trace/testing_trace/fcc-test of
the checkout), else ../shared/traces/abr/fcc-val.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENET_SHARED", REPO.parent / "shared"))

#: Genet's ABR-A BBA over a trace folder, as Genet's own code does it (train.py's loading, bba.py's test);
#: argv: genet_src traces_dir log_dir. Prints the number of traces and the mean per-trace QoE.
GENET_DRIVER = """
import os, sys
src, traces_dir, out = sys.argv[1:4]
sys.path.insert(0, os.path.join(src, "src"))
from simulator.abr_simulator.abr_trace import AbrTrace
from simulator.abr_simulator.bba import BBA
from simulator.abr_simulator.utils import load_traces
times, bws, names = load_traces(traces_dir)
traces = [AbrTrace(t, bw, link_rtt=80, buffer_thresh=60, name=n) for t, bw, n in zip(times, bws, names)]
rewards = BBA().test_on_traces(traces, os.path.join(src, "data", "abr", "video_sizes"), [out] * len(traces))
print(len(rewards), sum(rewards) / len(rewards))
"""


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the process and its children, stdout) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out.stdout


def ours(traces: Path, tmp: Path, k: int) -> tuple[float, float, float, float]:
    """(wall, cpu, simulation s, mean QoE) of one ``genet eval abr`` into a new folder."""
    out = tmp / f"ours-{k}"
    wall, cpu, _ = timed([sys.executable, "-m", "app.cli", "eval", "abr", "--compat", "genet", "--policy", "bba",
                          "--traces", str(traces), "--out", str(out), "--no-progress"], REPO)
    data = json.loads((out / "results.json").read_text())
    shutil.rmtree(out)
    return wall, cpu, float(data["meta"]["elapsed_s"]), float(data["summary"][0]["qoe"])


def genets(src: Path, python: str, traces: Path, tmp: Path, k: int) -> tuple[float, float, float]:
    """(wall, cpu, mean QoE) of one run of Genet's BBA evaluation."""
    out = tmp / f"genet-{k}"
    wall, cpu, stdout = timed([python, "-c", GENET_DRIVER, str(src), str(traces), str(out)], tmp)
    shutil.rmtree(out, ignore_errors=True)
    return wall, cpu, float(stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each command (median reported)")
    ap.add_argument("--traces", type=Path, default=None, help="trace folder (default: see the module docstring)")
    ap.add_argument("--genet-src", type=Path, default=None, help="a checkout of GenetProject/Genet")
    ap.add_argument("--genet-python", default=sys.executable, help="interpreter for Genet's code")
    args = ap.parse_args()
    src = args.genet_src.resolve() if args.genet_src else None
    if src is not None and not (src / "src" / "simulator" / "abr_simulator" / "bba.py").is_file():
        sys.exit(f"--genet-src {src}: no src/simulator/abr_simulator/bba.py (a GenetProject/Genet checkout?)")
    traces = args.traces
    if traces is None:
        fcc_test = src / "abr_trace" / "testing_trace" / "fcc-test" if src else None
        traces = fcc_test if fcc_test is not None and fcc_test.is_dir() else SHARED / "traces" / "abr" / "fcc-val"
    traces = traces.resolve()
    n = sum(1 for p in traces.iterdir() if p.is_file() and not p.name.startswith("."))
    print(f"genet eval abr --compat genet --policy bba over {traces} ({n} traces), {args.runs} runs each, "
          f"median; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    rows: dict[str, list[tuple[float, ...]]] = {"ours": [], "genet": []}
    with tempfile.TemporaryDirectory(prefix="startup-speed-") as tmp_name:
        tmp = Path(tmp_name)
        ours(traces, tmp, -1)  # untimed: compiled bytecode and caches in place, as for any later run
        for k in range(args.runs):
            rows["ours"].append(ours(traces, tmp, k))
            if src is not None:
                rows["genet"].append(genets(src, args.genet_python, traces, tmp, k))
        helps = [timed([sys.executable, "-m", "app.cli", "--help"], REPO)[:2] for _ in range(args.runs)]
    med = {name: [statistics.median(col) for col in zip(*r)] for name, r in rows.items() if r}
    wall, cpu, sim_s, qoe = med["ours"]
    print(f"  ours:   {wall:6.2f} s wall, {cpu:6.2f} s CPU (simulation inside: {sim_s:.3f} s); mean QoE {qoe:.4f}")
    if "genet" in med:
        gwall, gcpu, gqoe = med["genet"]
        print(f"  Genet:  {gwall:6.2f} s wall, {gcpu:6.2f} s CPU; mean QoE {gqoe:.4f}")
        print(f"  ours is {gwall / wall:.1f}x faster as a whole process ({gcpu / cpu:.1f}x in CPU time); "
              "target >= 3x")
    else:
        print("  Genet: not measured (give --genet-src DIR, a GenetProject/Genet checkout)")
    print(f"  `genet --help`: {statistics.median(w for w, _ in helps):.2f} s wall, "
          f"{statistics.median(c for _, c in helps):.2f} s CPU")


if __name__ == "__main__":
    main()
