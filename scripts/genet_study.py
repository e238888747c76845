#!/usr/bin/env python3
"""The multi-seed study of issue 17: does the Genet curriculum beat UDR? One command, resumable.

Runs a matrix of named presets x seeds, every run with the same environment-step budget per use
case, as the project's own commands (subprocesses, as a user types them; ``--jobs`` at a time, one
torch thread each):

1. ``genet train {abr,cc} <preset options> --seed S --steps N --out STUDY/runs/<preset>-s<S>``
   (``--resume`` when the run directory holds an unfinished run; finished runs are skipped);
2. ``genet export`` of the final model, ``genet eval`` on the validation sets (ABR: fcc-val,
   norway-val; CC: pantheon-ethernet, pantheon-cellular and RL3 synthetic traces) next to the
   rule-based baselines -> ``STUDY/results/<preset>-s<S>.json``;
3. learning curves (Figure 18), once every run of the matrix is trained and evaluated: up to
   ``--curve-points`` checkpoints of a run, evenly spaced and always its last (``checkpoints/step_*.pt``,
   the curriculum's ``model-round*``), exported and evaluated on the first validation set (the model
   alone: the baselines do not change with the checkpoint) -> ``STUDY/curves/<preset>-s<S>.csv``;
   ``curves-<use case>.png``: validation reward against environment steps, mean and min-max band over
   seeds, one line per preset; presets with more records than curves (runs restored from elsewhere) as their
   final models' mean and min-max at their steps; the baselines as dashed lines;
4. ``STUDY/results.md``: every seed's figure and mean ± std per preset and evaluation set, plus the
   baselines; ``STUDY/results.json`` the same as data. ``--publish`` copies these, the plots and the
   per-run records and curves (``results/``, ``curves/``) to ``models/study``; ``--restore`` brings the
   records and curves back into a new study directory (a new machine: the table is rebuilt, finished runs
   are not trained again).

Presets (``--presets``, comma-separated; ``--list`` prints them): the matrix ``abr-udr1``, ``abr-udr2``,
``abr-udr3``, ``abr-genet``, ``cc-udr3``, ``cc-genet`` and the variants of issue 17:
``abr-genet-paperdims`` (BO over the paper's dimensions only: chunk length and video length fixed
at their defaults), ``abr-genet-w0.1`` / ``cc-genet-w0.1`` (promotion weight 0.1),
``abr-genet-ensemble`` / ``cc-genet-ensemble`` (max gap over both baselines), ``abr-genet-warm`` /
``cc-genet-warm`` (the paper's schedule: start from the same seed's UDR-RL3 model, fixed updates per
round; their budget is the UDR-RL3 run's plus the rounds'), ``abr-cl1``..``cl3``, ``cc-cl1``..``cl3``.

Usage::

    python scripts/genet_study.py                       # the matrix, 3 seeds, two runs at a time
    python scripts/genet_study.py --presets abr-genet-paperdims,abr-genet-warm --seeds 0,1,2
    python scripts/genet_study.py --table-only          # rebuild results.md / curves from what exists
    python scripts/genet_study.py --table-only --publish   # ... and copy them to models/study/
    python scripts/genet_study.py --restore --presets abr-cl1 --seeds 0   # a new checkout: the published
                                        # records first (their runs are skipped), then the new run, one table
    python scripts/genet_study.py --study-dir /tmp/s --abr-steps 2000 --cc-steps 400 --tiny   # seconds

Nothing is tuned on anything but the training and validation sets: the presets are fixed here.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from ship_models import read_summary, sh  # noqa: E402  (one definition: how a genet command runs and is read)

#: Budgets (environment steps per run): the shipped models' (scripts/ship_models.py).
ABR_STEPS = 6_000_000
CC_STEPS = 2_160_000
ABR_COMMON = ["--n-envs", "32", "--steps-per-update", "1536", "--entropy-rate", "2e-3", "--real-prob", "0.3"]
#: Options that make every run tiny (for the test of this script): small batches, few BO trials.
TINY = {"abr": ["--n-envs", "4", "--steps-per-update", "64", "--trials", "2", "--random-trials", "2",
                "--envs-per-trial", "2", "--rounds", "1", "--checkpoint-every", "2"],
        "cc": ["--steps-per-update", "100", "--minibatch", "50", "--epochs", "1", "--trials", "2",
               "--random-trials", "2", "--envs-per-trial", "2", "--rounds", "1", "--checkpoint-every", "2"]}
#: Dimensions Genet's ABR BO searched (reference §6.2); the others are fixed by abr-genet-paperdims.
PAPER_ABR_DIMS = ("min_bandwidth_mbps", "max_bandwidth_mbps", "bandwidth_change_interval_s", "min_rtt_ms",
                  "max_buffer_s")


def paperdims_space() -> dict:
    """traces/spaces/abr.json with every dimension but Genet's own five (:data:`PAPER_ABR_DIMS`) fixed at its
    default: what traces/spaces/abr-paperdims.json holds (a test checks they agree)."""
    space = json.loads((ROOT / "traces/spaces/abr.json").read_text())
    for d in space["dimensions"]:
        if d["name"] not in PAPER_ABR_DIMS:
            for key in ("ranges", "range"):
                if isinstance(d.get(key), dict):
                    d[key] = {k: [d["default"], d["default"]] for k in d[key]}
    return space


@dataclass
class Preset:
    """One row of the study: use case, name, `genet train` options; ``warm_from``: the preset whose
    same-seed model this one starts from (it runs after it); ``space``: write a narrowed space file."""

    use_case: str
    name: str
    options: list[str]
    warm_from: str | None = None
    space: str | None = None
    note: str = ""


def presets() -> dict[str, Preset]:
    abr_genet = ["--method", "genet", "--range", "rl1", "--baseline", "mpc"]
    cc_genet = ["--method", "genet", "--range", "rl3", "--baseline", "bbr"]
    out = [Preset("abr", f"abr-udr{i}", ["--method", "udr", "--range", f"rl{i}"], note=f"UDR over RL{i}")
           for i in (1, 2, 3)]
    out += [
        Preset("abr", "abr-genet", abr_genet,
               note="Genet, gap to RobustMPC, BO over the whole ABR space (shipped before this study)"),
        Preset("abr", "abr-genet-paperdims", abr_genet + ["--space", "{space}"], space="paperdims",
               note="BO over the paper's five ABR dimensions only, chunk and video length fixed (shipped: seed 2)"),
        Preset("abr", "abr-genet-paperdims-rl2", ["--method", "genet", "--range", "rl2", "--baseline", "mpc",
                                                  "--space", "{space}"], space="paperdims",
               note="as abr-genet-paperdims, warm-up and initial distribution over RL2 (an RL1 warm-up, links of "
                    "1-5 Mbit/s, leaves a policy that never picks the 4.3-Mbit/s rung)"),
        Preset("abr", "abr-genet-paperdims-w0.1", abr_genet + ["--space", "{space}", "--promote-weight", "0.1"],
               space="paperdims", note="as abr-genet-paperdims, promotion weight 0.1 (each promotion takes a "
                                       "tenth of the mixture: 39 % of RL1 is left after nine rounds, 4 % at 0.3)"),
        Preset("abr", "abr-genet-paperdims-ensemble", ["--method", "genet", "--range", "rl1", "--baseline", "mpc,bba",
                                                       "--ensemble", "--space", "{space}"], space="paperdims",
               note="as abr-genet-paperdims, max gap over RobustMPC and BBA (the ensemble baseline)"),
        Preset("abr", "abr-genet-w0.1", abr_genet + ["--promote-weight", "0.1"], note="promotion weight 0.1"),
        Preset("abr", "abr-genet-ensemble", ["--method", "genet", "--range", "rl1", "--baseline", "mpc,bba",
                                             "--ensemble"], note="max gap over RobustMPC and BBA"),
        Preset("abr", "abr-genet-warm", abr_genet + ["--init-from", "{warm}", "--updates-per-round", "{per_round}"],
               warm_from="abr-udr3", note="warm start from UDR-RL3, fixed updates per round (paper §6.2-6.3)"),
        Preset("abr", "abr-genet-paper", ["--method", "genet", "--range", "rl3", "--baseline", "mpc", "--space",
                                          "{space}", "--init-from", "{warm_first}", "--updates-per-round",
                                          "{per_round}"], space="paperdims", warm_from="abr-udr3",
               note="the paper's schedule (§6.2): the paper's five dimensions, RL3 as the initial distribution, "
                    "warm start from the same seed's first UDR-RL3 checkpoint (307,200 steps; the paper's "
                    "ep-1000 of 75,000), fixed updates per round (the checkpoint's steps count in the run's total)"),
        Preset("cc", "cc-udr3", ["--method", "udr", "--range", "rl3"], note="UDR over RL3"),
        Preset("cc", "cc-genet", cc_genet, note="Genet, gap to BBR (as shipped)"),
        Preset("cc", "cc-genet-w0.1", cc_genet + ["--promote-weight", "0.1"], note="promotion weight 0.1"),
        Preset("cc", "cc-genet-distinct", cc_genet + ["--promotion-distance", "0.05"],
               note="each round promotes its best trial farther than 0.05 from every earlier promotion"),
        Preset("cc", "cc-genet-ack", cc_genet + ["--gap-after-first-ack"],
               note="BO trials scored on the packets sent after each sender's first ACK"),
        Preset("cc", "cc-genet-ack-w0.1", cc_genet + ["--gap-after-first-ack", "--promote-weight", "0.1"],
               note="cc-genet-ack with promotion weight 0.1 (the two variants helped on different sets)"),
        Preset("cc", "cc-genet-ensemble", ["--method", "genet", "--range", "rl3", "--baseline", "bbr,cubic",
                                           "--ensemble"], note="max gap over BBR and Cubic"),
        Preset("cc", "cc-genet-warm", cc_genet + ["--init-from", "{warm}", "--updates-per-round", "{per_round}"],
               warm_from="cc-udr3", note="warm start from UDR-RL3, fixed updates per round"),
    ]
    for uc, rng in (("abr", "rl1"), ("cc", "rl3")):
        out += [Preset(uc, f"{uc}-cl{k}", ["--method", f"cl{k}", "--range", rng] +
                       (["--baseline", "mpc" if uc == "abr" else "bbr"] if k == 2 else []), note=CL_NOTES[k])
                for k in (1, 2, 3)]
    return {p.name: p for p in out}


#: The paper's hand-made curricula (§5.2, Figure 18), as `genet train --method clK` runs them.
CL_NOTES = {1: "CL1, hand-picked difficulty: stages whose bandwidth-change interval widens from the calmest "
               "links to the whole range",
            2: "CL2, where the baseline does badly: BO on the optimum's reward minus the baseline's",
            3: "CL3, where the policy is far from the optimum: BO on the optimum's reward minus the policy's"}

MATRIX = ("abr-udr1", "abr-udr2", "abr-udr3", "abr-genet", "cc-udr3", "cc-genet")


def eval_sets(use_case: str, shared: Path) -> list[tuple[str, list[str]]]:
    if use_case == "abr":
        return [(s, ["--traces", str(shared / "traces/abr" / s)]) for s in ("fcc-val", "norway-val")]
    out = [(s, ["--traces", str(shared / "traces/cc" / s)]) for s in ("pantheon-ethernet", "pantheon-cellular")]
    return out + [("rl3-synthetic", ["--config", "rl3", "-n", "100", "--seed", "1"])]


class Study:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dir = Path(args.study_dir).resolve()
        self.shared = Path(os.path.relpath(Path(args.shared).resolve(), ROOT))
        self.genet = str(Path(sys.executable).parent / "genet")
        self.presets = presets()
        for sub in ("runs", "results", "curves", "logs", "onnx"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def restore(self, src: Path) -> int:
        """Copy the per-run records and curves a ``--publish`` left in ``src`` (``results/*.json``,
        ``curves/*.csv``) into the study directory where it has none of its own: a new checkout rebuilds the
        table and plots, and a rerun skips the runs that have a record. Returns how many files it copied."""
        import shutil
        copied = 0
        for sub, pattern in (("results", "*.json"), ("curves", "*.csv")):
            for f in sorted((src / sub).glob(pattern)):
                if not (self.dir / sub / f.name).exists():
                    shutil.copy2(f, self.dir / sub / f.name)
                    copied += 1
        return copied

    # ------------------------------------------------------------- one run
    def run_dir(self, name: str, seed: int) -> Path:
        return self.dir / "runs" / f"{name}-s{seed}"

    def first_checkpoint(self, name: str, seed: int) -> Path:
        """The earliest step checkpoint of preset ``name``'s run of ``seed`` (the paper warm-starts ABR Genet
        from an early UDR-RL3 checkpoint); its final model when it kept none."""
        run = self.run_dir(name, seed)
        found = sorted((run / "checkpoints").glob("step_*.pt"), key=lambda f: int(f.stem.split("_")[1]))
        return found[0] if found else run / "model.pt"

    def space_file(self, kind: str) -> Path:
        """abr paperdims: the committed traces/spaces/abr-paperdims.json (:func:`paperdims_space`)."""
        assert kind == "paperdims", kind
        return ROOT / "traces" / "spaces" / "abr-paperdims.json"

    def train_command(self, p: Preset, seed: int) -> list[str]:
        a = self.args
        steps = a.abr_steps if p.use_case == "abr" else a.cc_steps
        opts = []
        for o in p.options:
            if o == "{space}":
                o = str(self.space_file(p.space))
            elif o == "{warm}":
                o = str(self.run_dir(p.warm_from, seed) / "model.pt")
            elif o == "{warm_first}":
                o = str(self.first_checkpoint(p.warm_from, seed))
            elif o == "{per_round}":
                spu = int(self._option(p, "--steps-per-update") or (1536 if p.use_case == "abr" else 7200))
                rounds = int(self._option(p, "--rounds") or 9)
                o = str(max(1, steps // spu // (rounds + 1)))
            opts.append(o)
        cmd = [self.genet, "train", p.use_case, *opts, "--seed", str(seed), "--steps", str(steps),
               "--out", str(self.run_dir(p.name, seed)), "--torch-threads", "1", "--no-progress"]
        if p.use_case == "abr":
            cmd += ABR_COMMON if not a.tiny else ["--entropy-rate", "2e-3"]
            if a.real_traces:
                cmd += ["--real-traces", f"{self.shared / 'traces/abr/fcc-train'},{self.shared / 'traces/abr/norway-train'}"]
        if a.tiny:
            cmd += TINY[p.use_case]
        return cmd

    def _option(self, p: Preset, flag: str) -> str | None:
        opts = p.options + (TINY[p.use_case] if self.args.tiny else []) + (ABR_COMMON if p.use_case == "abr" and
                                                                          not self.args.tiny else [])
        return opts[opts.index(flag) + 1] if flag in opts else None

    def train(self, p: Preset, seed: int) -> Path:
        run = self.run_dir(p.name, seed)
        log = self.dir / "logs" / f"{p.name}-s{seed}.log"
        cmd = self.train_command(p, seed)
        if (run / "model.pt").is_file():
            return run
        if (run / "run.json").is_file():
            print(f"{p.name} s{seed}: resuming", flush=True)
            sh(cmd + ["--resume"], log)
        else:
            print(f"{p.name} s{seed}: training", flush=True)
            sh(cmd, log)
        return run

    def evaluate(self, p: Preset, seed: int, model: Path | None = None, sets=None,
                 with_baselines: bool = True) -> dict[str, dict[str, float]]:
        """Export (the final model or ``model``) and `genet eval` on each set; {set: {policy: reward}}."""
        run = self.run_dir(p.name, seed)
        log = self.dir / "logs" / f"{p.name}-s{seed}.log"
        tag = model.name.replace(".pt", "") if model is not None else "final"
        onnx = self.dir / "onnx" / f"{p.name}-s{seed}-{tag}.onnx"
        if not onnx.is_file():
            sh([self.genet, "export", str(run), "-o", str(onnx)] + (["--checkpoint", str(model)] if model else []),
               log)
        baselines = ("," + ("mpc,bba" if p.use_case == "abr" else "bbr,cubic")) if with_baselines else ""
        out = {}
        for set_name, where in (sets or eval_sets(p.use_case, self.shared)):
            if self.args.tiny and p.use_case == "cc" and "--config" in where:
                where = ["--config", "rl3", "-n", "2", "--seed", "1"]
            with tempfile.TemporaryDirectory() as tmp:
                sh([self.genet, "eval", p.use_case, *where, "--policy", f"{onnx}{baselines}", "--out", tmp,
                    "--no-progress"] + (["--no-plots"] if p.use_case == "cc" else []), log)
                out[set_name] = read_summary(p.use_case, Path(tmp))
        return out

    def checkpoints(self, run: Path) -> list[tuple[Path, int]]:
        """(checkpoint, environment steps) of the run, by steps: at most ``--curve-points``, evenly spaced, the
        last kept (a 30-point curve cost more than the training: one export and one evaluation per point)."""
        import torch
        found = list((run / "checkpoints").glob("step_*.pt")) + list(run.glob("model-round*"))
        found = sorted(((f, int(torch.load(f, weights_only=False)["env_steps"])) for f in found), key=lambda x: x[1])
        n = self.args.curve_points
        if len(found) <= n:
            return found
        import numpy as np
        picks = np.unique(np.round(np.linspace(len(found) - 1, 0, n)).astype(int))
        return [found[i] for i in sorted(picks)]

    def curve(self, p: Preset, seed: int) -> Path:
        """Validation reward of the chosen checkpoints (:meth:`checkpoints`) on the first evaluation set
        (Figure 18). Points of an earlier run with another ``--curve-points`` are dropped, so every seed's
        curve has the same points."""
        path = self.dir / "curves" / f"{p.name}-s{seed}.csv"
        if not self.run_dir(p.name, seed).is_dir():
            return path  # a record restored (--restore) without its run: its checkpoints are elsewhere
        chosen = self.checkpoints(self.run_dir(p.name, seed))
        names = {ck.name for ck, _ in chosen}
        rows = []
        if path.is_file():
            with open(path) as fh:
                rows = [r for r in csv.DictReader(fh) if r["checkpoint"] in names]
        done = {r["checkpoint"] for r in rows}
        first = eval_sets(p.use_case, self.shared)[:1]
        for ck, steps in chosen:
            if ck.name in done:
                continue
            res = self.evaluate(p, seed, model=ck, sets=first, with_baselines=False)[first[0][0]]
            rows.append({"checkpoint": ck.name, "env_steps": steps, "set": first[0][0], "reward": res["model"]})
            self._write_curve(path, rows)  # after every point: a killed study keeps its curve
        self._write_curve(path, rows)  # also when nothing was new: the dropped points go
        return path

    @staticmethod
    def _write_curve(path: Path, rows: list[dict]) -> None:
        rows.sort(key=lambda r: int(r["env_steps"]))
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["checkpoint", "env_steps", "set", "reward"])
            w.writeheader()
            w.writerows(rows)

    def one(self, p: Preset, seed: int) -> dict:
        result = self.dir / "results" / f"{p.name}-s{seed}.json"
        if result.is_file():
            rec = json.loads(result.read_text())
        else:
            run = self.train(p, seed)
            info = json.loads((run / "run.json").read_text())
            import torch
            blob = torch.load(run / "model.pt", weights_only=False)
            rec = {"preset": p.name, "use_case": p.use_case, "seed": seed, "note": p.note,
                   "command": info.get("command"), "commit": info.get("commit"), "env_steps": blob["env_steps"],
                   "updates": blob["updates"], "train_wall_s": blob["wall_s"],
                   "evaluation": self.evaluate(p, seed)}
            if (run / "rounds.csv").is_file():
                rec["rounds"] = (run / "rounds.csv").read_text().splitlines()
            result.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"{p.name} s{seed}: {json.dumps({k: v['model'] for k, v in rec['evaluation'].items()})}", flush=True)
        return rec

    # ------------------------------------------------------------- matrix
    def run_all(self, names: list[str], seeds: list[int]) -> list[str]:
        unknown = [n for n in names if n not in self.presets]
        if unknown:
            raise SystemExit(f"unknown preset(s) {', '.join(unknown)}; --list shows them")
        # a warm-started preset needs its source preset's run of the same seed first
        first = [n for n in names if not self.presets[n].warm_from]
        needed = {self.presets[n].warm_from for n in names if self.presets[n].warm_from} - set(first)
        first += sorted(needed)
        later = [n for n in names if self.presets[n].warm_from]
        failed: list[str] = []
        # every run trained and evaluated first (the table), then the curves of those that finished
        stages = [(self.one, group) for group in (first, later)]
        if not self.args.no_curves:
            stages.append((self.curve, first + later))
        for work, group in stages:
            jobs = [(self.presets[n], s) for s in seeds for n in group if f"{n}-s{s}" not in failed]
            with ThreadPoolExecutor(max_workers=max(1, self.args.jobs)) as pool:
                futures = {pool.submit(work, p, s): (p, s) for p, s in jobs}
                for fut, (p, s) in futures.items():
                    try:
                        fut.result()
                    except Exception as exc:  # one failed run does not stop the others
                        failed.append(f"{p.name}-s{s}")
                        print(f"{p.name} s{s}: FAILED: {exc}", file=sys.stderr, flush=True)
        return failed

    # ------------------------------------------------------------- output
    def table(self) -> str:
        import numpy as np
        recs = [json.loads(p.read_text()) for p in sorted((self.dir / "results").glob("*.json"))]
        data: dict = {}
        lines = ["# Genet vs UDR: multi-seed study (issue 17)", "",
                 "Generated by `python scripts/genet_study.py` (mean ± std over seeds; every seed's figure in "
                 "brackets; ABR: total QoE of one video, default Pensieve mode; CC: Genet-form reward).", ""]
        for uc in ("abr", "cc"):
            mine = [r for r in recs if r["use_case"] == uc]
            if not mine:
                continue
            sets = list(mine[0]["evaluation"])
            lines += [f"## {uc.upper()}", "", "| preset | seeds | env steps | " + " | ".join(sets) + " |",
                      "|---|---|---|" + "---|" * len(sets)]
            for b in [k for k in mine[0]["evaluation"][sets[0]] if k != "model"]:
                vals = [np.mean([r["evaluation"][s][b] for r in mine]) for s in sets]
                lines.append(f"| {b} (baseline) | | | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
            order = list(self.presets)
            names = sorted(dict.fromkeys(r["preset"] for r in mine),
                           key=lambda n: order.index(n) if n in order else len(order))
            for name in names:
                rs = sorted((r for r in mine if r["preset"] == name), key=lambda r: r["seed"])
                cells = []
                for s in sets:
                    v = np.array([r["evaluation"][s]["model"] for r in rs])
                    cells.append(f"{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.2f} "
                                 f"[{', '.join(f'{x:.2f}' for x in v)}]")
                    data.setdefault(uc, {}).setdefault(name, {})[s] = {
                        "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                        "seeds": {str(r["seed"]): float(x) for r, x in zip(rs, v)}}
                lines.append(f"| {name} | {','.join(str(r['seed']) for r in rs)} | "
                             f"{int(np.mean([r['env_steps'] for r in rs])):,} | " + " | ".join(cells) + " |")
            lines.append("")
            lines += [f"- `{n}`: {self.presets[n].note}" for n in names if n in self.presets]
            lines.append("")
        (self.dir / "results.json").write_text(json.dumps(data, indent=1) + "\n")
        return "\n".join(lines)

    def plot_curves(self) -> list[Path]:
        """Figure 18: validation reward vs environment steps, mean and min-max band over seeds."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
        out = []
        for uc in ("abr", "cc"):
            files = sorted((self.dir / "curves").glob(f"{uc}-*.csv"))
            if not files:
                continue
            by_preset: dict[str, list[list[dict]]] = {}
            for f in files:
                with open(f) as fh:
                    rows = list(csv.DictReader(fh))
                if rows:
                    by_preset.setdefault(f.stem.rsplit("-s", 1)[0], []).append(rows)
            fig, ax = plt.subplots(figsize=(8.5, 4.5))
            for name, runs in by_preset.items():
                n = min(len(r) for r in runs)
                x = np.mean([[float(r["env_steps"]) for r in run[:n]] for run in runs], axis=0)
                y = np.array([[float(r["reward"]) for r in run[:n]] for run in runs])
                line, = ax.plot(x, y.mean(axis=0), label=f"{name} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
                if len(runs) > 1:
                    ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=line.get_color(), alpha=0.15)
            set_name = next(iter(by_preset.values()))[0][0]["set"]
            # the finished runs of presets with fewer curves than records (runs elsewhere): the final model's
            # reward on the same set, mean and min-max over seeds, at its steps; the baselines as lines
            recs = [json.loads(f.read_text()) for f in sorted((self.dir / "results").glob(f"{uc}-*.json"))]
            recs = [r for r in recs if set_name in r.get("evaluation", {})]
            finals: dict[str, list[dict]] = {}
            for r in recs:
                finals.setdefault(r["preset"], []).append(r)
            # a preset's final models as a marker unless its curves cover all its seeds (e.g. one seed retrained
            # for its curve beside seeds restored from elsewhere: the marker shows every seed's final model)
            finals = {k: v for k, v in finals.items() if len(v) > len(by_preset.get(k, []))}
            order = list(self.presets)
            for k, (name, rs) in enumerate(sorted(finals.items(), key=lambda kv: order.index(kv[0])
                                                  if kv[0] in order else len(order))):
                v = np.array([r["evaluation"][set_name]["model"] for r in rs])
                # spread side by side around their steps (most presets share one budget), 1 % of it apart
                x = float(np.mean([r["env_steps"] for r in rs])) * (1 + 0.01 * (k - (len(finals) - 1) / 2))
                ax.errorbar([x], [v.mean()], yerr=[[v.mean() - v.min()], [v.max() - v.mean()]],
                            fmt="osD^v<>ph"[k % 9], ms=5, capsize=3, label=f"{name} (final, {len(rs)} seed{'s' if len(rs) > 1 else ''})")
            if recs:
                for b in [k for k in recs[0]["evaluation"][set_name] if k != "model"]:
                    ax.axhline(float(np.mean([r["evaluation"][set_name][b] for r in recs])), ls="--", lw=1,
                               color="grey", alpha=0.7)
                    ax.annotate(b, (0.0, float(np.mean([r["evaluation"][set_name][b] for r in recs]))),
                                xycoords=("axes fraction", "data"), fontsize=7, color="grey",
                                xytext=(2, 2), textcoords="offset points")
            ax.set_xlabel("environment steps")
            ax.set_ylabel(f"validation reward ({set_name})")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
            fig.tight_layout()
            path = self.dir / f"curves-{uc}{'-' + self.args.curves_tag if self.args.curves_tag else ''}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            out.append(path)
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--study-dir", default=str(ROOT / "runs" / "study"), help="where runs and results go")
    p.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared material directory")
    p.add_argument("--presets", default=",".join(MATRIX), help="comma-separated preset names (--list)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one torch thread)")
    p.add_argument("--abr-steps", type=int, default=ABR_STEPS, help="environment steps per ABR run")
    p.add_argument("--cc-steps", type=int, default=CC_STEPS, help="environment steps per CC run")
    p.add_argument("--no-real-traces", dest="real_traces", action="store_false",
                   help="ABR: do not mix the shared real training traces in")
    p.add_argument("--no-curves", action="store_true", help="skip the per-checkpoint learning curves")
    p.add_argument("--curve-points", type=int, default=8,
                   help="checkpoints per run evaluated for its learning curve (evenly spaced, the last kept)")
    p.add_argument("--tiny", action="store_true", help="tiny batches and BO (a test of this script)")
    p.add_argument("--table-only", action="store_true", help="only rebuild results.md and the curve plots")
    p.add_argument("--list", action="store_true", help="print the presets and exit")
    p.add_argument("--restore", nargs="?", const=str(ROOT / "models" / "study"), default=None, metavar="DIR",
                   help="first copy the per-run records and curves a --publish left in DIR (default: "
                        "models/study) into the study directory: finished runs are not trained again")
    p.add_argument("--curves-tag", default="", metavar="TAG",
                   help="name the curve plots curves-<use case>-TAG.png (not to replace a published figure)")
    p.add_argument("--publish", nargs="?", const=str(ROOT / "models" / "study"), default=None, metavar="DIR",
                   help="also copy results.md, results.json and the curve plots to DIR (default: models/study)")
    args = p.parse_args(argv)
    if args.curve_points < 1:
        p.error(f"--curve-points must be at least 1 (the last checkpoint), got {args.curve_points}")
    if args.list:
        for pr in presets().values():
            print(f"{pr.name:22s} {pr.note}")
        return 0
    study = Study(args)
    if args.restore:
        print(f"restored {study.restore(Path(args.restore))} records and curves from {args.restore}")
    failed: list[str] = []
    if not args.table_only:
        t0 = time.perf_counter()
        failed = study.run_all([n for n in args.presets.split(",") if n], [int(s) for s in args.seeds.split(",")])
        print(f"done in {time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    table = study.table()
    (study.dir / "results.md").write_text(table + "\n")
    plots = study.plot_curves()
    if args.publish:
        import shutil
        dest = Path(args.publish)
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for f in [study.dir / "results.md", study.dir / "results.json", *plots]:
                shutil.copy2(f, dest / f.name)
            # the per-run records and curves too (small): --restore rebuilds the study from them elsewhere
            for sub, pattern in (("results", "*.json"), ("curves", "*.csv")):
                files = sorted((study.dir / sub).glob(pattern))
                if files:
                    (dest / sub).mkdir(exist_ok=True)
                for f in files:
                    shutil.copy2(f, dest / sub / f.name)
        except OSError as exc:  # the study's own outputs stay where they are
            raise SystemExit(f"--publish {dest}: cannot write there ({exc.strerror}); the results are in {study.dir}")
        print(f"published to {dest}")
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
