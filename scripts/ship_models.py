#!/usr/bin/env python3
"""Train, export and evaluate the shipped models (`models/abr/*.onnx`, `models/cc/*.onnx`).

Every model comes from the project's own commands, run as subprocesses exactly
as a user would type them:

1. ``genet train {abr,cc} --method ... --seed ... --steps ... --out runs/ship/<use case>-<name>``
   (``--resume`` when the run directory exists: a killed shipping run continues);
2. ``genet export RUN_DIR -o models/<use case>/<name>.onnx``;
3. ``genet eval {abr,cc}`` of the model next to the baselines on the shared
   validation data (ABR: fcc-val, norway-val in the default Pensieve mode;
   CC: pantheon-ethernet, pantheon-cellular and RL3-range synthetic traces);
4. ``models/<use case>/<name>.json``: the training command, seed, steps,
   updates, training wall time, git commit, the export and evaluation commands
   and the evaluation figures.

``models/RESULTS.md`` then holds the science table (every shipped model and
baseline on every evaluation set). Models whose ``.onnx`` and ``.json`` exist
are not retrained (``--force`` retrains).

Usage::

    python scripts/ship_models.py                 # everything, two trainings at a time
    python scripts/ship_models.py --only abr/genet,cc/udr3 --jobs 1
    python scripts/ship_models.py --reevaluate    # evaluate the shipped files again, update their .json
    python scripts/ship_models.py --table-only    # rebuild models/RESULTS.md from the .json files
    python scripts/ship_models.py --only cc/genet --from-run runs/study/runs/cc-genet-distinct-s1 \
        --variant "cc-genet-distinct, seed 1 of 0-2 (models/study/results.md)"   # ship a trained run

Needs ``../shared`` (real training traces, validation sets, the video); the
paths can be changed with ``--shared``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Environment steps per model: every ABR model gets the same budget (the science compares at equal steps).
ABR_STEPS = 6_000_000
CC_STEPS = 2_160_000
#: ABR settings shared by the four ABR models (see the closing note of issue 6 for why).
ABR_COMMON = ["--n-envs", "32", "--steps-per-update", "1536", "--entropy-rate", "2e-3", "--real-prob", "0.3"]
CC_COMMON: list[str] = []


@dataclass
class ModelSpec:
    """One shipped model: use case, name, method options and evaluation sets."""

    use_case: str
    name: str
    options: list[str]
    steps: int
    seed: int = 0
    real: bool = True  # mix the shared real training traces in (ABR)
    evals: list[tuple[str, list[str]]] = field(default_factory=list)


def specs(shared: Path, abr_steps: int, cc_steps: int) -> list[ModelSpec]:
    abr_eval = [(s, ["--traces", str(shared / "traces/abr" / s)]) for s in ("fcc-val", "norway-val")]
    cc_eval = [(s, ["--traces", str(shared / "traces/cc" / s)]) for s in ("pantheon-ethernet", "pantheon-cellular")]
    cc_eval.append(("rl3-synthetic", ["--config", "rl3", "-n", "100", "--seed", "1"]))
    out = [ModelSpec("abr", f"udr{i}", ["--method", "udr", "--range", f"rl{i}"], abr_steps, evals=abr_eval)
           for i in (1, 2, 3)]
    # ABR Genet: the study's best variant (issue 17, models/study/results.md): the BO searches Genet's own five
    # ABR dimensions only; seed 2 is the best of seeds 0-2 on both validation sets
    out.append(ModelSpec("abr", "genet", ["--method", "genet", "--range", "rl1", "--baseline", "mpc", "--space",
                                          "traces/spaces/abr-paperdims.json"], abr_steps, seed=2, evals=abr_eval))
    out.append(ModelSpec("cc", "udr3", ["--method", "udr", "--range", "rl3"], cc_steps, real=False, evals=cc_eval))
    # CC Genet: the study's variant whose seed 0 beats the plain curriculum's seed 0 on all three sets (issue 17):
    # BO trials scored on the packets sent after each sender's first ACK
    out.append(ModelSpec("cc", "genet", ["--method", "genet", "--range", "rl3", "--baseline", "bbr",
                                         "--gap-after-first-ack"], cc_steps, real=False, evals=cc_eval))
    # the comparisons that matter first (Genet vs UDR-RL3), so a cut-short shipping run still answers them
    order = ["abr/genet", "abr/udr3", "cc/genet", "cc/udr3", "abr/udr1", "abr/udr2"]
    return sorted(out, key=lambda s: order.index(f"{s.use_case}/{s.name}"))


def sh(cmd: list[str], log: Path | None = None) -> str:
    """Run a genet command; raise with its output on failure."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if log is not None:
        with open(log, "a") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def shared_path(args: argparse.Namespace) -> Path:
    """``--shared`` relative to the repository (the commands run there), so the commands recorded in the
    metadata stay portable (``../shared/...``)."""
    import os
    return Path(os.path.relpath(Path(args.shared).resolve(), ROOT))


def git_commit() -> str:
    from genet.runmeta import git_commit as project_commit  # the one definition (genet/runmeta.py)
    return project_commit() or ""


def train_command(spec: ModelSpec, shared: Path, run_dir: Path, genet: str) -> list[str]:
    cmd = [genet, "train", spec.use_case, *spec.options, "--seed", str(spec.seed), "--steps", str(spec.steps),
           "--out", str(run_dir), "--torch-threads", "1", "--no-progress"]
    if spec.use_case == "abr":
        cmd += ABR_COMMON
        if spec.real:
            cmd += ["--real-traces", f"{shared / 'traces/abr/fcc-train'},{shared / 'traces/abr/norway-train'}"]
    else:
        cmd += CC_COMMON
    return cmd


def evaluate(spec: ModelSpec, onnx: Path, genet: str, log: Path) -> tuple[dict, list[str]]:
    """Mean reward of the model and the baselines on each evaluation set ({set: {policy: value}}) and
    the `genet eval` commands that printed them."""
    baselines = "mpc,bba" if spec.use_case == "abr" else "bbr,cubic"
    results: dict[str, dict[str, float]] = {}
    commands = []
    onnx = onnx.relative_to(ROOT) if onnx.is_absolute() else onnx
    for set_name, where in spec.evals:
        shown = ["eval", spec.use_case, *where, "--policy", f"{onnx},{baselines}"]
        with tempfile.TemporaryDirectory() as tmp:
            sh([genet, *shown, "--out", tmp, "--no-progress"] + (["--no-plots"] if spec.use_case == "cc" else []),
               log)
            results[set_name] = read_summary(spec.use_case, Path(tmp))
        commands.append(shlex.join(["genet", *shown]))
    return results, commands


def read_summary(use_case: str, out: Path) -> dict[str, float]:
    """{policy label: mean reward} in --policy order; the first (the model) is labelled 'model'."""
    if use_case == "abr":
        pairs = [(s["policy"], float(s["qoe"])) for s in json.loads((out / "results.json").read_text())["summary"]]
    else:
        import csv
        with open(out / "summary.csv") as fh:
            pairs = [(s["policy"], float(s["reward"])) for s in csv.DictReader(fh)]
    return {("model" if i == 0 else k): v for i, (k, v) in enumerate(pairs)}


def ship(spec: ModelSpec, args: argparse.Namespace) -> dict:
    shared = shared_path(args)
    genet = str(Path(sys.executable).parent / "genet")
    run_dir = Path("runs") / "ship" / f"{spec.use_case}-{spec.name}"
    models = ROOT / "models" / spec.use_case
    models.mkdir(parents=True, exist_ok=True)
    onnx, meta_path = models / f"{spec.name}.onnx", models / f"{spec.name}.json"
    if onnx.is_file() and meta_path.is_file() and not args.force:
        meta = json.loads(meta_path.read_text())
        if args.reevaluate:  # the shipped file as it is, evaluated again with the current code
            log = ROOT / "runs" / "ship" / f"{spec.use_case}-{spec.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            meta["evaluation"], meta["evaluation_commands"] = evaluate(spec, onnx, genet, log)
            meta_path.write_text(json.dumps(meta, indent=1) + "\n")
            print(f"{spec.use_case}/{spec.name}: re-evaluated: {json.dumps(meta['evaluation'])}", flush=True)
        else:
            print(f"{spec.use_case}/{spec.name}: already shipped ({meta_path})", flush=True)
        return meta
    log = ROOT / run_dir.parent / f"{spec.use_case}-{spec.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    run_dir_abs = ROOT / run_dir
    cmd = train_command(spec, shared, run_dir, genet)
    if args.from_run:  # a run trained elsewhere (e.g. a study variant): exported and evaluated as it is
        run_dir = run_dir_abs = Path(args.from_run).resolve()
        if not (run_dir / "model.pt").is_file():
            raise FileNotFoundError(f"--from-run {args.from_run}: no model.pt (not a finished `genet train` run)")
        spec.seed = int(json.loads((run_dir / "run.json").read_text())["seed"])
        print(f"{spec.use_case}/{spec.name}: from {run_dir}", flush=True)
    elif (run_dir_abs / "run.json").is_file():
        if (run_dir_abs / "model.pt").is_file() and not args.force:
            print(f"{spec.use_case}/{spec.name}: trained already, exporting", flush=True)
        else:
            print(f"{spec.use_case}/{spec.name}: resuming {run_dir}", flush=True)
            sh(cmd + ["--resume"], log)
    else:
        print(f"{spec.use_case}/{spec.name}: training ({shlex.join(cmd[1:])})", flush=True)
        sh(cmd, log)
    run = json.loads((run_dir_abs / "run.json").read_text())
    if run.get("use_case") != spec.use_case:
        raise ValueError(f"{run_dir}: a {run.get('use_case')} run, not {spec.use_case}")
    export_cmd = [genet, "export", str(run_dir), "-o", str(onnx)]
    sh(export_cmd, log)
    results, eval_cmds = evaluate(spec, onnx, genet, log)
    import csv
    with open(run_dir_abs / "learning_curve.csv") as fh:
        curve = list(csv.DictReader(fh))
    last = curve[-1] if curve else {}
    meta = {"name": spec.name, "use_case": spec.use_case, "file": str(onnx.relative_to(ROOT)),
            "command": run.get("command"), "seed": spec.seed, "steps": int(float(last.get("env_steps", 0))),
            "updates": int(float(last.get("update", 0))), "train_wall_s": round(float(last.get("wall_s", 0)), 1),
            "commit": run.get("commit"), "shipped_at_commit": git_commit(), "real_traces": run.get("real_traces"),
            "real_prob": run.get("real_prob"), "train_config": run.get("train_config"),
            "export_command": shlex.join(["genet", "export", str(run_dir), "-o",
                                          str(onnx.relative_to(ROOT))]),
            "evaluation_commands": eval_cmds, "evaluation": results,
            "evaluation_note": "mean per-trace reward: ABR total QoE of one video (default Pensieve mode), CC "
                               "Genet-form reward; 'model' is this model, the others are the rule-based baselines"}
    if args.from_run:
        meta["variant"] = args.variant or run_dir.name
    for f in ("rounds.csv",):
        if (run_dir_abs / f).is_file():
            meta["curriculum_rounds"] = (run_dir_abs / f).read_text().splitlines()
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{spec.use_case}/{spec.name}: shipped {onnx.relative_to(ROOT)} "
          f"({meta['steps']} steps, {meta['train_wall_s']} s): {json.dumps(results)}", flush=True)
    return meta


def results_table(root: Path | None = None) -> str:
    """The science table (Markdown) from every models/<use case>/<name>.json (of ``root``, default ROOT)."""
    root = ROOT if root is None else root
    lines = ["# Shipped models: evaluation", "",
             "Generated by `python scripts/ship_models.py` from the `.json` files next to the models "
             "(mean per-trace reward; ABR: total QoE of one video, default Pensieve mode; CC: Genet-form "
             "reward).", ""]
    if (root / "models" / "study" / "results.md").is_file():
        lines += ["Each row here is one seed. The multi-seed study (issue 17: every seed, mean ± std, learning curves, "
                  "the variants tried) is in [study/results.md](study/results.md), made by "
                  "`python scripts/genet_study.py`; what it found, and where the issue's targets stand, in "
                  "[study/FINDINGS.md](study/FINDINGS.md).", ""]
        curves = [f for f in ("curves-abr.png", "curves-cc.png") if (root / "models" / "study" / f).is_file()]
        if curves:
            lines += ["Learning curves (Figure 18: validation reward against environment steps, mean and min-max "
                      "band over seeds; each preset's final models as markers where its curves cover fewer seeds):", "",
                      *[f"![{f[:-4]}](study/{f})" for f in curves], ""]
    for use_case in ("abr", "cc"):
        metas = [json.loads(p.read_text()) for p in sorted((root / "models" / use_case).glob("*.json"))]
        if not metas:
            continue
        sets = list(metas[0]["evaluation"])
        base = [k for k in metas[0]["evaluation"][sets[0]] if k != "model"]
        lines += [f"## {use_case.upper()}", "",
                  "| policy | steps | train wall (s) | " + " | ".join(sets) + " |",
                  "|---|---|---|" + "---|" * len(sets)]
        for b in base:
            lines.append(f"| {b} (baseline) | | | " + " | ".join(f"{metas[0]['evaluation'][s][b]:.2f}"
                                                             for s in sets) + " |")
        for m in metas:
            lines.append(f"| {m['name']} | {m['steps']:,} | {m['train_wall_s']:.0f} | "
                         + " | ".join(f"{m['evaluation'][s]['model']:.2f}" for s in sets) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared material directory")
    p.add_argument("--only", default="", help="comma-separated use_case/name (e.g. abr/genet,cc/udr3)")
    p.add_argument("--jobs", type=int, default=2, help="trainings at a time (each uses one torch thread)")
    p.add_argument("--abr-steps", type=int, default=ABR_STEPS, help="environment steps per ABR model")
    p.add_argument("--cc-steps", type=int, default=CC_STEPS, help="environment steps per CC model")
    p.add_argument("--force", action="store_true", help="retrain models that are shipped already")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate the shipped models again (no training, no export) and update their .json")
    p.add_argument("--table-only", action="store_true", help="only rebuild models/RESULTS.md")
    p.add_argument("--from-run", metavar="RUN_DIR", default=None,
                   help="ship this finished `genet train` run (one --only model; no training): export, evaluate, "
                        "metadata with the run's own command and seed")
    p.add_argument("--variant", default="", help="with --from-run: what the run is (recorded as 'variant')")
    args = p.parse_args(argv)
    if args.from_run and (not args.only or "," in args.only):
        p.error("--from-run ships one model: give it one --only use_case/name")
    if args.from_run:
        args.force = True
    if not args.table_only:
        todo = specs(shared_path(args), args.abr_steps, args.cc_steps)
        if args.only:
            want = set(args.only.split(","))
            todo = [s for s in todo if f"{s.use_case}/{s.name}" in want]
        t0 = time.perf_counter()
        failed = []
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(ship, s, args): s for s in todo}
            for fut, s in futures.items():
                try:
                    fut.result()
                except Exception as exc:  # one failed model does not stop the others
                    failed.append(f"{s.use_case}/{s.name}")
                    print(f"{s.use_case}/{s.name}: FAILED: {exc}", file=sys.stderr, flush=True)
        print(f"done in {time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    table = results_table()
    (ROOT / "models" / "RESULTS.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
