"""1 vs 2 workers on this machine (issue 29): an eval matrix, a curriculum round and a `genet run`, whole process each.

    python benchmarks/parallel_speed.py                      # all three, 1 and 2 workers
    python benchmarks/parallel_speed.py --only eval --traces 150
    python benchmarks/parallel_speed.py --only run

* **eval matrix**: `genet eval cc` of bbr and the two shipped Aurora models over N synthetic RL3 traces (10 s each), `--jobs 1`
  and `--jobs 2` (worker processes, foundation/executor.py), as whole processes; the rows must be identical.
* **curriculum round**: one Genet round for CC (a short warm-up, 15 BO trials of 10 environments against BBR, a
  short training phase) with 1 rollout worker and with 2 (`rollout_workers`; the trials go to the workers, the
  guided ones 5 at a time: `trial_batch = 5`); the same seed.
* **genet run**: a small run config (:data:`RUN_CONFIG`: two short ABR and two short CC UDR trainings, their
  exports, and the simulate stage of six policies per use case) with `genet run --jobs 1` and `--jobs 2`
  (app/run/engine.py: up to N items of a stage at once); the stages' wall times from each run's progress file.

Prints each wall time and the speed-up. Run it on a quiet machine (another process on the cores halves the figure).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def eval_matrix(n_traces: int, root: Path) -> dict[int, float]:
    walls = {}
    for jobs in (1, 2):
        out = root / f"eval-j{jobs}"
        cmd = [sys.executable, "-m", "app.cli", "eval", "cc", "--policy", "bbr,models/cc/genet.onnx,models/cc/udr3.onnx", "--config", "rl3",
               "-n", str(n_traces), "--seed", "1", "--duration-s", "30", "--no-plots", "--no-progress",
               "--jobs", str(jobs), "--out", str(out)]
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
        walls[jobs] = time.monotonic() - t0
    same = (root / "eval-j1" / "results.csv").read_text() == (root / "eval-j2" / "results.csv").read_text()
    print(f"eval matrix (bbr + 2 Aurora models x {n_traces} traces of 30 s): 1 worker {walls[1]:.1f} s, 2 workers "
          f"{walls[2]:.1f} s: {walls[1] / walls[2]:.2f}x; rows identical: {same}")
    return walls


_ROUND = """
import sys, time
from pathlib import Path
from genet.cc.training import CcTrainConfig, CcUseCase
from genet.curriculum.distribution import ConfigDistribution
from genet.curriculum.loop import CurriculumConfig, run_curriculum
workers, out = int(sys.argv[1]), Path(sys.argv[2])
uc = CcUseCase(CcTrainConfig(n_envs=4, steps_per_update=800, rollout_workers=workers))
cfg = CurriculumConfig(rounds=1, iterations_per_round=1, n_trials=15, n_random=10, envs_per_trial=10,
                       baselines=("bbr",), seed=0, trial_batch=5)
try:
    run_curriculum(uc, cfg, out, initial=ConfigDistribution.udr(uc.space, "rl3"), log=lambda s: None)
finally:
    uc.close()
"""


def curriculum_round(root: Path) -> dict[int, float]:
    walls = {}
    for workers in (1, 2):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", _ROUND, str(workers), str(root / f"round-w{workers}")], check=True,
                       capture_output=True, cwd=REPO)
        walls[workers] = time.monotonic() - t0
    print(f"curriculum round (CC, 15 trials x 10 environments, trial_batch 5): 1 worker {walls[1]:.1f} s, "
          f"2 workers {walls[2]:.1f} s: {walls[1] / walls[2]:.2f}x")
    return walls


#: The `genet run` of ``--only run``: stages traces, train (4 items), export (4), simulate (2); no real time.
RUN_CONFIG = """
[run]
name = "jobs-bench"
seed = 1
[traces.abr-gen]
gen = "abr"
range = "rl3"
n = 60
[traces.cc-gen]
gen = "cc"
range = "rl3"
n = 60
[abr]
baselines = ["bba", "mpc"]
[abr.policies.udr1]
method = "udr"
range = "rl1"
steps = 60000
n_envs = 16
steps_per_update = 768
[abr.policies.udr3]
method = "udr"
range = "rl3"
steps = 60000
n_envs = 16
steps_per_update = 768
[abr.policies.shipped]
use = "models/abr/genet.onnx"
[abr.simulate]
traces = ["abr-gen"]
[cc]
baselines = ["bbr", "cubic"]
[cc.policies.udr-a]
method = "udr"
range = "rl3"
steps = 36000
[cc.policies.udr-b]
method = "udr"
range = "rl1"
steps = 36000
[cc.policies.shipped]
use = "models/cc/genet.onnx"
[cc.simulate]
traces = ["cc-gen"]
"""


def genet_run(root: Path) -> dict[int, float]:
    walls = {}
    config = root / "jobs-bench.toml"
    config.write_text(RUN_CONFIG)
    for jobs in (1, 2):
        out = root / f"run-j{jobs}"
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "app.cli", "run", str(config), "--out", str(out), "--jobs", str(jobs)],
                       check=True, capture_output=True, cwd=REPO)
        walls[jobs] = time.monotonic() - t0
    print(f"genet run (traces, 4 trainings, 4 exports, 2 simulate items): --jobs 1 {walls[1]:.1f} s, --jobs 2 "
          f"{walls[2]:.1f} s: {walls[1] / walls[2]:.2f}x")
    return walls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("eval", "round", "run"), default=None)
    ap.add_argument("--traces", type=int, default=150,
                    help="synthetic RL3 traces of the eval matrix (count; 12 took ~1 s, too little to measure)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="genet-parallel-"))
    if args.only in (None, "eval"):
        eval_matrix(args.traces, root)
    if args.only in (None, "round"):
        curriculum_round(root)
    if args.only in (None, "run"):
        genet_run(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
