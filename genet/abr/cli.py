"""``genet eval abr`` and ``genet import-tf-checkpoint`` (declaring them stays cheap: imports happen in the commands)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from foundation.commands import Command, Group
from foundation.errors import BadInputError
from foundation.experiment import Tier


def _eval_abr_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", action="append", metavar="POLICY",
                   help="bba, mpc (RobustMPC), optimal (offline optimum) or PATH.onnx; repeat or separate with "
                        "commas to compare side by side (default: bba,mpc)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--traces", metavar="DIR",
                     help="trace directory or file (any format traces.load_traces reads; pensieve text files)")
    src.add_argument("--config", choices=["rl1", "rl2", "rl3"],
                     help="instead of --traces: -n synthetic traces whose environments (bandwidth, buffer, chunk "
                          "and video length, RTT) are drawn from this range of the ABR config space")
    p.add_argument("-n", "--num-traces", type=int, default=100, metavar="N",
                   help="number of synthetic traces with --config (count)")
    p.add_argument("--video", default=os.environ.get("GENET_VIDEO_DIR", "envivio"), metavar="DIR",
                   help="'envivio' (the shipped EnvivioDash3 table), a directory with video.json or "
                        "video_size_0..5 (chunk sizes in bytes, one per line), or a .json table "
                        "(env GENET_VIDEO_DIR)")
    p.add_argument("--compat", choices=["genet"], default=None,
                   help="reproduce the Genet ABR-A simulator (49 chunks, mu=10, first quality 0, "
                        "RobustMPC as in Genet) instead of the default Pensieve conventions "
                        "(48 chunks, mu=4.3, first quality 1)")
    p.add_argument("--rebuffer-penalty", type=float, default=None, metavar="MU",
                   help="QoE penalty per second of rebuffering, Mbps-equivalent per s (default: the mode's, "
                        "4.3 or 10 with --compat genet)")
    p.add_argument("--out", default="runs/eval-abr", metavar="DIR", help="output directory")
    p.add_argument("--sample", action="store_true",
                   help="sample ONNX policies' actions (Pensieve's 1/1000-discretised rule) instead of argmax")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of --config's trace generation and of --sample's action draws (integer)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _import_tf_checkpoint_arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument("checkpoint", metavar="DIR_OR_PREFIX",
                   help="checkpoint directory (the newest *.ckpt.index is used) or checkpoint prefix")
    t.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="output ONNX file")
    t.add_argument("--name", default=None, help="policy name stored in the metadata (default: directory name)")


def cmd_eval_abr(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet eval abr")
    from genet.abr.evaluate import policy_label
    from genet.abr.params import conventions
    from genet.abr.video import resolve_video
    from traces.io import load_traces

    conv = conventions(args.compat or "pensieve")
    if args.rebuffer_penalty is not None:
        if args.rebuffer_penalty < 0:
            raise BadInputError(f"--rebuffer-penalty must be >= 0, got {args.rebuffer_penalty}")
        conv = conv.replace(rebuffer_penalty=args.rebuffer_penalty)
    policies = [x for value in (args.policy or ["bba,mpc"]) for x in value.split(",") if x]
    labels = [policy_label(p) for p in policies]
    if len(set(labels)) != len(labels):
        raise BadInputError(f"--policy values must have distinct names, got {labels}")
    video = resolve_video(args.video)
    if args.config:
        from traces.generators import generate_set
        traces = generate_set("abr", args.config, n=args.num_traces, seed=args.seed)
        source = f"config {args.config}, n={args.num_traces}, seed={args.seed}"
    else:
        traces = load_traces(args.traces)
        if not traces:
            raise BadInputError(f"--traces {args.traces}: no traces found")
        source = str(Path(args.traces).resolve())
    from foundation.journal import run_folder_lock
    with run_folder_lock(args.out, "genet eval abr") as out:
        return _eval_abr_into(out, args, policies, labels, traces, source, video, conv)


def _eval_abr_into(out: Path, args: argparse.Namespace, policies: list[str], labels: list[str], traces, source: str,
                   video, conv) -> int:
    """The part of ``genet eval abr`` that writes ``out`` (under its run-folder lock)."""
    import json
    import sys
    import time

    from genet.abr.evaluate import format_table, plot_cdf, summarize
    from foundation.experiment import Cell, Experiment
    from foundation.journal import Journal
    from foundation.runmeta import write_run_metadata
    run_meta = write_run_metadata(out, seed=args.seed, extra={"use_case": "abr", "policies": policies,
                                                             "traces": source, "mode": conv.name})
    bar = None
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=len(traces) * len(policies), unit="trace", desc="eval abr", file=sys.stderr)
    t0 = time.perf_counter()
    journal = Journal(out / "results.jsonl")
    key = {"traces": source, "video": str(Path(video.source).resolve()), "mode": conv.name,
           "rebuffer_penalty": conv.rebuffer_penalty, "sample": bool(args.sample), "seed": args.seed}
    tier = SimulatedAbr(key, traces, video, conv, deterministic=not args.sample, seed=args.seed, bar=bar)
    cells = [Cell(label, tr.name, 0, pol) for pol, label in zip(policies, labels) for tr in traces]
    experiment = Experiment(tier, journal, on_row=lambda cell, row, reused: reused and bar is not None
                            and bar.update())
    try:
        rows_of = experiment.run(cells).rows
    finally:
        if bar is not None:
            bar.close()
    results = {label: [r for r in rows_of if r.policy == label] for label in labels}
    elapsed = time.perf_counter() - t0
    rows = [r.as_dict() for res in results.values() for r in res]
    _write_csv(out / "results.csv", rows)
    summaries = [summarize(res) for res in results.values()]
    meta = {"traces": source, "video": str(args.video), "mode": conv.name,
            "rebuffer_penalty": conv.rebuffer_penalty, "policies": policies, "elapsed_s": elapsed}
    from foundation.atomic import atomic_text_writer
    with atomic_text_writer(out / "results.json") as fh:
        fh.write(json.dumps({"meta": meta, "summary": [s.__dict__ for s in summaries], "results": rows}, indent=1))
    table = format_table(summaries)
    with atomic_text_writer(out / "summary.txt") as fh:
        fh.write(table + "\n")
    plot_cdf(results, out / "qoe_cdf.png",
             title=f"{args.config or Path(args.traces).name} ({conv.name} mode)")
    run_meta.finish(out)
    print(table)
    print(f"[{len(traces)} traces x {len(policies)} policies in {elapsed:.2f} s; wrote {out}/results.csv, "
          f"results.json, summary.txt, qoe_cdf.png, run-metadata.json]")
    return 0


class SimulatedAbr(Tier):
    """The simulator tier of ``genet eval abr`` (a :class:`foundation.experiment.Tier`): a cell is a policy on
    one trace; a policy runs on all its traces at once (the batched simulator: :func:`genet.abr.evaluate.evaluate`),
    and its cells are journaled together, each row with the settings ``key``. A baseline's journaled rows stand
    for its cells when every trace is there with the same settings (the last row of a trace wins); a model
    (``.onnx``: its file may have changed) is rerun every time, and its newest rows win."""

    name = "simulator"

    def __init__(self, key: dict, traces, video, conv, deterministic: bool, seed: int, bar=None) -> None:
        self.settings, self.traces, self.video, self.conv = key, traces, video, conv
        self.deterministic, self.seed, self.bar = deterministic, seed, bar
        self.names = [tr.name for tr in traces]
        self.unique = len(set(self.names)) == len(self.names)
        self.journaled_rows: dict = {}
        self.journaled: dict = {}

    def key(self, cell):
        return cell.key if self.unique else (cell.policy, cell.environment, id(cell))

    def record_key(self, record):
        if record.get("key") != self.settings:
            return None
        return (record.get("policy"), record.get("trace"), 0)

    def reuse(self, cell, records):
        from genet.abr.evaluate import TraceResult
        if not self.unique or cell.data.endswith(".onnx"):
            return None
        mine = self.journaled_rows.get(cell.policy)
        if mine is None:  # the policy's rows, when every trace has one
            rows = {}
            for (policy, trace, _), recs in self.journaled.items():
                if policy == cell.policy:
                    try:
                        rows[trace] = TraceResult(**{k: v for k, v in recs[-1].items() if k != "key"})
                    except TypeError:
                        continue
            mine = self.journaled_rows[cell.policy] = rows if all(n in rows for n in self.names) else {}
        return mine.get(cell.environment)

    def record(self, cell, row):
        if not cell.data.endswith(".onnx") and (cell.policy, cell.environment, 0) in self.journaled:
            return None  # a baseline's row a crash left of an unfinished pass: the same result, not twice
        return {"key": self.settings, **row.as_dict()}

    def run(self, cells):
        from genet.abr.evaluate import evaluate
        for label in dict.fromkeys(c.policy for c in cells):
            mine = [c for c in cells if c.policy == label]
            if self.bar is not None:
                self.bar.set_postfix_str(label)
            results = evaluate(mine[0].data, self.traces, self.video, self.conv, label=label,
                               deterministic=self.deterministic, seed=self.seed,
                               progress=self.bar.update if self.bar is not None else None)
            yield list(zip(mine, results))


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    from foundation.atomic import atomic_text_writer
    with atomic_text_writer(path) as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def _pool_abr_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--traces", metavar="DIR",
                     help="simulate: every --policy plays one video per trace of this directory (as genet eval abr)")
    src.add_argument("--from-runs", metavar="DIR[,DIR...]",
                     help="instead of simulating: the player logs of these run folders or log files (genet emulate "
                          "abr's sessions/*/*/player.jsonl, a deploy campaign's ABR run.jsonl)")
    p.add_argument("--policy", action="append", metavar="POLICY",
                   help="with --traces: bba, mpc, optimal or PATH.onnx; repeat or separate with commas (default: mpc)")
    p.add_argument("--video", default=None, metavar="DIR",
                   help="the video: with --traces as genet eval abr's (default envivio); with --from-runs the video "
                        "the runs served (default: each run folder's video-sized table, else envivio)")
    p.add_argument("--compat", choices=["genet"], default=None,
                   help="with --traces: the Genet ABR-A conventions instead of Pensieve's (as genet eval abr)")
    p.add_argument("--sample", action="store_true",
                   help="with --traces: sample ONNX policies' actions instead of argmax (more varied episodes)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample's action draws (integer)")
    p.add_argument("-o", "--output", required=True, metavar="POOL.npz", help="the pool file to write")


def _playable(traces, video, conv, where: str):
    """The traces the simulator accepts (as training's real traces: the others, too short or too slow to carry one
    top-quality chunk in a pass, are skipped with a line naming them); none at all is an error."""
    import sys

    from genet.abr.core import BatchedAbrSim
    from traces.errors import TraceFormatError
    kept, skipped = [], []
    for t in traces:
        try:
            BatchedAbrSim([t], video, conv, n_envs=1)
            kept.append(t)
        except TraceFormatError:
            skipped.append(t.name)
    if not kept:
        raise BadInputError(f"--traces {where}: none of the {len(traces)} traces can carry one video chunk in a pass")
    if skipped:
        print(f"skipping {len(skipped)} of {len(traces)} traces that cannot carry one video chunk in a pass: "
              f"{', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}", file=sys.stderr)
    return kept


def cmd_pool_abr(args: argparse.Namespace) -> int:
    from genet.abr.pool import describe, pool_from_runs, pool_from_simulation, write_pool
    if args.from_runs:
        if args.policy or args.compat or args.sample:
            raise BadInputError("--policy, --compat and --sample choose what the simulator plays (--traces), "
                                "not --from-runs")
        pool = pool_from_runs([x for x in args.from_runs.split(",") if x], video=args.video)
    else:
        from foundation.extras import require
        require("sim", "genet pool abr --traces")
        from genet.abr.evaluate import policy_label
        from genet.abr.params import conventions
        from genet.abr.video import resolve_video
        from traces.io import load_traces
        policies = [x for value in (args.policy or ["mpc"]) for x in value.split(",") if x]
        traces = load_traces(args.traces)
        if not traces:
            raise BadInputError(f"--traces {args.traces}: no traces found")
        video, conv = resolve_video(args.video or "envivio"), conventions(args.compat or "pensieve")
        traces = _playable(traces, video, conv, args.traces)
        pool = pool_from_simulation(policies, traces, video, conv, labels=[policy_label(p) for p in policies],
                                    deterministic=not args.sample, seed=args.seed)
    path = write_pool(pool, args.output)
    print(f"wrote {path}: {describe(pool)}")
    return 0


def cmd_import_tf_checkpoint(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("train", "genet import-tf-checkpoint")
    from genet.abr.tf_import import import_checkpoint

    path, info = import_checkpoint(args.checkpoint, args.output, name=args.name)
    print(f"wrote {path}: {info}")
    return 0


COMMANDS = (
    Command(("eval", "abr"), help="evaluate ABR policies (bba, mpc, optimal, .onnx) over a trace set in simulation",
            description="Play one video per trace with each policy (all traces stepped as one batch) and write "
                        "results.csv / results.json (one row per policy and trace), summary.txt (Table-6 form: "
                        "bitrate Mbps, rebuffering s, bitrate change Mbps, QoE) and qoe_cdf.png (per-trace QoE CDF "
                        "of all policies).",
            arguments=_eval_abr_arguments, run=cmd_eval_abr),
    Group(("pool",), help="write experience pools for offline RL (pool abr)",
          description="write experience pools (episodes of observation, action, reward, done) for offline RL",
          metavar="USE_CASE"),
    Command(("pool", "abr"), help="write an ABR experience pool (offline RL data) from simulated policies or "
                                  "player logs",
            description="Record episodes of (observation abr.pensieve-6x8, action = next quality, reward = that "
                        "chunk's QoE, done) into one .npz (genet/abr/pool.py documents the format): from the "
                        "simulator (--traces, --policy as genet eval abr) or from the player logs of genet emulate "
                        "abr run folders and deploy campaigns (--from-runs). genet train abr --agent dt --pool "
                        "learns from it.",
            arguments=_pool_abr_arguments, run=cmd_pool_abr),
    Command(("import-tf-checkpoint",),
            help="convert a Genet/Pensieve TF1 ABR actor checkpoint to an ONNX policy (no TensorFlow needed)",
            description="Read a TensorFlow-1 checkpoint (tensor bundle .index + .data) of the Pensieve/Genet A3C "
                        "actor directly, rebuild the actor in torch and export it as an ONNX policy whose metadata "
                        "carries use case, observation layout and action semantics.",
            arguments=_import_tf_checkpoint_arguments, run=cmd_import_tf_checkpoint),
)
