"""``genet eval cc``: evaluate CC policies in the packet-level simulator."""

from __future__ import annotations

import argparse

from foundation.commands import Command
from foundation.errors import BadInputError


def _eval_cc_arguments(p: argparse.ArgumentParser) -> None:
    unset = argparse.SUPPRESS  # options without a fixed default say in their help what applies
    p.add_argument("--policy", action="append", required=True, metavar="POLICY", default=unset,
                   help="policy to evaluate: bbr, cubic, const:RATE_MBPS (constant rate in Mbps) or PATH.onnx "
                        "(an Aurora policy); repeat or comma-separate for several side by side "
                        "(genet.cc.registry.POLICIES)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--traces", metavar="DIR", default=unset, help="directory (or file) of traces, any supported format")
    src.add_argument("--config", metavar="RANGE", default=unset, help="generate traces from this CC config-space range "
                                                       "(rl1, rl2, rl3)")
    p.add_argument("-n", type=int, default=10, help="number of traces to generate with --config (count)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated traces and of the simulator's "
                                                       "random loss (integer)")
    p.add_argument("--out", metavar="DIR", default=unset,
                   help="output directory (not given: print the summary only)")
    p.add_argument("--reward-form", choices=("genet", "aurora"), default="genet",
                   help="reward column: genet = 500*tput/avg_bw - 1000*latency_s - 2000*loss, "
                        "aurora = 10*tput_pps - 1000*latency_s - 2000*loss")
    p.add_argument("--queue-packets", type=float, default=unset,
                   help="bottleneck queue in packets for every trace (not given: the trace's own, else 10)")
    p.add_argument("--loss-rate", type=float, default=unset,
                   help="random loss probability 0-1 for every trace (not given: the trace's own, else 0)")
    p.add_argument("--delay-ms", type=float, default=unset,
                   help="one-way propagation delay in ms for every trace (not given: the trace's own, else 25 ms)")
    p.add_argument("--duration-s", type=float, default=unset,
                   help="length of each run in seconds, at least 1; the trace loops (as Mahimahi loops it) when "
                        "shorter and is cut when longer (not given: the trace's own length; 30 s for a Mahimahi "
                        "file, which only loops, as Pantheon)")
    p.add_argument("--history-length", type=int, default=10,
                   help="monitor intervals in the Aurora observation (count; 10 gives 30 values)")
    p.add_argument("--interval-serialisation", choices=("link", "measured"), default="link",
                   help="Aurora models without this in their metadata (every shipped one): how the simulator "
                        "lengthens the next monitor interval — link = the link's true bandwidth (Genet's), measured "
                        "= the interval's delivery rate, as the real sender (genet/cc/aurora.py)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs written with --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs at once in worker processes (count; the rows are the same as with 1)")
    p.add_argument("--ray-address", metavar="HOST:PORT", default=None,
                   help="run the (policy, trace) runs as Ray tasks on this cluster instead (the cluster extra: "
                        "pip install 'genet-testbed[cluster]'); the rows are the same")


def run_eval_cc(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet eval cc")
    from genet.cc.aurora import AuroraConfig
    from genet.cc.evaluate import compare_policies, format_summary, summary_rows
    from genet.cc.registry import parse_policies

    policies = parse_policies(args.policy)
    if args.jobs < 1:
        raise BadInputError(f"--jobs must be >= 1, got {args.jobs}")
    if getattr(args, "duration_s", None) is not None:
        from traces.trace import check_run_duration_s
        check_run_duration_s(args.duration_s, "--duration-s")
    out = getattr(args, "out", None)
    if getattr(args, "traces", None):
        from traces import load_traces
        trace_list = load_traces(args.traces)
        if not trace_list:
            raise BadInputError(f"--traces {args.traces}: no traces found")
    else:
        from traces.generators import generate_set
        if args.n < 1:
            raise BadInputError(f"-n must be >= 1, got {args.n}")
        trace_list = generate_set("cc", args.config, args.n, args.seed)
    for trace in trace_list:  # a run under 1 s is refused before anything is written
        trace.run_duration_s(getattr(args, "duration_s", None))
    aurora = AuroraConfig(history_length=args.history_length, reward_form=args.reward_form,
                          interval_serialisation=getattr(args, "interval_serialisation", "link"))
    import contextlib

    from foundation.journal import run_folder_lock
    with run_folder_lock(out, "genet eval cc") if out else contextlib.nullcontext():  # one command per --out
        run_meta = None
        if out:
            from foundation.runmeta import write_run_metadata
            run_meta = write_run_metadata(out, seed=args.seed, extra={
                "use_case": "cc", "policies": [p.label for p in policies],
                "traces": str(args.traces) if getattr(args, "traces", None) else f"config {args.config}, n={args.n}"})
        rows = compare_policies(policies, trace_list, out, seed=args.seed, reward_form=args.reward_form,
                                aurora=aurora, queue_packets=getattr(args, "queue_packets", None),
                                loss_rate=getattr(args, "loss_rate", None), delay_ms=getattr(args, "delay_ms", None),
                                duration_s=getattr(args, "duration_s", None), progress=not args.no_progress,
                                plots=not args.no_plots, jobs=args.jobs, ray_address=args.ray_address)
        print(format_summary(summary_rows(rows), args.reward_form))
        if run_meta is not None:
            run_meta.finish(out)
    if out:
        print(f"results: {out}/results.csv, results.json, summary.csv, run-metadata.json; "
              f"plots: timeseries.png, reward_cdf.png")
    return 0


COMMANDS = (
    Command(("eval", "cc"),
            help="evaluate CC policies (bbr, cubic, const:RATE, ONNX Aurora) in the packet-level simulator",
            description="Run CC policies side by side over traces (a directory of traces, e.g. the Pantheon sets "
                        "in ../shared/traces/cc, or N synthetic 30-s traces from a CC config-space range) and write "
                        "one row per trace (CSV, JSON), a per-policy summary, a time-series PNG and a reward CDF.",
            arguments=_eval_cc_arguments, run=run_eval_cc),
)
