"""`genet study top-rung`: why ABR Genet's gap stays at ~66.7 (issue 17): on constant links far faster than
the top rung, which bitrates do the policies pick?

The paper-dimensions BO (`abr-genet-paperdims`) promotes fast links round after round with a gap to RobustMPC
of 66.7 that training does not shrink: 46 chunks x (4.3 - 2.85) Mbit/s, i.e. the policy streams 2.85 Mbit/s
where RobustMPC streams the top rung. This runs each policy over a constant link of each bandwidth
(400 s, the shipped video, default Pensieve mode) and prints its QoE and mean bitrate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from foundation.errors import BadInputError

#: Length of each constant link (s).
LINK_S = 400


def parse_bandwidths_mbps(text: str) -> list[float]:
    """``"3,6"`` -> [3.0, 6.0]; empty, not numbers or not positive: :class:`BadInputError`."""
    try:
        bws = [float(b) for b in text.split(",")]
    except ValueError:
        raise BadInputError(f"--bandwidth-mbps takes comma-separated numbers (Mbit/s), got {text!r}") from None
    if not bws or min(bws) <= 0:
        raise BadInputError(f"--bandwidth-mbps needs positive values, got {text!r}")
    return bws


def lines(labels: list[str], bandwidths_mbps: list[float]) -> Iterator[str]:
    """The ladder, the header, then one row per policy (PATH.onnx, mpc, bba): QoE / mean bitrate (Mbit/s) on
    each constant link."""
    import numpy as np

    from genet.abr.evaluate import evaluate
    from genet.abr.training import default_video
    from genet.policy import load_policy
    from traces import Trace
    video = default_video()
    yield (f"ladder (kbit/s): {', '.join(str(int(b)) for b in video.bitrates_kbps)}; "
           "cells: QoE / mean bitrate Mbit/s")
    yield f"{'policy':12s} " + " ".join(f"{f'{b:g} Mbit/s':>16s}" for b in bandwidths_mbps)
    for label in labels:
        pol = load_policy(label) if label.endswith(".onnx") else label
        cells = []
        for bw in bandwidths_mbps:
            trace = Trace(np.arange(0.0, float(LINK_S)), np.full(LINK_S, bw), name=f"constant-{bw:g}")
            r = evaluate(pol, [trace], video)[0]
            cells.append(f"{r.qoe:8.1f} / {r.bitrate_mbps:4.2f}")
        yield f"{Path(label).stem[:12]:12s} " + " ".join(f"{c:>16s}" for c in cells)
