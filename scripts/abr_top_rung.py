#!/usr/bin/env python3
"""Why ABR Genet's gap stays at ~66.7 (issue 17): on constant links far faster than the top rung, which
bitrates do the policies pick?

The paper-dimensions BO (`abr-genet-paperdims`) promotes fast links round after round with a gap to RobustMPC of
66.7 that training does not shrink: 46 chunks x (4.3 - 2.85) Mbit/s, i.e. the policy streams 2.85 Mbit/s where
RobustMPC streams the top rung. This runs each policy over a constant link of each bandwidth (400 s, the shipped
video, default Pensieve mode) and prints its QoE and mean bitrate.

    .venv/bin/python scripts/abr_top_rung.py [--policy models/abr/genet.onnx,models/abr/udr2.onnx,mpc]
        [--bandwidth-mbps 3,6,20,60]
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
from traces import Trace  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    models = ",".join(str(root / "models/abr" / f"{m}.onnx") for m in ("genet", "udr1", "udr2", "udr3"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default=f"{models},mpc,bba", help="comma-separated ABR policies (PATH.onnx, mpc, bba)")
    ap.add_argument("--bandwidth-mbps", default="3,6,20,60", help="comma-separated constant link bandwidths (Mbit/s)")
    args = ap.parse_args(argv)
    bws = [float(b) for b in args.bandwidth_mbps.split(",")]
    if not bws or min(bws) <= 0:
        ap.error(f"--bandwidth-mbps needs positive values, got {args.bandwidth_mbps!r}")
    video = default_video()
    print(f"ladder (kbit/s): {', '.join(str(int(b)) for b in video.bitrates_kbps)}; cells: QoE / mean bitrate Mbit/s")
    labels = args.policy.split(",")
    print(f"{'policy':12s} " + " ".join(f"{f'{b:g} Mbit/s':>16s}" for b in bws))
    for label in labels:
        pol = load_policy(label) if label.endswith(".onnx") else label
        cells = []
        for bw in bws:
            trace = Trace(np.arange(0.0, 400.0), np.full(400, bw), name=f"constant-{bw:g}")
            r = evaluate(pol, [trace], video)[0]
            cells.append(f"{r.qoe:8.1f} / {r.bitrate_mbps:4.2f}")
        print(f"{Path(label).stem[:12]:12s} " + " ".join(f"{c:>16s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
