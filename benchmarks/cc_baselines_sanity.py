"""Figures behind issue 4's baseline sanity checks: utilisation, p95
queueing delay and loss of Cubic, BBR and a constant-rate sender on a constant
10 Mbps / 50 ms one-way / BDP-sized-queue (83 packets) 30-s link, without and
with 1 % random loss, plus the mean over 20 RL3 synthetic environments.

    .venv/bin/python benchmarks/cc_baselines_sanity.py
"""

from __future__ import annotations

import numpy as np

from genet.cc.link import LinkConfig, mbps_to_pps
from genet.cc.metrics import summarize
from genet.cc.senders import BbrSender, CubicSender, RateSender
from genet.cc.simulator import Simulation
from traces.generators import generate_set


def main() -> None:
    bdp = int(mbps_to_pps(10) * 0.1)
    print(f"# constant 10 Mbps, 50 ms one-way, queue {bdp} packets (1 BDP = {1000 * bdp / mbps_to_pps(10):.0f} ms)")
    print(f"{'sender':<10} {'loss cfg':>8} {'util':>6} {'tput (Mbps)':>12} {'p95 queue (ms)':>15} "
          f"{'p95 RTT (ms)':>13} {'loss':>7} {'reward':>8}")
    for loss in (0.0, 0.01):
        link = LinkConfig.constant(10, 50, bdp, loss_rate=loss)
        for sender in (CubicSender(), BbrSender(), RateSender(9.5)):
            m = summarize(Simulation(link, sender, seed=1).run(), link, sender.name)
            print(f"{sender.name:<10} {loss:>8.2f} {m.utilisation:>6.3f} {m.throughput_mbps:>12.2f} "
                  f"{m.p95_queueing_delay_ms:>15.1f} {m.p95_rtt_ms:>13.1f} {m.loss_rate:>7.4f} {m.reward:>8.1f}")
    traces = generate_set("cc", "rl3", 20, seed=0)
    print("# 20 RL3 synthetic environments (seed 0): mean utilisation / p95 RTT (ms) / packet-level reward")
    for sender in (CubicSender(), BbrSender()):
        ms = [summarize(Simulation(LinkConfig.from_trace(t), sender).run(), LinkConfig.from_trace(t), sender.name)
              for t in traces]
        print(f"{sender.name:<10} util {np.mean([m.utilisation for m in ms]):.3f}  "
              f"p95 RTT {np.mean([m.p95_rtt_ms for m in ms]):.0f}  reward {np.mean([m.reward for m in ms]):.1f}")


if __name__ == "__main__":
    main()
