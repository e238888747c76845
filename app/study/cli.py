"""``genet study run | compare | per-trace | top-rung | cc-startup`` and ``genet models ship``.

Declared like every other command (``COMMANDS``, :mod:`foundation.commands`; the module is listed in
``app/cli.py``'s ``SUBCOMMAND_MODULES``). Importing this module and building its parsers is cheap: the study,
the shipping and the analyses (torch, numba, matplotlib through them) load when a command runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from foundation.commands import Command, Group
from foundation.errors import BadInputError

STUDY_RUN_DESCRIPTION = """\
The multi-seed study of issue 17: does the Genet curriculum beat UDR? One command, resumable.

Runs a matrix of named presets x seeds, every run with the same environment-step budget per use case, as the
project's own commands (subprocesses, as a user types them; --jobs at a time, one torch thread each):

1. `genet train {abr,cc,lb} <preset options> --seed S --steps N --out STUDY/runs/<preset>-s<S>` (--resume when
   the run directory holds an unfinished run; finished runs are skipped);
2. `genet export` of the final model, `genet eval` on the validation sets (ABR: fcc-val, norway-val; CC:
   pantheon-ethernet, pantheon-cellular and RL3 synthetic traces) next to the rule-based baselines
   -> STUDY/results/<preset>-s<S>.json (a run with a record is done: a rerun skips it); LB: the run's
   checkpoint with the best reward on the validation episodes (step 3's curve, and the final model) is the one
   evaluated, on Genet's default setting: validation `genet eval lb -n 20 --seed 1`, test `-n 50 --seed 0`
   (return / 1e9 and mean completion time, beside least-work-left);
3. learning curves (Figure 18), once every run of the matrix is trained and evaluated: up to --curve-points
   checkpoints of a run, evenly spaced and always its last, exported and evaluated on the first validation
   set (the model alone) -> STUDY/curves/<preset>-s<S>.csv; curves-<use case>.png: validation reward against
   environment steps, mean and min-max band over seeds, one line per preset; presets with more records than
   curves (runs restored from elsewhere) as their final models' mean and min-max; the baselines dashed;
4. STUDY/results.md: every seed's figure and mean ± std per preset and evaluation set, plus the baselines;
   STUDY/results.json the same as data. --publish copies these, the plots and the per-run records and curves
   to models/study; --restore brings the records and curves back into a new study directory (a new machine:
   the table is rebuilt, finished runs are not trained again).

Presets (--presets, comma-separated; --list prints them): the matrix abr-udr1, abr-udr2, abr-udr3, abr-genet,
cc-udr3, cc-genet and the variants of issue 17 (paper-dimensions-only ABR space, promotion weight 0.1,
ensemble baseline, warm start from the same seed's UDR-RL3 model, CL1-CL3); the LB study of issue 27
(lb-udr1, lb-udr2, lb-udr3, lb-genet; --lb-steps); the agents study of issue 28 (presets.AGENTS_MATRIX:
abr-agent-* and cc-agent-*, every `genet train --agent` learner at --abr-steps 307200 --cc-steps 288000;
published with --publish models/study/agents, not over models/study). Nothing is tuned on anything but
the training and validation sets: the presets are fixed (app/study/presets.py).

Examples:
  genet study run                                  # the matrix, 3 seeds, two runs at a time
  genet study run --presets abr-genet-paperdims,abr-genet-warm --seeds 0,1,2
  genet study run --table-only                     # rebuild results.md / curves from what exists
  genet study run --table-only --publish           # ... and copy them to models/study/
  genet study run --restore --presets abr-cl1 --seeds 0   # a new checkout: the published records first
                                                   # (their runs are skipped), then the new run, one table
  genet study run --study-dir /tmp/s --abr-steps 2000 --cc-steps 400 --tiny   # seconds
  genet study run --study-dir runs/study-lb --presets lb-udr1,lb-udr2,lb-udr3,lb-genet --publish models/study/lb"""

SHIP_DESCRIPTION = """\
Train, export and evaluate the shipped models (models/abr/*.onnx, models/cc/*.onnx, models/lb/*.onnx) with the
project's own commands, run as subprocesses exactly as a user types them:

1. `genet train {abr,cc,lb} ... --out runs/ship/<use case>-<name>` (--resume when the run directory exists: a
   killed shipping run continues);
2. `genet export RUN_DIR -o models/<use case>/<name>.onnx` (--checkpoint FILE with --from-run: that checkpoint);
3. `genet eval {abr,cc,lb}` of the model next to the baselines on the shared validation data (ABR: fcc-val,
   norway-val, default Pensieve mode; CC: pantheon-ethernet, pantheon-cellular, RL3-range synthetic traces;
   LB: Genet's default setting, validation `-n 20 --seed 1` and test `-n 50 --seed 0` episodes);
4. models/<use case>/<name>.json: the training command, seed, steps, updates, training wall time, git commit,
   the export and evaluation commands and the evaluation figures.

models/RESULTS.md then holds the science table (every shipped model and baseline on every evaluation set).
Models whose .onnx and .json exist are not retrained (--force retrains). The models and their exact options
are fixed in app/study/ship.py (--dry-run prints them). Needs ../shared (real training traces, validation
sets); --shared changes where.

Examples:
  genet models ship                      # everything, two trainings at a time
  genet models ship --only abr/genet,cc/udr3 --jobs 1
  genet models ship --dry-run            # the commands each model is made with; nothing runs
  genet models ship --reevaluate         # evaluate the shipped files again, update their .json
  genet models ship --table-only         # rebuild models/RESULTS.md from the .json files
  genet models ship --only cc/genet --from-run runs/study/runs/cc-genet-distinct-s1 \\
      --variant "cc-genet-distinct, seed 1 of 0-2 (models/study/results.md)"   # ship a trained run
  genet models ship --only lb/udr3 --from-run runs/study-lb/runs/lb-udr3-s1 \\
      --checkpoint runs/study-lb/runs/lb-udr3-s1/checkpoints/step_81920.pt   # the study's chosen checkpoint"""


def _shared() -> str:
    """The default of --shared: ../shared beside the project."""
    from foundation.runmeta import PROJECT_ROOT
    return str(PROJECT_ROOT.parent / "shared")


def _study_run_arguments(r: argparse.ArgumentParser) -> None:
    from app.study.presets import ABR_STEPS, CC_STEPS, LB_STEPS, MATRIX
    from app.study.publish import DEFAULT_PUBLISHED
    from foundation.runmeta import PROJECT_ROOT
    shared = _shared()
    r.add_argument("--study-dir", default=str(PROJECT_ROOT / "runs" / "study"), metavar="DIR",
                   help="where runs and results go")
    r.add_argument("--shared", default=shared, metavar="DIR", help="the shared material directory")
    r.add_argument("--presets", default=",".join(MATRIX), help="comma-separated preset names (--list)")
    r.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    r.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one torch thread)")
    r.add_argument("--abr-steps", type=int, default=ABR_STEPS, help="environment steps per ABR run")
    r.add_argument("--cc-steps", type=int, default=CC_STEPS, help="environment steps per CC run")
    r.add_argument("--lb-steps", type=int, default=LB_STEPS, help="environment steps (decisions) per LB run")
    r.add_argument("--no-real-traces", dest="real_traces", action="store_false",
                   help="ABR: do not mix the shared real training traces in")
    r.add_argument("--no-curves", action="store_true", help="skip the per-checkpoint learning curves")
    r.add_argument("--curve-points", type=int, default=8,
                   help="checkpoints per run evaluated for its learning curve (evenly spaced, the last kept)")
    r.add_argument("--tiny", action="store_true", help="tiny batches and BO (a test of the study)")
    r.add_argument("--table-only", action="store_true", help="only rebuild results.md and the curve plots")
    r.add_argument("--list", action="store_true", help="print the presets and exit")
    r.add_argument("--restore", nargs="?", const=str(DEFAULT_PUBLISHED), default=None, metavar="DIR",
                   help="first copy the per-run records and curves a --publish left in DIR (default: "
                        "models/study) into the study directory: finished runs are not trained again")
    r.add_argument("--curves-tag", default="", metavar="TAG",
                   help="name the curve plots curves-<use case>-TAG.png (not to replace a published figure)")
    r.add_argument("--publish", nargs="?", const=str(DEFAULT_PUBLISHED), default=None, metavar="DIR",
                   help="also copy results.md, results.json, the curve plots and the per-run records and curves "
                        "to DIR (default: models/study)")


def _per_trace_arguments(pt: argparse.ArgumentParser) -> None:
    from app.study.per_trace import DEFAULT_BINS_MBPS
    from foundation.runmeta import PROJECT_ROOT
    abr_models = PROJECT_ROOT / "models" / "abr"
    pt.add_argument("--policy", default=f"{abr_models / 'genet.onnx'},{abr_models / 'udr1.onnx'},mpc",
                    help="comma-separated ABR policies (PATH.onnx, mpc, bba); the first two are compared")
    abr_shared = Path(_shared()) / "traces" / "abr"
    pt.add_argument("--traces", default=f"{abr_shared / 'fcc-val'},{abr_shared / 'norway-val'}",
                    help="comma-separated trace directories")
    pt.add_argument("--bins-mbps", default=DEFAULT_BINS_MBPS,
                    help="lower edges of the mean-bandwidth groups (Mbit/s, increasing; the last is open)")


def _top_rung_arguments(tr: argparse.ArgumentParser) -> None:
    from foundation.runmeta import PROJECT_ROOT
    abr_models = PROJECT_ROOT / "models" / "abr"
    tr.add_argument("--policy", default=",".join([*(str(abr_models / f"{m}.onnx") for m in ("genet", "udr1", "udr2",
                                                                                          "udr3")), "mpc", "bba"]),
                    help="comma-separated ABR policies (PATH.onnx, mpc, bba)")
    tr.add_argument("--bandwidth-mbps", default="3,6,20,60", help="comma-separated constant link bandwidths (Mbit/s)")


def _cc_startup_arguments(cs: argparse.ArgumentParser) -> None:
    from app.study.cc_startup import CORNER
    from foundation.runmeta import PROJECT_ROOT
    cc_models = PROJECT_ROOT / "models" / "cc"
    cs.add_argument("--policy", default=f"bbr,cubic,{cc_models / 'udr3.onnx'},{cc_models / 'genet.onnx'}",
                    help="comma-separated CC policies (bbr, cubic, PATH.onnx)")
    cs.add_argument("--loss-rate", type=float, default=CORNER["loss_rate"], help="random loss of the corner (0-1)")
    cs.add_argument("-n", type=int, default=10, help="traces (count; the BO's trials use 10)")
    cs.add_argument("--startup", default=None, metavar="NAMES",
                    help="run each Aurora model with each of these start-ups, comma-separated (aurora, window: "
                         "genet/cc/aurora.py), one row each (default: the start-up each model was trained with)")


def _models_ship_arguments(sp: argparse.ArgumentParser) -> None:
    from app.study.presets import ABR_STEPS, CC_STEPS, LB_STEPS
    shared = _shared()
    sp.add_argument("--shared", default=shared, metavar="DIR", help="the shared material directory")
    sp.add_argument("--only", default="", help="comma-separated use_case/name (e.g. abr/genet,cc/udr3); default: all")
    sp.add_argument("--jobs", type=int, default=2, help="trainings at a time (each uses one torch thread)")
    sp.add_argument("--abr-steps", type=int, default=ABR_STEPS, help="environment steps per ABR model")
    sp.add_argument("--cc-steps", type=int, default=CC_STEPS, help="environment steps per CC model")
    sp.add_argument("--lb-steps", type=int, default=LB_STEPS, help="environment steps (decisions) per LB model")
    sp.add_argument("--force", action="store_true", help="retrain models that are shipped already")
    sp.add_argument("--reevaluate", action="store_true",
                    help="evaluate the shipped models again (no training, no export) and update their .json")
    sp.add_argument("--table-only", action="store_true", help="only rebuild models/RESULTS.md")
    sp.add_argument("--dry-run", action="store_true",
                    help="print each model's training, export and evaluation commands and exit (nothing runs, "
                         "nothing is written)")
    sp.add_argument("--from-run", metavar="RUN_DIR", default=None,
                    help="ship this finished `genet train` run (one --only model; no training): export, evaluate, "
                         "metadata with the run's own command and seed")
    sp.add_argument("--variant", default="", help="with --from-run: what the run is (recorded as 'variant')")
    sp.add_argument("--checkpoint", metavar="FILE", default=None,
                    help="with --from-run: ship this checkpoint of the run (e.g. RUN_DIR/checkpoints/step_N.pt, "
                         "the one the LB study chose by validation) instead of its final model")


def _doc(module: str) -> str:
    """The docstring of ``app.study.<module>`` (light modules: their heavy imports are inside functions)."""
    import importlib
    return importlib.import_module(f"app.study.{module}").__doc__.strip()


def _names(text: str) -> list[str]:
    return [n for n in text.split(",") if n]


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in _names(text)]
    except ValueError:
        raise BadInputError(f"--seeds takes comma-separated integers, got {text!r}") from None


# ------------------------------------------------------------------ genet study run
def cmd_study_run(args: argparse.Namespace) -> int:
    from app.study.presets import presets
    if args.curve_points < 1:
        raise BadInputError(f"--curve-points must be at least 1 (the last checkpoint), got {args.curve_points}")
    if args.list:
        for pr in presets().values():
            print(f"{pr.name:22s} {pr.note}")
        return 0
    from foundation.extras import require
    require("plots" if args.table_only else "train", "genet study run")
    from foundation.atomic import atomic_write_text
    from app.study.curves import plot_curves
    from app.study.publish import publish, restore
    from app.study.runner import Study, StudyOptions
    from app.study.table import write_table
    seeds = _seeds(args.seeds)
    study = Study(StudyOptions(study_dir=Path(args.study_dir), shared=Path(args.shared), jobs=args.jobs,
                               abr_steps=args.abr_steps, cc_steps=args.cc_steps, lb_steps=args.lb_steps,
                               real_traces=args.real_traces,
                               curves=not args.no_curves, curve_points=args.curve_points, tiny=args.tiny))
    if args.restore:
        print(f"restored {restore(Path(args.restore), study.dir)} records and curves from {args.restore}")
    failed: list[str] = []
    if not args.table_only:
        t0 = time.perf_counter()
        failed = study.run_all(_names(args.presets), seeds)
        print(f"done in {time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    table = write_table(study.dir, study.presets)
    atomic_write_text(study.dir / "results.md", table + "\n")
    plots = plot_curves(study.dir, study.presets, args.curves_tag)
    if args.publish:
        publish(study.dir, plots, Path(args.publish))
        print(f"published to {args.publish}")
    print(table)
    return 1 if failed else 0


# ------------------------------------------------------------------ analyses
def cmd_per_trace(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet study per-trace")
    from app.study.per_trace import check_policies, compare, parse_bins_mbps
    from traces.io import load_traces
    labels = check_policies(_names(args.policy))
    bins = parse_bins_mbps(args.bins_mbps)
    sets = {Path(d).name: load_traces(d) for d in _names(args.traces)}  # a bad trace names its file (and line)
    print(compare(labels, sets, bins))
    return 0


def cmd_top_rung(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet study top-rung")
    from app.study.top_rung import lines, parse_bandwidths_mbps
    for line in lines(_names(args.policy), parse_bandwidths_mbps(args.bandwidth_mbps)):
        print(line, flush=True)
    return 0


def cmd_cc_startup(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet study cc-startup")
    from app.study.cc_startup import lines
    startups = None if args.startup is None else [x.strip() for x in args.startup.split(",") if x.strip()]
    for line in lines(_names(args.policy), args.loss_rate, args.n, startups):
        print(line, flush=True)
    return 0


def _compare_arguments(cp: argparse.ArgumentParser) -> None:
    from foundation.runmeta import PROJECT_ROOT
    cp.add_argument("a", metavar="A", help="a preset with records in the study (genet study run --list)")
    cp.add_argument("b", metavar="B", help="another preset, or a rule-based baseline the records evaluated "
                                           "(mpc, bba, bbr, cubic, ...)")
    cp.add_argument("--study-dir", default=str(PROJECT_ROOT / "runs" / "study"), metavar="DIR",
                    help="the study directory (its results/*.json; models/study for the published records)")
    cp.add_argument("--sets", default=None, help="comma-separated evaluation sets (default: every set of both)")
    cp.add_argument("--tolerance", type=float, default=0.10,
                    help="the verdict's ± band, a fraction of B's mean magnitude")
    cp.add_argument("--median-seed", action="store_true",
                    help="also print each side's median seed (the seed a preset ships)")


def cmd_compare(args: argparse.Namespace) -> int:
    from app.study.compare import compare, format_comparison, load_records, machines_note, median_seed
    if not 0 < args.tolerance < 1:
        raise BadInputError(f"--tolerance must be a fraction in (0, 1), got {args.tolerance}")
    records = load_records(Path(args.study_dir))
    if not records:
        raise BadInputError(f"{args.study_dir}: no study records (results/*.json)")
    rows = compare(records, args.a, args.b, _names(args.sets) if args.sets else None, args.tolerance)
    print("\n".join(format_comparison(args.a, args.b, rows)))
    note = machines_note(records, [args.a, args.b])
    if note:
        print(f"note: {note}")
    if args.median_seed:
        for name in (args.a, args.b):
            if any(r["preset"] == name for r in records):
                print(f"{name}: median seed {median_seed(records, name)}")
    return 0


# ------------------------------------------------------------------ genet models ship
def cmd_models_ship(args: argparse.Namespace) -> int:
    if args.from_run and (not args.only or "," in args.only):
        raise BadInputError("--from-run ships one model: give it one --only use_case/name")
    if args.checkpoint and not args.from_run:
        raise BadInputError("--checkpoint is a checkpoint of --from-run RUN_DIR: give both")
    from app.study import ship
    from app.study.invoke import relative_to_root
    failed: list[str] = []
    if not args.table_only or args.dry_run:
        todo = ship.specs(relative_to_root(args.shared, ship.ROOT), args.abr_steps, args.cc_steps, args.lb_steps)
        if args.only:
            want = _names(args.only)
            unknown = sorted(set(want) - {s.key for s in todo})
            if unknown:
                raise BadInputError(f"--only: no shipped model {', '.join(unknown)} "
                                    f"(the models: {', '.join(s.key for s in todo)})")
            todo = [s for s in todo if s.key in want]
        if args.dry_run:
            print(ship.plan(todo, relative_to_root(args.shared, ship.ROOT),
                            Path(args.from_run) if args.from_run else None))
            return 0
        from foundation.extras import require
        require("train", "genet models ship")
        options = ship.ShipOptions(shared=Path(args.shared), force=args.force, reevaluate=args.reevaluate,
                                   from_run=Path(args.from_run) if args.from_run else None, variant=args.variant,
                                   checkpoint=Path(args.checkpoint) if args.checkpoint else None)
        failed = ship.ship_all(todo, options, args.jobs)
    print(ship.write_results_table())
    return 1 if failed else 0


COMMANDS = (
    Group(("study",),
          help="the Genet-vs-UDR study (issue 17): run the matrix, and the analyses behind its findings",
          description="The multi-seed Genet-vs-UDR study (run) and the analyses behind models/study/FINDINGS.md\n"
                      "(per-trace, top-rung, cc-startup). `genet study COMMAND --help` explains each."),
    Command(("study", "run"), help="train, evaluate and tabulate presets x seeds at equal steps (resumable)",
            description=STUDY_RUN_DESCRIPTION, arguments=_study_run_arguments, run=cmd_study_run),
    Command(("study", "compare"), help="preset A vs B (or a baseline): seed statistics and a paired test per set",
            description=_doc("compare"), arguments=_compare_arguments, run=cmd_compare),
    Command(("study", "per-trace"), help="two ABR policies compared trace by trace, grouped by mean bandwidth",
            description=_doc("per_trace"), arguments=_per_trace_arguments, run=cmd_per_trace),
    Command(("study", "top-rung"), help="ABR policies' QoE and mean bitrate on constant links",
            description=_doc("top_rung"), arguments=_top_rung_arguments, run=cmd_top_rung),
    Command(("study", "cc-startup"), help="CC policies on the corner CC Genet's BO promotes: the start-up burst",
            description=_doc("cc_startup"), arguments=_cc_startup_arguments, run=cmd_cc_startup),
    Group(("models",), help="the shipped models: ship (train, export, evaluate, tabulate)",
          description="The shipped ONNX policies in models/ and their metadata."),
    Command(("models", "ship"), help="train, export and evaluate the shipped models; rewrite models/RESULTS.md",
            description=SHIP_DESCRIPTION, arguments=_models_ship_arguments, run=cmd_models_ship),
)
