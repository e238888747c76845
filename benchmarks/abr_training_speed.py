"""ABR training throughput: environment transitions per second including the PPO update.

Pensieve-PPO (genet-simulators.md §8.2) on the batched simulator, RL3 UDR environments,
EnvivioDash3 chunk sizes when ../shared is beside the repository. Reference: the original
Pensieve-PPO does ~2.2k transitions/s with 2 workers on this machine kind; issue 6 target >= 22k;
issue 17: one run with 2 rollout workers >= 1.7x its one-core figure.

    .venv/bin/python benchmarks/abr_training_speed.py [--threads 1] [--workers 1,2] [--updates 5]
        [--n-envs 16,64] [--rollout-steps 48] [--agents ppo,a3c,dqn]

Prints one row per (n_envs, workers): batch size, transitions/s, rollout and update time per update,
and each worker count's speed-up over the first (workers 1 with --threads 1 is the one-core figure;
the rollout workers use one torch thread each). The last two columns estimate what a quiet machine
would do from CPU time, not wall time: transitions per CPU-second on the critical path (this process's
CPU plus the busiest worker's, which take turns) and its ratio to the first row. Figures are measurements on the machine it runs on,
never asserted; on a machine shared with other work they are noisy.

``--agents`` times other learners of the agent registry on the same rollouts (``a3c``: one RMSProp step per
update; ``dqn``: Double DQN's gradient steps, one per 16 transitions of 128 each, replay already filling, so every
timed update takes its steps); they step their sessions in this process, so they get the ``workers 1`` rows only,
and the summary prints each one's ratio to PPO's at the same n_envs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads of the in-process (workers 1) rows (count; 0 = every core)")
    ap.add_argument("--workers", default="1,2",
                    help="rollout workers, comma-separated (count; 1 = in process, 0 = every core)")
    ap.add_argument("--updates", type=int, default=5, help="timed PPO updates per row (count)")
    ap.add_argument("--n-envs", default="16,64", help="sessions per rollout, comma-separated (count; 16,64)")
    ap.add_argument("--rollout-steps", type=int, default=48, help="decisions per session per update (count; 48)")
    ap.add_argument("--epochs", type=int, default=5, help="PPO epochs per update (count; 5 = Pensieve-PPO)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed updates per row first (count; the workers' first updates map files, compile and "
                         "fault in memory)")
    ap.add_argument("--range", dest="range_name", default="rl3", help="UDR range of the environments (rl3)")
    ap.add_argument("--agents", default="ppo",
                    help="learners to time, comma-separated names of genet/agents/registry.py (ppo, a3c, dqn; "
                         "ppo)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds of every row, interleaved; the summary gives each row's median (count; this "
                         "VM's one-core figure moved by 1.8x between back-to-back runs)")
    args = ap.parse_args()

    from genet.abr.training import AbrTrainConfig, train_steps_per_second

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = [a for a in agents if a not in USE_CASES]
    if unknown or not agents:
        ap.error(f"--agents: unknown {unknown[0] if unknown else ''!r}; choose from {', '.join(USE_CASES)}")
    print(f"host: {platform.node()} ({os.cpu_count()} cores), python {platform.python_version()}")
    print(f"{'agent':>6} {'n_envs':>6} {'steps':>5} {'batch':>6} {'workers':>7} {'threads':>7} {'transitions/s':>13} "
          f"{'rollout_ms':>10} {'update_ms':>9} {'speed-up':>8} {'cpu-bound tr/s':>14} {'cpu-x':>8}")
    import statistics
    rates: dict[tuple[str, int, int], list[float]] = {}
    for rep in range(args.repeats):
        for n_envs in (int(x) for x in args.n_envs.split(",")):
            for agent in agents:
                first = first_cpu = None
                for workers in (int(x) for x in args.workers.split(",")):
                    if agent != "ppo" and workers != 1:
                        continue  # the other agents step their sessions in this process
                    cfg = AbrTrainConfig(n_envs=n_envs, rollout_steps=args.rollout_steps, epochs=args.epochs,
                                         torch_threads=args.threads if workers == 1 else 1, rollout_workers=workers)
                    uc = USE_CASES[agent](cfg)
                    try:
                        r = train_steps_per_second(uc, updates=args.updates, warmup=args.warmup,
                                                   range_name=args.range_name)
                    finally:
                        uc.close()
                    first = first or r["transitions_per_s"]
                    rates.setdefault((agent, n_envs, workers), []).append(r["transitions_per_s"])
                    # CPU-time estimate of a quiet machine: this process's CPU per transition plus the busiest
                    # worker's (the two alternate); one core: this process's alone
                    cpu = r["parent_cpu_s"] + r["max_worker_cpu_s"]
                    first_cpu = first_cpu or cpu
                    print(f"{agent:>6} {n_envs:>6} {args.rollout_steps:>5} {r['batch']:>6} {workers:>7} "
                          f"{r['torch_threads']:>7} {r['transitions_per_s']:>13.0f} {1000 * r['rollout_s']:>10.1f} "
                          f"{1000 * r['update_s']:>9.1f} {r['transitions_per_s'] / first:>7.2f}x {1 / cpu:>14.0f} "
                          f"{first_cpu / cpu:>7.2f}x", flush=True)
    print(f"median over {args.repeats} interleaved rounds:")
    first_workers = int(args.workers.split(",")[0])
    for n_envs in (int(x) for x in args.n_envs.split(",")):
        for agent in agents:
            for workers in (int(x) for x in args.workers.split(",")):
                if (agent, n_envs, workers) not in rates:
                    continue
                med = statistics.median(rates[(agent, n_envs, workers)])
                if agent == "ppo":
                    ratios = [a / b for a, b in zip(rates[(agent, n_envs, workers)],
                                                    rates[(agent, n_envs, first_workers)])]
                    what = "speed-up"
                elif ("ppo", n_envs, 1) in rates:  # against PPO in this process, round by round
                    ratios = [a / b for a, b in zip(rates[(agent, n_envs, workers)], rates[("ppo", n_envs, 1)])]
                    what = "ratio to ppo (workers 1)"
                else:
                    ratios = []
                print(f"  {agent:>4}, n_envs {n_envs:>4}, workers {workers}: {med:>8.0f} transitions/s"
                      + (f"; {what} per round {', '.join(f'{x:.2f}' for x in ratios)}x, median "
                         f"{statistics.median(ratios):.2f}x" if ratios else ""))
    print("video:", uc.video.source or "constant-bitrate stand-in (../shared/video/envivio missing)")
    print("reference: Pensieve-PPO ~2.2k transitions/s (2 workers); target >= 22k; 2 workers >= 1.7x one core")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(figures are noisy when other work shares the cores)")
    return 0


def _ppo(cfg):
    from genet.abr.training import AbrUseCase
    return AbrUseCase(cfg)


def _a3c(cfg):
    from genet.abr.a3c import AbrA3cUseCase
    return AbrA3cUseCase(cfg)


def _dqn(cfg):
    from genet.abr.dqn import AbrDqnUseCase
    from genet.agents.dqn import DqnConfig
    return AbrDqnUseCase(cfg, DqnConfig(learning_starts=0))  # steady state: every timed update learns


#: The learners --agents can time (agent name -> use case from an AbrTrainConfig).
USE_CASES = {"ppo": _ppo, "a3c": _a3c, "dqn": _dqn}


if __name__ == "__main__":
    raise SystemExit(main())
