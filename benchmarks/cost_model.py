"""The cost model's per-item costs measured on this machine, and its prediction for a run config (issue 29,
docs/cost-model.md).

    python benchmarks/cost_model.py                                  # measure, then predict examples/paper.toml
    python benchmarks/cost_model.py --skip-measure --config examples/quickstart.toml
    python benchmarks/cost_model.py --only train,trial --check       # some figures, and the 1- vs 2-worker check
    python benchmarks/cost_model.py --emulate                        # also an emulated CC run (root, netns)

Every figure is **CPU seconds** (user + system of the `genet` command and its children, from
``getrusage(RUSAGE_CHILDREN)``), not wall time, so other work on the machine changes it little; each is the
difference of two runs of the same command at two sizes (the start-up cancels):

* **train**: one PPO training step (``genet train USE_CASE --method udr``, 2 sizes of ``--steps``), and one
  update (= ``steps_per_update`` steps);
* **trial**: one curriculum BO trial (``--method genet --rounds 1``, ``--trials 6`` against ``udr`` at the same
  steps: the 6 trials of ``--envs-per-trial 10`` environments and the optimiser's own work, divided by 6);
* **sim**: one simulator evaluation per (trace, policy) (``genet eval`` of two baselines and a shipped model over
  10 and all 150 FCC validation traces, 10 and all 177 Pantheon cellular ones, taken across the set's folders);
* **emulate** (``--emulate``): an emulated CC run's CPU and wall seconds (``genet emulate cc`` of kernel BBR
  and the shipped Aurora model, 10 s each, one link at a time, embedded netns backend; root).

Then each figure beside the planner's (app/run/costs.py) and the predicted wall time of ``--config`` at
``--workers`` (default 1, 2, 8, 32, 128), stage by stage, from the planner's figures (what `genet run --dry-run
--workers N` prints). ``--check``: `genet eval cc` of the paper's 4 CC policies over the Pantheon cellular set
with ``--jobs 1`` and ``--jobs 2``, and a train stage of two short CC training runs one after the other and both
at once: measured wall and CPU seconds against the model's prediction at 1 and 2 workers (from the planner's
figures and from the ones measured here). Run it on a quiet machine for wall
times; the CPU figures hold on a loaded one.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
GENET = [sys.executable, "-m", "app.cli"]


def _tree_cpu_s(root_pid: int, seen: dict) -> None:
    """Record in ``seen`` ({(pid, start time): CPU seconds}) the own CPU seconds of ``root_pid`` and of every
    process below it now (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state ppid ... utime (12th) stime (13th) ... starttime (20th)
        procs[int(d)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, fields[19])
    tree, frontier = set(), {root_pid}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (ppid, _, _) in procs.items() if ppid in frontier and pid not in tree}
    for pid in tree & procs.keys():
        key = (pid, procs[pid][2])
        seen[key] = max(seen.get(key, 0.0), procs[pid][1])


def cpu_run(argv: list[str], cwd: Path = REPO) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``genet ARGV`` and every process under it; raises with its output if it
    fails. CPU: the larger of the reaped children's ``getrusage`` and the process tree's own times sampled from
    /proc every 0.1 s (worker processes a forkserver starts are never reaped by us: only the sample sees them)."""
    return cpu_run_together([argv], cwd)


def cpu_run_together(argvs: list[list[str]], cwd: Path = REPO) -> tuple[float, float]:
    """:func:`cpu_run` of several commands started at once: their CPU seconds together, and the wall seconds
    until the last one ends."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seen: dict = {}
    t0 = time.monotonic()
    logs = [tempfile.TemporaryFile("w+") for _ in argvs]
    try:
        children = [subprocess.Popen(GENET + a, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
                    for a, log in zip(argvs, logs)]
        while any(c.poll() is None for c in children):
            for c in children:
                _tree_cpu_s(c.pid, seen)
            time.sleep(0.1)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for a, c, log in zip(argvs, children, logs):
            if c.returncode != 0:
                log.seek(0)
                raise SystemExit(f"`genet {' '.join(a)}` failed ({c.returncode}): {log.read()[-600:]}")
    finally:
        for log in logs:
            log.close()
    reaped = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return max(reaped, sum(seen.values())), wall


def marginal(make_argv, sizes: tuple[int, int]) -> tuple[float, float]:
    """(CPU seconds per unit, start-up CPU seconds) from runs at two sizes."""
    (a, b) = sizes
    ca, _ = cpu_run(make_argv(a))
    cb, _ = cpu_run(make_argv(b))
    per = (cb - ca) / (b - a)
    return per, ca - a * per


TRAIN = {  # use case: (steps at the two sizes, extra options, steps per update)
    "abr": ((6144, 18432), ["--n-envs", "32", "--steps-per-update", "1536"], 1536),
    "cc": ((8000, 24000), [], None),
}


def measure_train(root: Path) -> dict:
    out = {}
    for uc, (sizes, extra, spu) in TRAIN.items():
        def argv(steps, uc=uc, extra=extra):
            d = root / f"train-{uc}-{steps}"
            shutil.rmtree(d, ignore_errors=True)
            return ["train", uc, "--method", "udr", "--range", "rl3", "--steps", str(steps), "--seed", "0",
                    "--torch-threads", "1", "--no-progress", "--out", str(d), *extra]
        per, start = marginal(argv, sizes)
        out[uc] = {"step_cpu_s": per, "start_cpu_s": start, "steps_per_update": spu}
    return out


def measure_trials(root: Path, n_trials: int = 6) -> dict:
    out = {}
    for uc, (sizes, extra, _) in TRAIN.items():
        steps = sizes[0]
        cpu = {}
        for method in ("udr", "genet"):
            d = root / f"trial-{uc}-{method}"
            shutil.rmtree(d, ignore_errors=True)
            argv = ["train", uc, "--method", method, "--range", "rl3", "--steps", str(steps), "--seed", "0",
                    "--torch-threads", "1", "--no-progress", "--out", str(d), *extra]
            if method == "genet":
                argv += ["--rounds", "1", "--trials", str(n_trials), "--random-trials", str(n_trials - 2),
                         "--envs-per-trial", "10", "--baseline", "mpc" if uc == "abr" else "bbr"]
            cpu[method], _ = cpu_run(argv)
        out[uc] = {"trial_cpu_s": (cpu["genet"] - cpu["udr"]) / n_trials, "envs_per_trial": 10}
    return out


#: The policies of the simulate stage's figures: the baselines and a shipped model, as the paper's runs mix them.
SIM_POLICIES = {"abr": "bba,mpc,models/abr/udr3.onnx", "cc": "bbr,cubic,models/cc/udr3.onnx"}
SIM_SETS = {"abr": ("abr/fcc-val", (10, 150)), "cc": ("cc/pantheon-cellular", (10, 177))}


def trace_subset(root: Path, rel: str, n: int) -> Path:
    """``n`` traces of ``../shared/traces/REL``, taken in turn from each of its folders as `genet run` takes a
    `from` set (app/run/plan.py ``spread_pick``), copied into a folder of ``root``."""
    from app.run.plan import spread_pick
    from traces.io import list_trace_files
    src = SHARED / "traces" / rel
    d = root / f"{rel.replace('/', '-')}-{n}"
    if not d.exists():
        for f in spread_pick(list_trace_files(src), n):
            (d / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, d / f.relative_to(src))
    return d


def measure_sim(root: Path) -> dict:
    out = {}
    for uc, (rel, sizes) in SIM_SETS.items():
        pols = SIM_POLICIES[uc]

        def argv(n, uc=uc, rel=rel, pols=pols):
            o = root / f"{uc}-eval-{n}"
            shutil.rmtree(o, ignore_errors=True)
            extra = ["--no-plots"] if uc == "cc" else []
            return ["eval", uc, "--traces", str(trace_subset(root, rel, n)), "--policy", pols, "--no-progress",
                    "--out", str(o), *extra]
        per, start = marginal(argv, sizes)
        n_pols = len(pols.split(","))
        out[uc] = {"eval_cpu_s": per / n_pols, "start_cpu_s": start, "set": rel, "policies": pols}
    return out


def measure_emulate(root: Path, duration_s: float = 10.0) -> dict:
    """Two emulated CC runs (kernel BBR and the shipped Aurora model) over one Pantheon cellular trace, one link
    at a time: CPU seconds per run and per real second."""
    from traces.io import list_trace_files
    trace = list_trace_files(SHARED / "traces" / "cc" / "pantheon-cellular")[0]
    pols = "bbr,models/cc/genet.onnx"
    cpu, wall = cpu_run(["emulate", "cc", "--policy", pols, "--traces", str(trace), "--duration-s",
                         f"{duration_s:g}", "--no-sim", "--no-plots", "--jobs", "1", "--out", str(root / "emu")])
    runs = len(pols.split(","))
    return {"cc": {"cpu_s": cpu / runs, "wall_s": wall / runs, "run_s": duration_s,
                   "cpu_per_real_s": cpu / (runs * duration_s)}}


def check(root: Path, sim: dict | None) -> None:
    """`genet eval cc` of the paper's 4 CC policies over the Pantheon cellular set at --jobs 1 and 2, against
    the model's prediction for that item (a simulate item: start-up, then one task per (trace, policy))."""
    from app.run import costs
    from traces.io import list_trace_files
    traces = SHARED / "traces" / "cc" / "pantheon-cellular"
    pols = "bbr,cubic,models/cc/udr3.onnx,models/cc/genet.onnx"
    evals = len(list_trace_files(traces)) * len(pols.split(","))
    load = os.getloadavg()[0]
    measured = {}
    for jobs in (1, 2):
        out = root / f"check-j{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        measured[jobs] = cpu_run(["eval", "cc", "--traces", str(traces), "--policy", pols, "--no-plots",
                                  "--no-progress", "--jobs", str(jobs), "--out", str(out)])
    print(f"\ncheck: genet eval cc, {evals} runs (4 policies x the Pantheon cellular set), --jobs 1 and 2 "
          f"(load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f})")
    print(f"  {'':<36}{'1 worker':>10}{'2 workers':>11}")
    rows = [("predicted (planner figures)", costs.simulate_work("cc", evals))]
    if sim:
        rows.append(("predicted (CPU figures measured here)",
                     costs.Work((costs.Phase("start-up", 1, sim["cc"]["start_cpu_s"]),
                                 costs.Phase("evaluations", evals, sim["cc"]["eval_cpu_s"])))))
    for label, work in rows:
        print(f"  {label:<36}{costs.stage_wall_s([work], 1):>9.1f}s{costs.stage_wall_s([work], 2):>10.1f}s")
    print(f"  {'measured wall':<36}{measured[1][1]:>9.1f}s{measured[2][1]:>10.1f}s")
    print(f"  {'measured CPU (all processes)':<36}{measured[1][0]:>9.1f}s{measured[2][0]:>10.1f}s")


def check_train(root: Path, train: dict | None, steps: int = 24000) -> None:
    """Two CC training runs (a train stage of two items) one after the other (1 worker) and both at once (2),
    against the model's prediction."""
    from app.run import costs

    def argv(k: int, tag: str) -> list[str]:
        d = root / f"check-train-{tag}-{k}"
        shutil.rmtree(d, ignore_errors=True)
        return ["train", "cc", "--method", "udr", "--range", "rl3", "--steps", str(steps), "--seed", str(k),
                "--torch-threads", "1", "--no-progress", "--out", str(d)]
    load = os.getloadavg()[0]
    one = [cpu_run(argv(k, "w1")) for k in (0, 1)]
    measured = {1: (one[0][0] + one[1][0], one[0][1] + one[1][1]), 2: cpu_run_together([argv(k, "w2") for k in (0, 1)])}
    print(f"\ncheck: a train stage of two CC runs of {steps} steps (genet train cc --method udr), one after the "
          f"other vs both at once (load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f})")
    print(f"  {'':<36}{'1 worker':>10}{'2 workers':>11}")
    rows = [("predicted (planner figures)", costs.train_work("cc", steps, None, "udr"))]
    if train:
        rows.append(("predicted (CPU figures measured here)",
                     costs.Work((costs.Phase("start-up", 1, train["cc"]["start_cpu_s"]),
                                 costs.Phase("PPO updates", 1, steps * train["cc"]["step_cpu_s"])))))
    for label, work in rows:
        print(f"  {label:<36}{costs.stage_wall_s([work, work], 1):>9.1f}s{costs.stage_wall_s([work, work], 2):>10.1f}s")
    print(f"  {'measured wall':<36}{measured[1][1]:>9.1f}s{measured[2][1]:>10.1f}s")
    print(f"  {'measured CPU (all processes)':<36}{measured[1][0]:>9.1f}s{measured[2][0]:>10.1f}s")


def predict(config: Path, workers: list[int], deploy_parallel: str = "none") -> None:
    from app.run import costs, engine, plan, schema
    cfg, _ = schema.load(str(config))
    tmp = Path(tempfile.mkdtemp(prefix="genet-cost-plan-"))
    try:
        stages = engine.Runner(plan.build(cfg, tmp), tmp).to_run(list(schema.STAGES))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if deploy_parallel == "disjoint-paths":  # every campaign's paths at once (they share no host)
        stages["deploy"] = [(n, costs.Work(tuple(
            costs.Phase(p.what, p.tasks, p.task_s, p.kind, costs.DEPLOY_PATHS) if p.kind == "real" else p
            for p in w.phases)), d) for n, w, d in stages["deploy"]]
    print(f"\npredicted wall time of {config} (planner figures, app/run/costs.py; workers = cores; deploy paths: "
          f"{'at once' if deploy_parallel == 'disjoint-paths' else 'back to back'}):")
    print(costs.prediction_text(stages, workers))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "examples" / "paper.toml"))
    ap.add_argument("--workers", default="1,2,8,32,128", help="worker counts of the prediction, comma-separated")
    ap.add_argument("--only", default="train,trial,sim", help="figures to measure: train, trial, sim")
    ap.add_argument("--skip-measure", action="store_true", help="print the prediction only")
    ap.add_argument("--emulate", action="store_true", help="also measure an emulated CC run (root, netns)")
    ap.add_argument("--check", action="store_true", help="the 1- vs 2-worker checks (an eval item, a train stage)")
    ap.add_argument("--deploy-parallel", choices=("none", "disjoint-paths"), default="none",
                    help="the deploy campaigns' paths in the prediction: back to back (a run config's only mode "
                         "today) or at once")
    args = ap.parse_args()
    from app.run import costs
    print(f"# {datetime.now(timezone.utc).isoformat(timespec='seconds')} {platform.node()} {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; CPU seconds (user + system)")
    root = Path(tempfile.mkdtemp(prefix="genet-cost-"))
    sim = None
    try:
        only = set() if args.skip_measure else set(args.only.split(","))
        train = None
        if "train" in only:
            train = measure_train(root)
            for uc, m in train.items():
                planner = 1 / (min(costs.TRAIN_STEPS_PER_S["abr"], costs.ABR_STEPS_PER_S_PER_ENV * 32)
                               if uc == "abr" else costs.TRAIN_STEPS_PER_S[uc])
                upd = f"; one update ({m['steps_per_update']} steps) {m['step_cpu_s'] * m['steps_per_update']:.2f} s" \
                    if m["steps_per_update"] else ""
                print(f"train {uc}: {m['step_cpu_s'] * 1e3:.3f} ms CPU per step (planner {planner * 1e3:.3f} ms), "
                      f"start-up {m['start_cpu_s']:.1f} s (planner {costs.TRAIN_START_S:g} s){upd}")
        if "trial" in only:
            for uc, m in measure_trials(root).items():
                print(f"BO trial {uc} ({m['envs_per_trial']} environments): {m['trial_cpu_s']:.2f} s CPU "
                      f"(planner {m['envs_per_trial'] * costs.TRIAL_ENV_S[uc]:.2f} s)")
        if "sim" in only:
            sim = measure_sim(root)
            for uc, m in sim.items():
                print(f"simulator evaluation {uc} (one trace, one policy): {m['eval_cpu_s']:.3f} s CPU (planner "
                      f"{costs.SIM_EVAL_S[uc]:g} s), `genet eval` start-up {m['start_cpu_s']:.1f} s (planner "
                      f"{costs.SIM_START_S[uc]:g} s)")
        if args.emulate:
            m = measure_emulate(root)["cc"]
            print(f"emulated run cc ({m['run_s']:g} s; bbr and an Aurora model, one link at a time): "
                  f"{m['cpu_s']:.1f} s CPU and {m['wall_s']:.1f} s wall per run ({m['cpu_per_real_s']:.2f} CPU s per "
                  f"real s; planner: real time x {costs.EMU_OVERHEAD:g}, + {costs.EMU_START_S:g} s per command)")
        if args.check:
            check(root, sim)
            check_train(root, train)
        predict(Path(args.config), [int(w) for w in args.workers.split(",")], args.deploy_parallel)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
