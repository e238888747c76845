"""``genet run CONFIG.toml``: the main job — traces, train, export, simulate, emulate, deploy, report.

Each stage runs the `genet` commands a user would type (as subprocesses), in its own folder of the
run folder (``--out``; default ``[run] out`` or ``runs/NAME``): ``traces/``, ``train/``, ``export/``,
``simulate/``, ``emulate/``, ``deploy/``, ``report/`` (``index.html``, ``report.md``), with every
command's output in ``logs/``. Each item's inputs (its config section, its commands, the hashes of
what it reads) are hashed, so a rerun redoes only what changed, and a killed run resumes where it
stopped: rerun the same command. A stage whose command this build lacks is reported as "not available
in this build".

The config schema — every key with its unit and default — is docs/run-config.md (generated from
app/run/schema.py). Examples: examples/quickstart.toml (both use cases end to end, short training),
examples/paper.toml (the paper's settings), examples/remote.toml (real hosts from an inventory).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from foundation.commands import Command


def cmd_run(args: argparse.Namespace) -> int:
    from app.run import engine, plan, schema

    if args.workers is not None and not args.dry_run:
        raise schema.ConfigError("--workers sizes --dry-run's prediction; add --dry-run (a run's own parallelism: "
                                 "--jobs, [cluster] address and the stages' jobs keys)")
    jobs = _jobs(args.jobs) if args.jobs is not None else None
    cfg, text = schema.load(args.config)
    selected = engine.select(args.only, args.from_stage)
    out = Path(args.out or cfg.run.out or Path("runs") / cfg.run.name).resolve()
    if out.exists() and not out.is_dir():
        raise schema.ConfigError(f"--out {out} exists and is not a folder")
    items = plan.build(cfg, out)
    runner = engine.Runner(items, out, jobs=jobs if jobs is not None else cfg.run.jobs)
    print(f"genet run {args.config} -> {out}")
    if args.dry_run:
        print(runner.describe(selected))
        if args.workers is not None:
            print(_prediction(runner, selected, args.workers))
        return 0
    from foundation.journal import run_folder_lock
    with run_folder_lock(out, "genet run"):  # one `genet run` per run folder; its commands lock their own folders
        return _run_in(out, args, cfg, text, selected, items, runner)


def _prediction(runner, selected: list[str], workers: int) -> str:
    """The cost model's wall time of the stages that will run, on 1 and on ``workers`` workers
    (app/run/costs.py, docs/cost-model.md)."""
    from app.run import costs
    counts = sorted({1, workers})
    return ("predicted wall time per stage (cost model, docs/cost-model.md; workers = cores):\n"
            + costs.prediction_text(runner.to_run(selected), counts))


def _run_in(out: Path, args: argparse.Namespace, cfg, text: str, selected: list[str], items, runner) -> int:
    """``cfg``: the checked config (app/run/schema.py ``RunConfig``)."""
    import json
    import signal

    from foundation.atomic import atomic_write_text
    from foundation.config import thaw
    from app.run import engine

    def on_term(signum, frame):  # SIGTERM stops the run like Ctrl-C: the running command is stopped cleanly
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    atomic_write_text(out / "config.toml", text)
    atomic_write_text(out / "config.json", json.dumps({"source": str(Path(args.config).resolve()),
                                                       "config": thaw(cfg)}, indent=1, default=str))
    atomic_write_text(out / "plan.json", json.dumps(
        {s: [{"name": i.name, "folder": str(i.folder), "steps": [engine.step_text(x) for x in i.steps + i.cleanup],
              "unavailable": i.unavailable, "est_s": round(i.est_s, 1)} for i in items[s]] for s in items}, indent=1))
    meta = None
    try:
        from foundation.runmeta import write_run_metadata
    except ImportError:  # this build has no run-metadata record: the report collects its own provenance
        write_run_metadata = None
    if write_run_metadata is not None:
        meta = write_run_metadata(out, seed=cfg.run.seed, extra={"config": str(Path(args.config).resolve()),
                                                                        "stages": selected})
    status = runner.run(selected, force=args.force)
    if meta is not None:
        meta.finish(out, status=status)
    return status


def _run_arguments(p: argparse.ArgumentParser) -> None:
    from app.run.schema import FAN_OUT_STAGES, STAGES
    p.add_argument("config", metavar="CONFIG.toml", help="run config (schema: docs/run-config.md)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: the config's [run] out, else runs/NAME)")
    p.add_argument("--only", metavar="STAGE", help=f"run only this stage ({', '.join(STAGES)}); the stages it "
                                                   "reads must have run")
    p.add_argument("--from", dest="from_stage", metavar="STAGE", help="run this stage and the ones after it")
    p.add_argument("--force", action="store_true", help="redo the selected stages even where nothing changed")
    p.add_argument("--dry-run", action="store_true", help="print the plan (stages, commands, what is up to date, "
                                                          "estimated time) and exit")
    p.add_argument("--jobs", metavar="N", help=f"run up to N items of the {', '.join(FAN_OUT_STAGES)} stages at "
                                               "once, each its own commands, the longest first (default: the "
                                               "config's [run] jobs, else 1: one after another); traces, emulate, "
                                               "deploy and report always run one item at a time (emulated and "
                                               "deployed runs use real time, links and the testbed)")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="with --dry-run: also print the cost model's predicted wall time of each stage on N workers "
                        "(cores; docs/cost-model.md)")


def _jobs(text: str) -> int:
    """``--jobs``: checked here, so a bad count is one line (not argparse's usage)."""
    from app.run.schema import RUN_JOBS_MAX, ConfigError
    if not text.isdigit() or not 1 <= int(text) <= RUN_JOBS_MAX:
        raise ConfigError(f"--jobs: a count from 1 to {RUN_JOBS_MAX}, got {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100000:
        raise argparse.ArgumentTypeError(f"workers: a count from 1 to 100000, got {text!r}")
    return int(text)


COMMANDS = (
    Command(("run",), help="the main job from one config: traces, train, export, simulate, "
                           "emulate, deploy, report (resumable; see docs/run-config.md)",
            description=__doc__, arguments=_run_arguments, run=cmd_run),
)
