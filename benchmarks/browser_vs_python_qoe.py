"""Per-session QoE of the browser player (dash.js 5.2.1 in headless Chromium, the ABR endpoint deciding) vs the
headless Python player, same policy, same fcc-val traces, same encoded video, through ``genet emulate abr``
(--player chromium, then --player python; netns links, RTT 80 ms, 12 Mbit/s uplink).

Prints one line per trace (QoE of each, the gap) and the mean gap. Known differences (player/browser_log.py):
the Python player books its start-up (chunk 0's download) as stall, dash.js does not; so the gap is printed
both raw and with the Python player's chunk-0 stall left out.

    python benchmarks/browser_vs_python_qoe.py [--traces 10] [--policy bba] [--jobs 2] [--video DIR] [--out DIR]
Needs root; the default encodes a 24-s video (6 chunks) and takes about (video + start-up) x traces x 2 / jobs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE  # noqa: E402
from player.browser import browser_missing_reason  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=10, help="first N traces of fcc-val")
    ap.add_argument("--policy", default="bba")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--video", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    missing = browser_missing_reason()
    if missing:
        print(f"skipped: {missing}")
        return 0
    import os
    if os.geteuid() != 0:
        print("skipped: needs root (netns links)")
        return 0
    from player.emulate import EmulateAbrConfig, emulate_abr
    from traces.io import list_trace_files
    src = REPO.parent / "shared" / "traces" / "abr" / "fcc-val"
    files = list_trace_files(src)[: args.traces]
    out = Path(args.out or tempfile.mkdtemp(prefix="genet-bench-bvp-"))
    tdir = out / "traces"
    tdir.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (tdir / f.name).exists():
            (tdir / f.name).symlink_to(f.resolve())
    video = args.video
    if video is None:
        from player.content import make_encoded_video
        video = str(make_encoded_video(out / "video", duration_s=24.0).root)
    rows = {}
    for player in ("chromium", "python"):
        res = emulate_abr(EmulateAbrConfig(policies=[args.policy], traces=str(tdir), out=str(out / player),
                                           video=video, jobs=args.jobs, player=player))
        rows[player] = {r["trace"]: r for r in res}
    print(f"{'trace':<36} {'browser_qoe':>11} {'python_qoe':>10} {'gap':>7} {'python_qoe*':>11} {'gap*':>7}")
    gaps, gaps2 = [], []
    for name in sorted(rows["python"]):
        b, p = rows["chromium"].get(name), rows["python"][name]
        if not b or b["status"] != "complete" or p["status"] != "complete":
            print(f"{name:<36} failed: {(b or {}).get('reason', '')[:60]} {p.get('reason', '')[:60]}")
            continue
        chunks = [json.loads(x) for x in Path(p["log"]).read_text().splitlines() if '"type":"chunk"' in x]
        p2 = p["qoe"] + REBUFFER_PENALTY_PENSIEVE * chunks[0]["rebuffer_s"] if chunks else p["qoe"]  # no start-up stall
        g, g2 = b["qoe"] - p["qoe"], b["qoe"] - p2
        gaps.append(g)
        gaps2.append(g2)
        print(f"{name:<36} {b['qoe']:>11.3f} {p['qoe']:>10.3f} {g:>7.3f} {p2:>11.3f} {g2:>7.3f}")
    if gaps:
        print(f"mean gap (browser - python) over {len(gaps)} traces: {np.mean(gaps):.3f} QoE per video "
              f"({np.mean(np.abs(gaps)):.3f} mean |gap|); without the Python player's start-up stall: "
              f"{np.mean(gaps2):.3f} ({np.mean(np.abs(gaps2)):.3f} mean |gap|)")
    print(f"[results under {out}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
