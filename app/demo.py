"""``genet demo``: the main job end to end, short enough for a first run.

Stages run in order and each writes under ``--out``:

1. traces: generate a synthetic Genet ABR set and CC set, convert the CC set
   to Mahimahi delivery-opportunity files, print each set's stats and draw them;
2. simulate: the rule-based baselines on those sets in the simulators
   (ABR: BBA and RobustMPC, plus the offline optimum; CC: BBR and Cubic),
   with the same commands a user runs (``genet eval abr|cc``);
3. further stages (train -> emulate -> report) join as the product grows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from foundation.commands import Command


def stage_traces(out: Path, seed: int) -> None:
    from traces.generators import generate_set
    from traces.io import convert, load_traces, write_trace
    from traces.plot import plot_dataset_cdf, plot_trace
    from traces.stats import dataset_stats

    for use_case, range_name, n in (("abr", "rl2", 10), ("cc", "rl3", 20)):
        folder = out / "traces" / f"{use_case}-{range_name}"
        traces = generate_set(use_case, range_name, n, seed)
        for t in traces:
            write_trace(t, folder / f"{t.name}.json", "json")
        print(f"\n[traces] generated {n} {use_case.upper()} traces from range {range_name} (seed {seed}) in {folder}")
        print(dataset_stats(load_traces(folder), name=folder.name).format())
        print(f"[traces] CDF: {plot_dataset_cdf(traces, out / 'plots' / f'{use_case}-{range_name}-cdf.png', folder.name)}")
        print(f"[traces] one trace: {plot_trace(traces[0], out / 'plots' / f'{traces[0].name}.png')}")
    mm = out / "traces" / "cc-rl3-mahimahi"
    written = convert(out / "traces" / "cc-rl3", mm, "mahimahi")
    print(f"\n[traces] converted {len(written)} CC traces to Mahimahi files in {mm} "
          f"(use them with `mm-link` or `genet emulate shell`)")


def stage_simulate(out: Path, seed: int) -> None:
    import os

    from app.cli import main as genet_main
    video = os.environ.get("GENET_VIDEO_DIR") or "envivio"  # the shipped EnvivioDash3 table
    print(f"\n[simulate] ABR: BBA, RobustMPC and the offline optimum on {out / 'traces' / 'abr-rl2'}")
    genet_main(["eval", "abr", "--traces", str(out / "traces" / "abr-rl2"), "--video", video,
                "--policy", "bba,mpc,optimal", "--out", str(out / "eval-abr"), "--no-progress"])
    print(f"\n[simulate] CC: BBR and Cubic on {out / 'traces' / 'cc-rl3'}")
    genet_main(["eval", "cc", "--traces", str(out / "traces" / "cc-rl3"), "--policy", "bbr,cubic",
                "--out", str(out / "eval-cc"), "--no-progress"])


STAGES = [("traces", stage_traces), ("simulate", stage_simulate)]


def cmd_demo(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("sim", "genet demo")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    for name, fn in STAGES:
        print(f"== stage {name} ==")
        fn(out, args.seed)
    print(f"\ndemo finished in {time.monotonic() - t0:.1f} s; results in {out.resolve()}")
    return 0


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo-output", help="output directory")
    p.add_argument("--seed", type=int, default=1, help="random seed for the synthetic traces")


COMMANDS = (
    Command(("demo",), help="run the main job end to end on synthetic data (a short first run)",
            description=__doc__, arguments=_demo_arguments, run=cmd_demo),
)
