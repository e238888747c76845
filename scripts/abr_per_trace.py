#!/usr/bin/env python3
"""Where one ABR policy wins and loses against another, trace by trace (issue 17's per-trace evidence).

Runs every policy on every trace of each set (the evaluation ``genet eval abr`` does: default Pensieve mode,
the shipped video) and groups the traces by their mean bandwidth (Mbit/s, time-weighted over the trace).
For each group it prints the traces' count, each policy's mean QoE, and the first policy's mean difference to
the second and its wins / losses (a QoE difference under 0.5 counts as a tie). The mean bandwidth is
:attr:`traces.Trace.mean_bandwidth_mbps`, as `genet traces stats` reports it. The validation sets' slow
traces are most of them; a policy that streams the top rung only on fast links scores little there.

    .venv/bin/python scripts/abr_per_trace.py [--policy models/abr/genet.onnx,models/abr/udr1.onnx,mpc]
        [--traces ../shared/traces/abr/fcc-val,../shared/traces/abr/norway-val] [--bins-mbps 0,0.5,1,2,4,8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genet.abr.evaluate import evaluate  # noqa: E402
from genet.abr.training import default_video  # noqa: E402
from genet.policy import load_policy  # noqa: E402
from traces.errors import TraceFormatError  # noqa: E402
from traces.io import load_traces  # noqa: E402

#: a QoE difference smaller than this is a tie (QoE of one 48-chunk video)
TIE_QOE = 0.5


def compare(labels: list[str], sets: dict[str, list], bins_mbps: list[float]) -> str:
    """The per-group table (see the module docstring) for each set; ``sets``: name -> traces."""
    video = default_video()
    policies = [load_policy(p) if p.endswith(".onnx") else p for p in labels]
    names = [Path(p).stem[:10] for p in labels]
    edges = [*bins_mbps, np.inf]
    lines = []
    for set_name, traces in sets.items():
        qoe = np.array([[r.qoe for r in evaluate(pol, traces, video)] for pol in policies])  # (policies, traces)
        mbw = np.array([tr.mean_bandwidth_mbps for tr in traces])  # traces.Trace's time-weighted mean
        lines.append(f"{set_name}: {len(traces)} traces; {names[0]} - {names[1]} per group "
                     f"(wins / ties / losses: difference beyond ±{TIE_QOE})")
        lines.append(f"{'mean Mbit/s':>12s} {'traces':>6s} " + " ".join(f"{n:>10s}" for n in names) +
                     f" {'diff':>8s} {'w/t/l':>9s}")
        groups = [(lo, hi, (mbw >= lo) & (mbw < hi)) for lo, hi in zip(edges[:-1], edges[1:])]
        groups.append((edges[0], np.inf, np.ones(len(traces), bool)))
        for k, (lo, hi, m) in enumerate(groups):
            if not m.any():
                continue
            d = qoe[0, m] - qoe[1, m]
            label = "all" if k == len(groups) - 1 else (f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}")
            wtl = f"{(d > TIE_QOE).sum()}/{(abs(d) <= TIE_QOE).sum()}/{(d < -TIE_QOE).sum()}"
            lines.append(f"{label:>12s} {m.sum():>6d} " + " ".join(f"{v:>10.2f}" for v in qoe[:, m].mean(axis=1)) +
                         f" {d.mean():>+8.2f} {wtl:>9s}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    shared = root.parent / "shared" / "traces" / "abr"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default=f"{root / 'models/abr/genet.onnx'},{root / 'models/abr/udr1.onnx'},mpc",
                    help="comma-separated ABR policies (PATH.onnx, mpc, bba); the first two are compared")
    ap.add_argument("--traces", default=f"{shared / 'fcc-val'},{shared / 'norway-val'}",
                    help="comma-separated trace directories")
    ap.add_argument("--bins-mbps", default="0,0.5,1,2,4,8",
                    help="lower edges of the mean-bandwidth groups (Mbit/s, increasing; the last is open)")
    args = ap.parse_args(argv)
    labels = [p for p in args.policy.split(",") if p]
    if len(labels) < 2:
        ap.error("--policy needs at least two policies (the first two are compared)")
    try:
        bins = [float(b) for b in args.bins_mbps.split(",")]
    except ValueError:
        ap.error(f"--bins-mbps takes comma-separated numbers (Mbit/s), got {args.bins_mbps!r}")
    if sorted(bins) != bins or len(set(bins)) != len(bins):
        ap.error(f"--bins-mbps must be increasing, got {args.bins_mbps!r}")
    try:
        sets = {Path(d).name: load_traces(d) for d in args.traces.split(",") if d}
    except TraceFormatError as exc:  # names the file (and line) at fault
        ap.error(f"--traces: {exc}")
    print(compare(labels, sets, bins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
