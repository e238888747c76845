"""Emulation vs simulation for ABR: `genet emulate abr` on real traces, per-trace QoE gaps, ranking, wall time.

Runs BBA, RobustMPC and the shipped ONNX model (models/abr/genet.onnx) with the sized EnvivioDash3
video over ``--traces`` (default: the first 20 of ../shared/traces/abr/fcc-val, copied to OUT/traces),
``--jobs`` sessions at once, and prints, per policy, the per-trace gap (emulation - simulation QoE,
and % of |sim|), the mean QoE in both, whether the ranking of the policies agrees, and the wall time.
Each session lasts the video's length in real time (~196 s for 49 chunks; ``--chunks`` shortens it).
Needs root. With ``--compare OTHER_OUT`` it also prints the per-session QoE difference against an earlier
run of the same sessions (e.g. ``--jobs 1`` vs ``--jobs 8``).

    sudo python benchmarks/abr_emulation_fidelity.py --out runs/fidelity-j8 --jobs 8 [-n 20] [--chunks 49]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from player.emulate import EmulateAbrConfig, emulate_abr  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default=str(REPO.parent / "shared" / "traces" / "abr" / "fcc-val"))
    ap.add_argument("-n", type=int, default=20, help="first N traces of --traces")
    ap.add_argument("--policies", default=f"bba,mpc,{REPO / 'models' / 'abr' / 'genet.onnx'}")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare", default=None, metavar="OTHER_OUT")
    ap.add_argument("--tcp-cc", default="cubic", help="the video server's TCP congestion control")
    args = ap.parse_args()
    out = Path(args.out)
    tdir = out / "traces"
    tdir.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in Path(args.traces).iterdir() if p.is_file())[: args.n]:
        if not (tdir / f.name).exists():
            shutil.copy(f, tdir / f.name)
    policies = args.policies.split(",")
    t0 = time.monotonic()
    rows = emulate_abr(EmulateAbrConfig(policies=policies, traces=str(tdir), out=str(out), jobs=args.jobs,
                                        repeats=args.repeats, n_chunks=args.chunks, tcp_cc=args.tcp_cc),
                       progress=lambda r: print(f"  {r['policy']:<8} {r['trace']:<40} r{r['repeat']} {r['status']:<8} "
                                                f"qoe={r.get('qoe', float('nan')):8.2f} "
                                                f"sim={r.get('sim_qoe', float('nan')):8.2f}", flush=True))
    wall = time.monotonic() - t0
    ok = [r for r in rows if r["status"] == "complete"]
    labels = list(dict.fromkeys(r["policy"] for r in rows))
    print(f"\n{len(ok)}/{len(rows)} sessions complete, wall {wall / 60:.1f} min with --jobs {args.jobs}")
    means = {}
    for lab in labels:
        mine = [r for r in ok if r["policy"] == lab]
        if not mine:
            continue
        emu = np.array([r["qoe"] for r in mine])
        sim = np.array([r["sim_qoe"] for r in mine])
        gap = emu - sim
        rel = 100 * gap / np.maximum(np.abs(sim), 1e-9)
        means[lab] = (emu.mean(), sim.mean())
        print(f"\n{lab}: mean qoe emulation {emu.mean():.3f} simulation {sim.mean():.3f} "
              f"(gap of the means {100 * (emu.mean() - sim.mean()) / abs(sim.mean()):+.1f} %); "
              f"per-trace |gap| median {np.median(np.abs(rel)):.1f} %, >10 %: {int(np.sum(np.abs(rel) > 10))}/{len(mine)}")
        print(f"  rebuffer_s emu {np.mean([r['rebuffer_s'] for r in mine]):.3f} sim "
              f"{np.mean([r['sim_rebuffer_s'] for r in mine]):.3f}; bitrate_mbps emu "
              f"{np.mean([r['bitrate_mbps'] for r in mine]):.3f} sim {np.mean([r['sim_bitrate_mbps'] for r in mine]):.3f}")
        for r, g, p in zip(mine, gap, rel):
            print(f"    {r['trace']:<40} r{r['repeat']} emu {r['qoe']:8.2f} sim {r['sim_qoe']:8.2f} gap {g:+7.2f} "
                  f"({p:+6.1f} %) rebuf emu/sim {r['rebuffer_s']:.2f}/{r['sim_rebuffer_s']:.2f} "
                  f"offset {r['trace_offset_s']:.2f} s")
    if means:
        emu_rank = sorted(means, key=lambda k: -means[k][0])
        sim_rank = sorted(means, key=lambda k: -means[k][1])
        print(f"\nranking emulation: {' > '.join(emu_rank)}; simulation: {' > '.join(sim_rank)}; "
              f"same: {emu_rank == sim_rank}")
    if args.repeats > 1:
        diffs = []
        for lab in labels:
            by = {}
            for r in ok:
                if r["policy"] == lab:
                    by.setdefault(r["trace"], []).append(r["qoe"])
            diffs += [abs(v[0] - v[1]) / max(abs(v[0]), abs(v[1]), 1e-9) for v in by.values() if len(v) > 1]
        if diffs:
            print(f"repeatability: median |QoE difference| {100 * np.median(diffs):.2f} %, max {100 * np.max(diffs):.2f} %")
    if args.compare:
        other = {(r["policy"], r["trace"], r["repeat"]): r for r in csv.DictReader(open(Path(args.compare) / "results.csv"))}
        d = [abs(r["qoe"] - float(other[k]["qoe"])) / max(abs(float(other[k]["qoe"])), 1e-9)
             for r in ok for k in [(r["policy"], r["trace"], str(r["repeat"]))]
             if k in other and other[k]["status"] == "complete"]
        if d:
            print(f"vs {args.compare}: {len(d)} sessions, median |QoE difference| {100 * np.median(d):.2f} %, "
                  f"max {100 * np.max(d):.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
