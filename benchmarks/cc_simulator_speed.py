"""Speed of the packet-level CC simulator (issue 4): packets/s and simulated
seconds per wall second for BBR, Cubic and Aurora with random actions, on the
30-s links the reference (Genet's Python simulator) was measured on:
bandwidth 2-5 Mbps redrawn every 1 s, constant 3, 5 and 20 Mbps; 50 ms
one-way delay; queue 10 packets (50 at 20 Mbps).

    .venv/bin/python benchmarks/cc_simulator_speed.py [--repeats 3]

Prints one line per (sender, link); numba compilation is excluded (a warm-up
run first). The Aurora figures include the Python side of every step
(monitor interval, observation, reward) with a trivial random policy.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from genet.cc.env import AuroraEnv
from genet.cc.link import LinkConfig
from genet.cc.senders import BbrSender, CubicSender
from genet.cc.simulator import Simulation
from traces import Trace

#: Reference simulated-s per wall-s (issue 4, same machine kind): var/3/5/20 Mbps.
REFERENCE = {"bbr": (207, 251, 153, 47), "cubic": (390, 412, 281, 74)}


def links(seed: int = 0) -> list[tuple[str, Trace]]:
    rng = np.random.default_rng(seed)
    t = np.arange(0, 31.0, 1.0)
    var = Trace(t, rng.uniform(2, 5, t.size), name="var-2-5mbps", delay_ms=50, queue_packets=10, loss_rate=0.0)
    out = [("var 2-5", var)]
    for bw, q in ((3, 10), (5, 10), (20, 50)):
        out.append((f"const {bw}", Trace.constant(bw, 30.0, delay_ms=50, queue_packets=q, loss_rate=0.0)))
    return out


def time_sender(sender, trace: Trace, repeats: int) -> tuple[float, int]:
    link = LinkConfig.from_trace(trace)
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        sim = Simulation(link, sender, seed=r)
        sim.run()
        best = min(best, time.perf_counter() - t0)
    return best, sim.stats["packets_sent"]


def time_aurora(trace: Trace, repeats: int) -> tuple[float, int, int]:
    best, steps = float("inf"), 0
    for r in range(repeats):
        env = AuroraEnv(traces=[trace])
        rng = np.random.default_rng(r)
        t0 = time.perf_counter()
        env.reset(seed=r)
        steps = 0
        while True:
            steps += 1
            if env.step(rng.uniform(-0.5, 0.5, 1).astype(np.float32))[3]:
                break
        best = min(best, time.perf_counter() - t0)
    return best, env.sim.stats["packets_sent"], steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="runs per case; the fastest counts (3)")
    args = ap.parse_args()
    cases = links()
    # warm-up: compile the numba kernels once
    Simulation(LinkConfig.from_trace(cases[0][1]), BbrSender()).run(1.0)
    Simulation(LinkConfig.from_trace(cases[0][1]), CubicSender()).run(1.0)
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"best of {args.repeats}, one core")
    print(f"{'sender':<8} {'link (Mbps)':<12} {'packets':>8} {'wall (ms)':>10} {'packets/s':>12} "
          f"{'sim-s/wall-s':>13} {'reference':>10} {'speed-up':>9}")
    for name, sender in (("bbr", BbrSender()), ("cubic", CubicSender())):
        for k, (label, trace) in enumerate(cases):
            wall, packets = time_sender(sender, trace, args.repeats)
            ratio = trace.duration_s / wall
            ref = REFERENCE[name][k]
            print(f"{name:<8} {label:<12} {packets:>8d} {1000 * wall:>10.1f} {packets / wall:>12,.0f} "
                  f"{ratio:>13,.0f} {ref:>10d} {ratio / ref:>8.0f}x")
    for label, trace in cases:
        wall, packets, steps = time_aurora(trace, args.repeats)
        print(f"{'aurora':<8} {label:<12} {packets:>8d} {1000 * wall:>10.1f} {packets / wall:>12,.0f} "
              f"{trace.duration_s / wall:>13,.0f} {'-':>10} {'-':>9}   ({steps} steps, {steps / wall:,.0f} steps/s)")


if __name__ == "__main__":
    main()
