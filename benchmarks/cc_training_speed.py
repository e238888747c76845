"""Training throughput of CC (Aurora) PPO (issue 6): environment transitions per
second *including* the PPO update, with Aurora's settings (7200 transitions
per update, 12 epochs, minibatch 600) on RL3 environments.

    .venv/bin/python benchmarks/cc_training_speed.py [--updates 3] [--n-envs 2] [--range rl3]

Prints one line per update and the overall figure. The issue's target is
>= 22k transitions/s (reference: Pensieve-PPO ~2.2k/s with 2 workers on this
machine kind). The first update includes numba compilation/cache loading,
so the overall figure excludes it when more than one update runs.
"""

from __future__ import annotations

import argparse
import platform
import time

from genet.cc.training import CcTrainConfig, CcUseCase
from genet.curriculum.distribution import ConfigDistribution


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=3, help="PPO updates to time (count)")
    ap.add_argument("--n-envs", type=int, default=2, help="environments per rollout (count)")
    ap.add_argument("--steps-per-update", type=int, default=7200, help="transitions per update (count)")
    ap.add_argument("--range", default="rl3", help="config-space range (rl1, rl2, rl3)")
    ap.add_argument("--seed", type=int, default=0, help="seed (integer)")
    args = ap.parse_args()
    uc = CcUseCase(CcTrainConfig(n_envs=args.n_envs, steps_per_update=args.steps_per_update))
    dist = ConfigDistribution.udr(uc.space, args.range)
    agent = uc.new_model(args.seed)
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}; "
          f"n_envs={args.n_envs}, steps/update={args.steps_per_update}, range={args.range}")
    t0 = time.perf_counter()
    uc.train(agent, dist, args.updates, args.seed)
    total = time.perf_counter() - t0
    for r in agent.history:
        print(f"update {r['update']}: {r['transitions_per_s']:8.0f} transitions/s  (rollout {r['rollout_s']:.2f} s, "
              f"PPO update {r['update_s']:.2f} s, mean step reward {r['mean_step_reward']:.1f})")
    timed = agent.history[1:] if len(agent.history) > 1 else agent.history
    steps = sum(args.steps_per_update // args.n_envs * args.n_envs for _ in timed)
    secs = sum(r["rollout_s"] + r["update_s"] for r in timed)
    print(f"overall: {steps / secs:.0f} transitions/s incl. the PPO update "
          f"({len(timed)} updates timed; wall incl. first: {total:.1f} s); target >= 22000, "
          f"reference Pensieve-PPO ~2200")


if __name__ == "__main__":
    main()
