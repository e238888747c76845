#!/usr/bin/env python3
"""Why CC Genet's curriculum stalls (issue 17): the corner its BO keeps promoting, and where the loss there comes from.

The CC BO (gap to BBR, packet-level reward) promotes a 0.1-Mbit/s, 2-ms link in nearly every round, and the gap stays
~1,100-1,450 after training on it. This runs BBR, Cubic and Aurora policies on that corner (10 traces generated the way
the BO's trials generate them) and splits each policy's sent and lost packets by time: an Aurora sender starts at
10 packets per minimum RTT (2,500 packets/s at 4 ms, 300x the link) and the policy's first decisions come too late
to avoid the start-up burst, which the packet-level loss term (2000 x lost/sent) then dominates. Column r>ACK1: the
reward of the packets sent after the sender's first ACK (what `genet train cc --gap-after-first-ack` has the BO compare).

    .venv/bin/python scripts/cc_startup_burst.py [--policy models/cc/udr3.onnx,models/cc/genet.onnx]
        [--loss-rate 0.05] [-n 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genet.cc.aurora import AuroraConfig  # noqa: E402
from genet.cc.metrics import after_first_ack, summarize  # noqa: E402
from genet.cc.policies import run_policy  # noqa: E402
from genet.cc.registry import load_aurora_policy, parse_policy  # noqa: E402
from genet.cc.training import trial_runs  # noqa: E402  (one definition: how a BO trial makes its traces)
from traces.config_space import load_space  # noqa: E402

#: The configuration CC Genet's BO promoted (models/cc/genet.json rounds 1, 2, 5-7; the study's seeds 1-2 likewise).
CORNER = {"max_bandwidth_mbps": 0.1, "min_bandwidth_mbps": 0.1, "delay_ms": 2.0, "bandwidth_change_interval_s": 0.0,
          "loss_rate": 0.05, "queue_bdp": 0.2}
#: Time bins of the split (s): the start-up, the next seconds, the rest of the 30-s episode.
BINS_S = (0.0, 1.0, 5.0, 30.0 + 1e-9)


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default=f"bbr,cubic,{root / 'models/cc/udr3.onnx'},{root / 'models/cc/genet.onnx'}",
                    help="comma-separated CC policies (bbr, cubic, PATH.onnx)")
    ap.add_argument("--loss-rate", type=float, default=CORNER["loss_rate"], help="random loss of the corner (0-1)")
    ap.add_argument("-n", type=int, default=10, help="traces (count; the BO's trials use 10)")
    args = ap.parse_args(argv)
    if args.n < 1 or not 0 <= args.loss_rate <= 1:
        ap.error(f"need -n >= 1 and 0 <= --loss-rate <= 1, got -n {args.n}, --loss-rate {args.loss_rate}")
    space = load_space("cc")
    corner = dict(CORNER, loss_rate=args.loss_rate)
    aurora = AuroraConfig(reward_form="genet")
    print(f"corner: {corner}; {args.n} traces of 30 s, seeds as the BO's trials ([0, i])")
    print(f"{'policy':14s} {'reward':>8s} {'Mbit/s':>7s} {'RTT ms':>7s} {'loss':>6s} {'r>ACK1':>7s}   sent / lost in "
          + ", ".join(f"[{a:g},{b:.0f}) s" for a, b in zip(BINS_S, BINS_S[1:])))
    for label in args.policy.split(","):
        pol = parse_policy(label)
        loaded = load_aurora_policy(label, aurora) if pol.kind == "onnx" else None
        rows, sent, lost = [], np.zeros(len(BINS_S) - 1), np.zeros(len(BINS_S) - 1)
        for trace, link, seed in trial_runs([corner] * args.n, 0, space):
            log = run_policy(pol, trace, link, seed=seed, aurora=aurora, loaded=loaded)
            m = summarize(log, link, label, trace.name, "genet", seed)
            late = summarize(after_first_ack(log), link, label, trace.name, "genet", seed)
            rows.append((m.reward, m.throughput_mbps, m.mean_rtt_ms, m.loss_rate, late.reward))
            sent += np.histogram(log.time_s[log.kind == 0], BINS_S)[0]
            lost += np.histogram(log.time_s[log.kind == 2], BINS_S)[0]
        r = np.mean(rows, axis=0)
        split = ", ".join(f"{s / args.n:.0f}/{lo / args.n:.0f}" for s, lo in zip(sent, lost))
        print(f"{Path(label).name:14s} {r[0]:8.1f} {r[1]:7.3f} {r[2]:7.1f} {r[3]:6.3f} {r[4]:7.1f}   {split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
