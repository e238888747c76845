"""The shipped models (``models/abr/*.onnx``, ``models/cc/*.onnx``, ``models/lb/*.onnx``): what each is, and how ``genet models ship``
trains, exports and evaluates it.

Every model comes from the project's own commands, run as subprocesses exactly as a user would type them:

1. ``genet train {abr,cc,lb} --method ... --seed ... --steps ... --out runs/ship/<use case>-<name>``
   (``--resume`` when the run directory exists: a killed shipping run continues);
2. ``genet export RUN_DIR -o models/<use case>/<name>.onnx`` (``--checkpoint``: that checkpoint of the run);
3. ``genet eval {abr,cc,lb}`` of the model next to the baselines on the shared validation data
   (:func:`app.study.presets.eval_sets`; LB: the validation and test episodes of Genet's setting);
4. ``models/<use case>/<name>.json``: the training command, seed, steps, updates, training wall time, git
   commit, the export and evaluation commands and the evaluation figures.

``models/RESULTS.md`` then holds the science table (every shipped model and baseline on every evaluation
set). Models whose ``.onnx`` and ``.json`` exist are not retrained (``force`` retrains).

The LB models are the LB study's runs (``genet study run --presets lb-...``, models/study/lb/results.md): the
seed with the best validation figure of each preset, at the checkpoint the study chose by the same validation
episodes, shipped with ``--from-run RUN --checkpoint FILE`` (LB training on RL3 is unstable late in a run).
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from foundation.atomic import atomic_write_text
from foundation.errors import BadInputError
from foundation.runmeta import PROJECT_ROOT
from app.study.invoke import LB_COLUMNS, genet_executable, read_summary, relative_to_root, sh, training_host
from app.study.presets import ABR_COMMON, CC_COMMON, LB_COMMON, LB_STEPS, eval_sets, presets

#: The repository the models are shipped into (``models/``) and the commands run in.
ROOT = PROJECT_ROOT
#: The comparisons that matter first (Genet vs UDR-RL3), so a cut-short shipping run still answers them.
ORDER = ("abr/genet", "abr/udr3", "cc/genet", "cc/udr3", "abr/udr1", "abr/udr2", "lb/genet", "lb/udr3",
         "lb/udr1", "lb/udr2")
#: The seed of each shipped LB model: the best of the LB study's seeds 0-2 on the validation episodes.
LB_SHIPPED_SEEDS = {"udr1": 2, "udr2": 0, "udr3": 1, "genet": 0}
#: The rule-based baselines each model is evaluated beside.
BASELINES = {"abr": "mpc,bba", "cc": "bbr,cubic", "lb": "least_work"}


@dataclass
class ModelSpec:
    """One shipped model: use case, name, method options, budget (environment steps), seed, whether the
    shared real training traces are mixed in (ABR) and evaluation sets."""

    use_case: str
    name: str
    options: list[str]
    steps: int
    seed: int = 0
    real: bool = True
    evals: list[tuple[str, list[str]]] = field(default_factory=list)
    #: the study preset this model is a seed of, and why this variant and seed (recorded in its metadata)
    variant: str = ""
    selection: str = ""
    #: its evaluation is its variant's study record of that seed (trained from the same command and seed again
    #: on another CPU kind, a CC run can differ: PPO amplifies floating-point rounding; the selection says so)
    reproduces_study_record: bool = True

    @property
    def key(self) -> str:
        return f"{self.use_case}/{self.name}"


@dataclass(frozen=True)
class ShipOptions:
    """How :func:`ship` treats a model (``genet models ship`` options): ``shared`` the shared material folder;
    ``force`` retrain a shipped model; ``reevaluate`` evaluate the shipped file again; ``from_run`` ship this
    finished run (no training) and record ``variant``; ``checkpoint`` export this checkpoint of it instead of
    its final model."""

    shared: Path
    force: bool = False
    reevaluate: bool = False
    from_run: Path | None = None
    variant: str = ""
    checkpoint: Path | None = None


#: How a shipped model is chosen (issue 30): the study's best variant with the project's current rules, and of
#: its seeds the median one (:func:`app.study.compare.median_seed`: mean rank over the validation sets, the seed
#: closest to the median rank), never the best: a shipped model stands for what its recipe gives.
MEDIAN_SEED_RULE = ("the median seed of the variant's study seeds by mean rank over the validation sets "
                    "(`genet study compare A B --median-seed`), not its best")


def _study_options(name: str) -> list[str]:
    """The options of study preset ``name`` as ``genet models ship`` trains them (its ``{space}`` file named
    relative to the repository, as the study names it)."""
    from app.study.presets import PAPERDIMS_SPACE_FILE
    preset = presets()[name]
    assert preset.space in (None, "paperdims") and not preset.warm_from, name  # nothing else to resolve here
    space = str(PAPERDIMS_SPACE_FILE.relative_to(PROJECT_ROOT))
    return [space if o == "{space}" else o for o in preset.options]


def specs(shared: Path, abr_steps: int, cc_steps: int, lb_steps: int = LB_STEPS) -> list[ModelSpec]:
    """Every shipped model, in :data:`ORDER`."""
    abr_eval, cc_eval = eval_sets("abr", shared), eval_sets("cc", shared)
    study = presets()
    # ABR UDR: each range's median seed of the study's seeds (models/study/results.md; RL1 and RL2 have 5)
    out = [ModelSpec("abr", f"udr{i}", _study_options(f"abr-udr{i}"), abr_steps, seed=2, evals=abr_eval,
                     variant=f"abr-udr{i}", selection=f"{MEDIAN_SEED_RULE}: seed 2 of {'0-4' if i < 3 else '0-2'}")
           for i in (1, 2, 3)]
    # ABR Genet: the study's best variant: BO over Genet's own five ABR dimensions, promotion weight 0.1 (over 5
    # seeds fcc-val 26.86 +- 0.68, norway-val 13.42 +- 0.38: level with UDR-RL1 on fcc-val, ahead on norway-val,
    # the steadiest); seeds 0-2 trained again on 2026-12-08 for per-trace figures, which moved the median seed
    # from 1 to 4 (models/study/FINDINGS.md); shipped from the study's run of seed 4
    out.append(ModelSpec("abr", "genet", _study_options("abr-genet-paperdims-w0.1"), abr_steps, seed=4,
                         evals=abr_eval, variant="abr-genet-paperdims-w0.1",
                         selection=f"the best ABR Genet variant of the study over 5 seeds; {MEDIAN_SEED_RULE}: "
                                   "seed 4 of 0-4"))
    # CC: both models on the real sender's rules (window start-up, measured interval rule: `genet train cc`'s
    # default), so the shipped pair compares like with like and the simulator's figures for them hold on the
    # emulated link (docs/fidelity.md, the payoff test); of the variants on those rules, the best UDR and Genet
    # ones over 5 seeds
    out.append(ModelSpec("cc", "udr3", _study_options("cc-udr3-faithful"), cc_steps, seed=3, real=False,
                         evals=cc_eval, variant="cc-udr3-faithful", reproduces_study_record=False,
                         selection=f"UDR-RL3 on the real sender's rules; {MEDIAN_SEED_RULE}: seed 3 of 0-4, trained "
                                   "again with the study's command and seed (its run was not kept); this run's "
                                   "figures differ from the study's record of seed 3 (48.90 / 149.90 / 108.87): "
                                   "the CC training does not repeat across the machines the study ran on"))
    out.append(ModelSpec("cc", "genet", _study_options("cc-genet-faithful-positive"), cc_steps, seed=1, real=False,
                         evals=cc_eval, variant="cc-genet-faithful-positive",
                         selection="the best CC Genet variant on the real sender's rules over 5 seeds (no seed "
                                   f"collapses, models/study/FINDINGS.md); {MEDIAN_SEED_RULE}: seed 1 of 0-4"))
    # LB: the LB study's presets (issue 27); each shipped seed is the one of seeds 0-2 with the best reward on the
    # validation episodes (models/study/lb/results.md), at the checkpoint the study chose on them (--checkpoint)
    lb_eval = eval_sets("lb", shared)
    out += [ModelSpec("lb", name, study[f"lb-{name}"].options, lb_steps, seed=seed, real=False, evals=lb_eval,
                      variant=f"lb-{name}", selection="the LB study's seed with the best reward on the validation "
                                                      "episodes, at the checkpoint chosen on them")
            for name, seed in LB_SHIPPED_SEEDS.items()]
    return sorted(out, key=lambda s: ORDER.index(s.key))


def run_dir_of(spec: ModelSpec) -> Path:
    """Where ``genet models ship`` trains ``spec`` (relative to the repository)."""
    return Path("runs") / "ship" / f"{spec.use_case}-{spec.name}"


def train_command(spec: ModelSpec, shared: Path, run_dir: Path, genet: str) -> list[str]:
    cmd = [genet, "train", spec.use_case, *spec.options, "--seed", str(spec.seed), "--steps", str(spec.steps),
           "--out", str(run_dir), "--torch-threads", "1", "--no-progress"]
    if spec.use_case == "abr":
        cmd += ABR_COMMON
        if spec.real:
            cmd += ["--real-traces", f"{shared / 'traces/abr/fcc-train'},{shared / 'traces/abr/norway-train'}"]
    else:
        cmd += CC_COMMON if spec.use_case == "cc" else LB_COMMON
    return cmd


def eval_commands(spec: ModelSpec, onnx: Path) -> list[tuple[str, list[str]]]:
    """(set name, the `genet eval` arguments a user would type) of each evaluation set of ``spec``."""
    baselines = BASELINES[spec.use_case]
    return [(set_name, ["eval", spec.use_case, *where, "--policy", f"{onnx},{baselines}"])
            for set_name, where in spec.evals]


def plan(todo: list[ModelSpec], shared: Path, from_run: Path | None = None) -> str:
    """What :func:`ship` runs for each model of ``todo`` (``genet models ship --dry-run``): its training
    command (or the run ``from_run`` it takes), export and evaluation commands, as a user would type them."""
    lines = []
    for spec in todo:
        onnx = Path("models") / spec.use_case / f"{spec.name}.onnx"
        run_dir = run_dir_of(spec) if from_run is None else from_run
        if from_run is None:
            lines.append(f"{spec.key}: {shlex.join(train_command(spec, shared, run_dir, 'genet'))}")
        else:
            lines.append(f"{spec.key}: from {from_run} (no training; seed from its run.json)")
        lines.append(f"  {shlex.join(['genet', 'export', str(run_dir), '-o', str(onnx)])}")
        lines += [f"  {shlex.join(['genet', *shown])}" for _, shown in eval_commands(spec, onnx)]
    return "\n".join(lines)


def evaluate(spec: ModelSpec, onnx: Path, genet: str, log: Path) -> tuple[dict, list[str]]:
    """Mean reward of the model and the baselines on each evaluation set ({set: {policy: value}}) and
    the `genet eval` commands that printed them."""
    results: dict[str, dict[str, float]] = {}
    commands = []
    onnx = onnx.relative_to(ROOT) if onnx.is_absolute() else onnx
    for set_name, shown in eval_commands(spec, onnx):
        with tempfile.TemporaryDirectory() as tmp:
            sh([genet, *shown, "--out", tmp, "--no-progress"] + (["--no-plots"] if spec.use_case == "cc" else []),
               log, cwd=ROOT)
            if spec.use_case == "lb":  # the return / 1e9 and the mean completion time
                results.update({set_name + suffix: read_summary("lb", Path(tmp), column)
                                for suffix, column in LB_COLUMNS})
            else:
                results[set_name] = read_summary(spec.use_case, Path(tmp))
        commands.append(shlex.join(["genet", *shown]))
    return results, commands


def ship(spec: ModelSpec, options: ShipOptions) -> dict:
    """Train (or resume, or take ``options.from_run``), export and evaluate ``spec``; write its ``.onnx`` and
    ``.json`` under ``models/``; its metadata. A shipped model is skipped (or re-evaluated) unless forced."""
    shared = relative_to_root(options.shared, ROOT)
    genet = genet_executable()
    run_dir = run_dir_of(spec)
    models = ROOT / "models" / spec.use_case
    models.mkdir(parents=True, exist_ok=True)
    onnx, meta_path = models / f"{spec.name}.onnx", models / f"{spec.name}.json"
    force = options.force or options.from_run is not None
    if onnx.is_file() and meta_path.is_file() and not force:
        meta = json.loads(meta_path.read_text())
        if options.reevaluate:  # the shipped file as it is, evaluated again with the current code
            log = ROOT / "runs" / "ship" / f"{spec.use_case}-{spec.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            meta["evaluation"], meta["evaluation_commands"] = evaluate(spec, onnx, genet, log)
            atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
            print(f"{spec.key}: re-evaluated: {json.dumps(meta['evaluation'])}", flush=True)
        else:
            print(f"{spec.key}: already shipped ({meta_path})", flush=True)
        return meta
    log = ROOT / run_dir.parent / f"{spec.use_case}-{spec.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    run_dir_abs = ROOT / run_dir
    cmd = train_command(spec, shared, run_dir, genet)
    if options.from_run is not None:  # a run trained elsewhere (e.g. a study variant): exported and evaluated as it is
        run_dir = run_dir_abs = Path(options.from_run).resolve()
        if not (run_dir / "model.pt").is_file():
            raise BadInputError(f"--from-run {options.from_run}: no model.pt (not a finished `genet train` run)")
        spec.seed = int(json.loads((run_dir / "run.json").read_text())["seed"])
        print(f"{spec.key}: from {run_dir}", flush=True)
    elif (run_dir_abs / "run.json").is_file():
        if (run_dir_abs / "model.pt").is_file() and not options.force:
            print(f"{spec.key}: trained already, exporting", flush=True)
        else:
            print(f"{spec.key}: resuming {run_dir}", flush=True)
            sh(cmd + ["--resume"], log, cwd=ROOT)
    else:
        print(f"{spec.key}: training ({shlex.join(cmd[1:])})", flush=True)
        sh(cmd, log, cwd=ROOT)
    run = json.loads((run_dir_abs / "run.json").read_text())
    if run.get("use_case") != spec.use_case:
        raise BadInputError(f"{run_dir}: a {run.get('use_case')} run, not {spec.use_case}")
    checkpoint = ([] if options.checkpoint is None else
                  ["--checkpoint", str(relative_to_root(options.checkpoint, ROOT))])
    sh([genet, "export", str(run_dir), "-o", str(onnx), *checkpoint], log, cwd=ROOT)
    results, eval_cmds = evaluate(spec, onnx, genet, log)
    with open(run_dir_abs / "learning_curve.csv") as fh:
        curve = list(csv.DictReader(fh))
    last = curve[-1] if curve else {}
    if options.checkpoint is not None:  # the checkpoint's own counters
        import torch
        blob = torch.load(options.checkpoint, weights_only=False)
        last = {"env_steps": blob["env_steps"], "update": blob["updates"], "wall_s": blob["wall_s"]}
    meta = {"name": spec.name, "use_case": spec.use_case, "file": str(onnx.relative_to(ROOT)),
            "command": run.get("command"), "seed": spec.seed, "steps": int(float(last.get("env_steps", 0))),
            "updates": int(float(last.get("update", 0))), "train_wall_s": round(float(last.get("wall_s", 0)), 1),
            "commit": run.get("commit"), "shipped_at_commit": _git_commit(), "trained_on": training_host(run_dir_abs),
            "real_traces": run.get("real_traces"),
            "real_prob": run.get("real_prob"), "train_config": run.get("train_config"),
            "export_command": shlex.join(["genet", "export", _shown(run_dir), "-o", str(onnx.relative_to(ROOT)),
                                          *checkpoint]),
            "evaluation_commands": eval_cmds, "evaluation": results,
            "evaluation_note": "mean per-trace reward: ABR total QoE of one video (default Pensieve mode), CC "
                               "Genet-form reward, LB episode return / 1e9 (and '<set> completion (s)': mean job "
                               "completion time); 'model' is this model, the others are the rule-based baselines"}
    if options.checkpoint is not None:
        meta["checkpoint"] = checkpoint[1]
        meta["run_steps"] = int(float(curve[-1]["env_steps"])) if curve else 0
        meta["run_train_wall_s"] = round(float(curve[-1]["wall_s"]), 1) if curve else 0.0
    meta["variant"] = (options.variant or run_dir.name) if options.from_run is not None else spec.variant
    if spec.selection:
        meta["selection"] = spec.selection
        meta["reproduces_study_record"] = spec.reproduces_study_record
    if (run_dir_abs / "rounds.csv").is_file():
        meta["curriculum_rounds"] = (run_dir_abs / "rounds.csv").read_text().splitlines()
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    print(f"{spec.key}: shipped {onnx.relative_to(ROOT)} "
          f"({meta['steps']} steps, {meta['train_wall_s']} s): {json.dumps(results)}", flush=True)
    return meta


def _shown(path: Path) -> str:
    """``path`` as a command in the repository root names it: relative when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_absolute() and path.is_relative_to(ROOT) else str(path)


def _git_commit() -> str:
    from foundation.runmeta import git_commit  # the one definition
    return git_commit() or ""


def ship_all(todo: list[ModelSpec], options: ShipOptions, jobs: int) -> list[str]:
    """:func:`ship` every model, ``jobs`` at a time; the ``use_case/name`` of those that failed (one failed
    model does not stop the others)."""
    t0 = time.perf_counter()
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(ship, s, options): s for s in todo}
        for fut, s in futures.items():
            try:
                fut.result()
            except Exception as exc:
                failed.append(s.key)
                print(f"{s.key}: FAILED: {exc}", file=sys.stderr, flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return failed


def results_table(root: Path | None = None) -> str:
    """The science table (Markdown) from every models/<use case>/<name>.json (of ``root``, default ROOT)."""
    root = ROOT if root is None else root
    lines = ["# Shipped models: evaluation", "",
             "Generated by `genet models ship` from the `.json` files next to the models "
             "(mean per-trace reward; ABR: total QoE of one video, default Pensieve mode; CC: Genet-form "
             "reward; LB: episode return / 1e9 on Genet's default setting and the mean job completion time).", ""]
    if (root / "models" / "study" / "results.md").is_file():
        lines += ["Each row here is one seed. The multi-seed study (issue 17: every seed, mean ± std, learning curves, "
                  "the variants tried) is in [study/results.md](study/results.md), made by "
                  "`genet study run`; what it found, and where the issue's targets stand, in "
                  "[study/FINDINGS.md](study/FINDINGS.md).", ""]
        curves = [f for f in ("curves-abr.png", "curves-cc.png") if (root / "models" / "study" / f).is_file()]
        if curves:
            lines += ["Learning curves (Figure 18: validation reward against environment steps, mean and min-max "
                      "band over seeds; each preset's final models as markers where its curves cover fewer seeds):", "",
                      *[f"![{f[:-4]}](study/{f})" for f in curves], ""]
    for use_case in ("abr", "cc", "lb"):
        metas = [json.loads(p.read_text()) for p in sorted((root / "models" / use_case).glob("*.json"))]
        if not metas:
            continue
        if use_case == "lb" and (root / "models" / "study" / "lb" / "results.md").is_file():
            lines += ["## LB", "", "Each row is one seed of the LB study (issue 27), the one with the best `val` figure, "
                      "at the checkpoint chosen on `val` (steps and train wall: the checkpoint's; the whole run's are the .json's "
                      "`run_steps`, `run_train_wall_s`); the study (3 seeds per preset, mean ± std) is in "
                      "[study/lb/results.md](study/lb/results.md), what it found in "
                      "[study/lb/FINDINGS.md](study/lb/FINDINGS.md). `val`: `genet eval lb -n 20 --seed 1`, "
                      "`test`: `genet eval lb -n 50 --seed 0`.", ""]
            heading = []
        else:
            heading = [f"## {use_case.upper()}", ""]
        sets = list(metas[0]["evaluation"])
        base = [k for k in metas[0]["evaluation"][sets[0]] if k != "model"]
        lines += [*heading,
                  "| policy | variant, seed | steps | train wall (s) | " + " | ".join(sets) + " |",
                  "|---|---|---|---|" + "---|" * len(sets)]
        for b in base:
            lines.append(f"| {b} (baseline) | | | | " + " | ".join(f"{metas[0]['evaluation'][s][b]:.2f}"
                                                               for s in sets) + " |")
        for m in metas:
            lines.append(f"| {m['name']} | {_variant_seed(m)} | {m['steps']:,} | {m['train_wall_s']:.0f} | "
                         + " | ".join(f"{m['evaluation'][s]['model']:.2f}" for s in sets) + " |")
        lines.append("")
        why = [f"- `{use_case}/{m['name']}`: {m['selection']}." for m in metas if m.get("selection")]
        if why:
            lines += ["Why these:", "", *why, ""]
    return "\n".join(lines)


def _variant_seed(meta: dict) -> str:
    """The table's 'variant, seed' cell of a model's metadata: the variant's name (its text up to the first
    comma: an LB model's variant also says how its checkpoint was chosen) and ``s<seed>``."""
    seed = f"s{meta.get('seed', '?')}"
    return f"{meta['variant'].split(',')[0]}, {seed}" if meta.get("variant") else seed


def write_results_table() -> str:
    """Rewrite ``models/RESULTS.md`` (:func:`results_table`); its text."""
    table = results_table()
    atomic_write_text(ROOT / "models" / "RESULTS.md", table + "\n")
    return table
