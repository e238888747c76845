"""``genet eval lb``: evaluate LB policies in the simulator (genet/lb/evaluate.py)."""

from __future__ import annotations

import argparse

from foundation.commands import Command
from foundation.errors import BadInputError


def _eval_lb_arguments(p: argparse.ArgumentParser) -> None:
    unset = argparse.SUPPRESS
    p.add_argument("--policy", action="append", required=True, metavar="POLICY", default=unset,
                   help="policy to evaluate: least_work, sed, jsq, power_of_two, round_robin, random or PATH.onnx; "
                        "repeat or comma-separate for several side by side (genet.lb.registry.POLICIES)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="RANGE", default=unset,
                     help="draw each episode's setting from this range of traces/spaces/lb.json (rl1, rl2, rl3); "
                          "not given: the --setting itself")
    src.add_argument("--workloads", metavar="DIR", default=unset,
                     help="one episode per DIR/*.workload file (traces/workload.py), on the --setting's workers")
    p.add_argument("--setting", choices=("genet", "park"), default="genet",
                   help="genet: 3 workers at 0.5, 1, 2 work units/ms, 2000 uniform jobs, Exp(100 ms) gaps, "
                        "shuffle 0.5; park: Park's 10 workers, 1000 Pareto(1.5) jobs, Exp(55 ms) gaps")
    p.add_argument("--genet-test-jobs", action="store_true",
                   help="episode k runs the jobs of Genet's test episode k (rl_test.py: np.random.seed(100000000 + k)"
                        "); the queue shuffles stay ours, seeded by --seed")
    p.add_argument("-n", type=int, default=50, help="number of episodes (count; not with --workloads)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes' jobs and shuffles and of the "
                                                       "policies' random choices (integer)")
    p.add_argument("--out", metavar="DIR", default=unset, help="output directory (not given: print the summary only)")
    p.add_argument("--deterministic", action="store_true",
                   help="ONNX policies take the most likely worker (default: they sample from their probabilities, "
                        "seeded, as Genet's LB test does)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _policies(values) -> list[str]:
    out = [x.strip() for spec in values for x in str(spec).split(",") if x.strip()]
    if not out:
        raise BadInputError("--policy: no policy given")
    return out


def run_eval_lb(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet eval lb")
    import contextlib

    from foundation.journal import run_folder_lock
    from genet.lb.evaluate import episodes, evaluate_lb, format_summary, summary_rows

    policies = _policies(args.policy)
    eps = episodes(args.setting, args.n, args.seed, config=getattr(args, "config", None),
                   workloads=getattr(args, "workloads", None), genet_test_jobs=args.genet_test_jobs)
    out = getattr(args, "out", None)
    with run_folder_lock(out, "genet eval lb") if out else contextlib.nullcontext():
        run_meta = None
        if out:
            from foundation.runmeta import write_run_metadata
            run_meta = write_run_metadata(out, seed=args.seed, extra={
                "use_case": "lb", "policies": policies, "setting": args.setting,
                "episodes": (f"workloads {args.workloads}" if getattr(args, "workloads", None)
                             else f"config {getattr(args, 'config', None) or 'default'}, n={args.n}")})
        outcome = evaluate_lb(policies, eps, out, seed=args.seed, deterministic=args.deterministic,
                              progress=not args.no_progress)
        print(format_summary(summary_rows(outcome.rows)))
        if outcome.reused:
            print(f"({outcome.reused} rows reused from {out}/results.jsonl, {outcome.ran} run now)")
        if run_meta is not None:
            run_meta.finish(out)
    if out:
        print(f"results: {out}/results.csv, results.json, summary.csv, summary.txt, run-metadata.json")
    return 0


COMMANDS = (
    Command(("eval", "lb"),
            help="evaluate LB policies (least_work, sed, jsq, power_of_two, round_robin, random, ONNX) in the "
                 "simulator",
            description="Run load-balancing policies side by side over the same episodes (Genet's setting, Park's, "
                        "a config-space range, or workload files) and write one row per (policy, episode) with "
                        "the reward (-total completion time, ms x jobs), mean completion time, p95 slowdown and "
                        "utilisation, plus a per-policy summary.",
            arguments=_eval_lb_arguments, run=run_eval_lb),
)
