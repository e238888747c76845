"""The study's resumable matrix: presets x seeds, each trained, exported and evaluated as the project's own
commands (``genet train``, ``genet export``, ``genet eval``: subprocesses, as a user types them; ``jobs`` at a
time, one torch thread each), then the learning curves of the runs that finished.

The study directory holds ``runs/<preset>-s<seed>/`` (the ``genet train`` runs: an unfinished one is resumed
with ``--resume``, a finished one is not trained again), ``results/<preset>-s<seed>.json`` (a run's record: a
record present means the run is done), ``curves/<preset>-s<seed>.csv`` (written after every point),
``onnx/`` (exported models, reused), ``pools/`` (a pool-fed preset's experience pools, ``genet pool abr`` over
the training sets; reused) and ``logs/`` (every command and its output). A killed study loses at most the
command in flight.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from foundation.atomic import atomic_text_writer, atomic_write_text
from foundation.errors import BadInputError, GenetRuntimeError
from foundation.runmeta import PROJECT_ROOT
from app.study.invoke import (LB_COLUMNS, genet_executable, read_per_trace, read_summary, relative_to_root, sh,
                              training_host)
from app.study.presets import (ABR_COMMON, ABR_STEPS, CC_STEPS, LB_COMMON, LB_STEPS, LOSS1_SPACE_FILE,
                               PAPERDIMS_SPACE_FILE, TINY, Preset, eval_sets, presets)

#: The rule-based baselines evaluated beside every model of a use case.
BASELINES = {"abr": "mpc,bba", "cc": "bbr,cubic", "lb": "least_work"}
#: The training sets a pool-fed preset's policies play (``genet pool abr --traces``; never the validation sets).
POOL_SETS = ("fcc-train", "norway-train")
#: The columns of a learning-curve file (``curves/<preset>-s<seed>.csv``).
CURVE_COLUMNS = ["checkpoint", "env_steps", "set", "reward"]


@dataclass(frozen=True)
class StudyOptions:
    """How ``genet study run`` trains and evaluates (its options, see ``genet study run --help``)."""

    study_dir: Path
    shared: Path
    jobs: int = 2
    abr_steps: int = ABR_STEPS
    cc_steps: int = CC_STEPS
    lb_steps: int = LB_STEPS
    real_traces: bool = True
    curves: bool = True
    curve_points: int = 8
    tiny: bool = False


class Study:
    """One study directory (see the module docstring); ``root`` is where the commands run."""

    def __init__(self, options: StudyOptions, root: Path = PROJECT_ROOT):
        self.options = options
        self.root = root
        self.dir = Path(options.study_dir).resolve()
        self.shared = relative_to_root(options.shared, root)
        self.genet = genet_executable()
        self.presets = presets()
        for sub in ("runs", "results", "curves", "logs", "onnx", "pools"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def _sh(self, cmd: list[str], log: Path) -> str:
        return sh(cmd, log, cwd=self.root)

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
        """abr paperdims: the committed traces/spaces/abr-paperdims.json (:func:`~app.study.presets.paperdims_space`);
        cc loss1: traces/spaces/cc-rl3-loss1.json (:func:`~app.study.presets.loss1_space`)."""
        files = {"paperdims": PAPERDIMS_SPACE_FILE, "loss1": LOSS1_SPACE_FILE}
        assert kind in files, kind
        return files[kind]

    def pool_files(self, p: Preset, seed: int) -> list[Path]:
        """The experience pools of preset ``p``'s run of ``seed``: one per training set (:data:`POOL_SETS`)."""
        return [self.dir / "pools" / f"{p.name}-s{seed}-{s}.npz" for s in POOL_SETS]

    def build_pool(self, p: Preset, seed: int) -> list[Path]:
        """``genet pool abr`` of ``p.pool``'s policies over each training set (:data:`POOL_SETS`, one video per
        trace), for the files that do not exist yet; the pool files."""
        log = self.dir / "logs" / f"{p.name}-s{seed}.log"
        for set_name, out in zip(POOL_SETS, self.pool_files(p, seed)):
            if not out.is_file():
                self._sh([self.genet, "pool", p.use_case, "--traces", str(self.shared / "traces" / p.use_case /
                                                                          set_name),
                          "--policy", ",".join(p.pool), "-o", str(out)], log)
        return self.pool_files(p, seed)

    def warm_record(self, p: Preset, seed: int) -> dict:
        """The record (``results/<warm_from>-s<seed>.json``) of the run preset ``p`` starts from."""
        path = self.dir / "results" / f"{p.warm_from}-s{seed}.json"
        if not path.is_file():
            raise GenetRuntimeError(f"{p.name} s{seed}: {path} is missing (its first stage, {p.warm_from}, "
                                    "has not finished)")
        return json.loads(path.read_text())

    def steps(self, p: Preset, seed: int) -> int:
        """``--steps`` of preset ``p``'s run of ``seed``: its fixed count, else its share of the use case's
        budget, less the ``warm_from`` run's environment steps when they count in it (``--tiny``: the budget
        instead of a fixed count)."""
        o = self.options
        if p.steps is not None and not o.tiny:
            return p.steps
        steps = round({"abr": o.abr_steps, "cc": o.cc_steps, "lb": o.lb_steps}[p.use_case] * p.steps_share)
        if p.budget_includes_warm:
            left = steps - int(self.warm_record(p, seed)["env_steps"])
            if left < 1:
                raise BadInputError(f"{p.name}: its first stage {p.warm_from} took the whole budget of {steps:,} "
                                    "steps; give a larger --abr-steps / --cc-steps")
            steps = left
        return steps

    def train_command(self, p: Preset, seed: int) -> list[str]:
        o = self.options
        steps = self.steps(p, seed)
        opts = []
        for opt in p.options:
            if opt == "{space}":
                opt = str(self.space_file(p.space))
            elif opt == "{warm}":
                opt = str(self.run_dir(p.warm_from, seed) / "model.pt")
            elif opt == "{warm_first}":
                opt = str(self.first_checkpoint(p.warm_from, seed))
            elif opt == "{per_round}":
                spu = int(self._option(p, "--steps-per-update") or (1536 if p.use_case == "abr" else 7200))
                rounds = int(self._option(p, "--rounds") or 9)
                opt = str(max(1, steps // spu // (rounds + 1)))
            elif opt == "{pool}":
                opt = ",".join(str(f) for f in self.pool_files(p, seed))
            opts.append(opt)
        cmd = [self.genet, "train", p.use_case, *opts, "--seed", str(seed), "--steps", str(steps),
               "--out", str(self.run_dir(p.name, seed)), "--torch-threads", "1", "--no-progress"]
        if p.use_case == "abr":
            cmd += ABR_COMMON if not o.tiny else ["--entropy-rate", "2e-3"]
            if o.real_traces:
                real = self.shared / "traces" / "abr"
                cmd += ["--real-traces", f"{real / 'fcc-train'},{real / 'norway-train'}"]
        if p.use_case == "lb" and not o.tiny:
            cmd += LB_COMMON
        if o.tiny:
            cmd += TINY[p.use_case]
        return cmd

    def _option(self, p: Preset, flag: str) -> str | None:
        tiny = self.options.tiny
        opts = p.options + (TINY[p.use_case] if tiny else []) + (ABR_COMMON if p.use_case == "abr" and
                                                                 not tiny else [])
        return opts[opts.index(flag) + 1] if flag in opts else None

    def train(self, p: Preset, seed: int) -> Path:
        """Train preset ``p`` for ``seed`` (resume an unfinished run; skip a finished one); its run directory."""
        run = self.run_dir(p.name, seed)
        log = self.dir / "logs" / f"{p.name}-s{seed}.log"
        cmd = self.train_command(p, seed)
        if (run / "model.pt").is_file():
            return run
        if p.pool:
            self.build_pool(p, seed)
        if (run / "run.json").is_file():
            print(f"{p.name} s{seed}: resuming", flush=True)
            self._sh(cmd + ["--resume"], log)
        else:
            print(f"{p.name} s{seed}: training", flush=True)
            self._sh(cmd, log)
        return run

    def evaluate(self, p: Preset, seed: int, model: Path | None = None, sets=None,
                 with_baselines: bool = True, per_trace: dict | None = None) -> dict[str, dict[str, float]]:
        """Export (the final model or ``model``) and `genet eval` on each set; {set: {policy: reward}}.
        ``per_trace`` (ABR and CC), when given, receives {set: {policy: {trace: reward}}} (the paired tests')."""
        run = self.run_dir(p.name, seed)
        log = self.dir / "logs" / f"{p.name}-s{seed}.log"
        tag = model.name.replace(".pt", "") if model is not None else "final"
        onnx = self.dir / "onnx" / f"{p.name}-s{seed}-{tag}.onnx"
        if not onnx.is_file():
            self._sh([self.genet, "export", str(run), "-o", str(onnx)]
                     + (["--checkpoint", str(model)] if model else []), log)
        baselines = ("," + BASELINES[p.use_case]) if with_baselines else ""
        out = {}
        for set_name, where in (sets or eval_sets(p.use_case, self.shared)):
            if self.options.tiny and p.use_case == "cc" and "--config" in where:
                where = ["--config", "rl3", "-n", "2", "--seed", "1"]
            with tempfile.TemporaryDirectory() as tmp:
                self._sh([self.genet, "eval", p.use_case, *where, "--policy", f"{onnx}{baselines}", "--out", tmp,
                          "--no-progress"] + (["--no-plots"] if p.use_case == "cc" else []), log)
                if p.use_case == "lb":  # the return / 1e9 and the mean completion time
                    out.update({set_name + suffix: read_summary("lb", Path(tmp), column)
                                for suffix, column in LB_COLUMNS})
                else:
                    out[set_name] = read_summary(p.use_case, Path(tmp))
                    if per_trace is not None:
                        per_trace[set_name] = read_per_trace(p.use_case, Path(tmp))
        return out

    def checkpoints(self, run: Path) -> list[tuple[Path, int]]:
        """(checkpoint, environment steps) of the run, by steps: at most ``curve_points``, evenly spaced, the
        last kept (a 30-point curve cost more than the training: one export and one evaluation per point)."""
        import torch
        found = list((run / "checkpoints").glob("step_*.pt")) + list(run.glob("model-round*"))
        found = sorted(((f, int(torch.load(f, weights_only=False)["env_steps"])) for f in found), key=lambda x: x[1])
        n = self.options.curve_points
        if len(found) <= n:
            return found
        import numpy as np
        picks = np.unique(np.round(np.linspace(len(found) - 1, 0, n)).astype(int))
        return [found[i] for i in sorted(picks)]

    def curve(self, p: Preset, seed: int) -> Path:
        """Validation reward of the chosen checkpoints (:meth:`checkpoints`) on the first evaluation set
        (Figure 18). Points of an earlier run with another ``curve_points`` are dropped, so every seed's
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
            _write_curve(path, rows)  # after every point: a killed study keeps its curve
        _write_curve(path, rows)  # also when nothing was new: the dropped points go
        return path

    def one(self, p: Preset, seed: int) -> dict:
        """The record of preset ``p``'s run of ``seed`` (``results/<preset>-s<seed>.json``): read when it
        exists, else trained, evaluated and written."""
        result = self.dir / "results" / f"{p.name}-s{seed}.json"
        if result.is_file():
            rec = json.loads(result.read_text())
        else:
            run = self.train(p, seed)
            info = json.loads((run / "run.json").read_text())
            import torch
            blob = torch.load(run / "model.pt", weights_only=False)
            # LB: the checkpoint with the best reward on the validation episodes (the learning curve's set)
            chosen = self.select_checkpoint(p, seed) if p.use_case == "lb" else None
            per_trace: dict = {}
            rec = {"preset": p.name, "use_case": p.use_case, "seed": seed, "note": p.note,
                   "command": info.get("command"), "commit": info.get("commit"), "env_steps": blob["env_steps"],
                   "updates": blob["updates"], "train_wall_s": blob["wall_s"], "host": training_host(run),
                   "evaluation": self.evaluate(p, seed, model=chosen, per_trace=per_trace)}
            if per_trace:
                rec["per_trace"] = per_trace
            if chosen is not None:
                rec["checkpoint"] = str(chosen.relative_to(run))
                rec["checkpoint_env_steps"] = int(torch.load(chosen, weights_only=False)["env_steps"])
            if (run / "rounds.csv").is_file():
                rec["rounds"] = (run / "rounds.csv").read_text().splitlines()
            if p.budget_includes_warm:  # the first stage's steps and wall time count in this run's
                warm = self.warm_record(p, seed)
                rec.update(own_env_steps=rec["env_steps"], own_train_wall_s=rec["train_wall_s"],
                           warm_env_steps=warm["env_steps"], warm_train_wall_s=warm["train_wall_s"])
                rec["env_steps"] += warm["env_steps"]
                rec["train_wall_s"] += warm["train_wall_s"]
            atomic_write_text(result, json.dumps(rec, indent=1) + "\n")
        print(f"{p.name} s{seed}: {json.dumps({k: v['model'] for k, v in rec['evaluation'].items()})}", flush=True)
        return rec

    def select_checkpoint(self, p: Preset, seed: int) -> Path:
        """The checkpoint of the run (:meth:`checkpoints`, and the final model) whose reward on the first
        evaluation set (the validation episodes, :meth:`curve`) is the highest; ties go to the later one."""
        run = self.run_dir(p.name, seed)
        with open(self.curve(p, seed)) as fh:
            rows = list(csv.DictReader(fh))
        first = eval_sets(p.use_case, self.shared)[:1]
        final = self.evaluate(p, seed, model=run / "model.pt", sets=first, with_baselines=False)[first[0][0]]
        best = max([(float(r["reward"]), int(r["env_steps"]), run / _checkpoint_path(run, r["checkpoint"]))
                    for r in rows] + [(final["model"], 1 << 62, run / "model.pt")], key=lambda x: (x[0], x[1]))
        return best[2]

    # ------------------------------------------------------------- matrix
    def run_all(self, names: list[str], seeds: list[int]) -> list[str]:
        """Train and evaluate every (preset, seed), then the learning curves; the ``<preset>-s<seed>`` that
        failed (one failed run does not stop the others)."""
        unknown = [n for n in names if n not in self.presets]
        if unknown:
            raise BadInputError(f"--presets: unknown preset(s) {', '.join(unknown)}; "
                                "`genet study run --list` shows them")
        # a warm-started preset needs its source preset's run of the same seed first
        first = [n for n in names if not self.presets[n].warm_from]
        needed = {self.presets[n].warm_from for n in names if self.presets[n].warm_from} - set(first)
        first += sorted(needed)
        later = [n for n in names if self.presets[n].warm_from]
        failed: list[str] = []
        # every run trained and evaluated first (the table), then the curves of those that finished
        stages = [(self.one, group) for group in (first, later)]
        if self.options.curves:
            stages.append((self.curve, first + later))
        for work, group in stages:
            jobs = [(self.presets[n], s) for s in seeds for n in group if f"{n}-s{s}" not in failed]
            with ThreadPoolExecutor(max_workers=max(1, self.options.jobs)) as pool:
                futures = {pool.submit(work, p, s): (p, s) for p, s in jobs}
                for fut, (p, s) in futures.items():
                    try:
                        fut.result()
                    except Exception as exc:  # one failed run does not stop the others
                        failed.append(f"{p.name}-s{s}")
                        print(f"{p.name} s{s}: FAILED: {exc}", file=sys.stderr, flush=True)
        return failed


def _checkpoint_path(run: Path, name: str) -> Path:
    """A curve row's checkpoint (a file name) as a path inside ``run``."""
    return Path("checkpoints") / name if (run / "checkpoints" / name).is_file() else Path(name)


def _write_curve(path: Path, rows: list[dict]) -> None:
    rows.sort(key=lambda r: int(r["env_steps"]))
    with atomic_text_writer(path) as fh:
        w = csv.DictWriter(fh, fieldnames=CURVE_COLUMNS)
        w.writeheader()
        w.writerows(rows)
