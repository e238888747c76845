"""LB simulator speed beside Genet's own LB environment (figures printed, never asserted).

Run: .venv/bin/python benchmarks/lb_speed.py [--episodes N] [--genet-mirror DIR]

Issue 27's target: >= 10x Genet's LB environment (steps/s, whole process). Genet's code
(``genet-lb-fig-upload/``) is read at benchmark time from a fetched mirror of github.com/GenetProject/Genet
(``--genet-mirror``, default ``$GENET_MIRROR`` or /work/.mirror/GenetProject+Genet/repo, a git directory); it is
extracted to a temporary folder, never into the repository. Without it the Genet side is skipped with a message.

Figures, on Genet's default setting (3 workers at 0.5, 1, 2; 2000 jobs; shuffle 0.5), a decision = a step:

1. Genet's ``LoadBalanceEnvironment`` + its ``LeastWorkAgent`` (the loop of its ``rl_test.py``), in this process;
2. ours: ``genet/LoadBalance-v0`` (Gymnasium, one episode at a time) with least-work-left read off the state;
3. ours: the batched core (:func:`genet.lb.simulator.simulate`, 64 episodes at once) with ``least_work``;
4. whole process: a fresh Python running Genet's test loop over N episodes vs ``genet eval lb --policy least_work
   -n N`` (start-up, imports, numba's cached kernels, exit; neither writes a file), ``--repeats`` runs of each,
   alternating: the median wall-clock and CPU seconds, steps/s, and the median of the pairs' ratios.

Also checks that Genet's environment and ours give the same return on the same jobs with the shuffle off (Genet's
shuffle draws from the unseeded ``random``), and Park's ``LoadBalanceEnv`` (fetched the same way, default
/work/.mirror/park-project+park/repo or ``$PARK_MIRROR``) and our ``PARK`` setting on the same seeds.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_MIRROR = Path(os.environ.get("GENET_MIRROR", "/work/.mirror/GenetProject+Genet/repo"))
GENET_FILES = ("param.py", "utils.py", "environments.py", "load_balance/__init__.py", "load_balance/env.py",
               "load_balance/job.py", "load_balance/job_generator.py", "load_balance/worker.py",
               "load_balance/timeline.py", "load_balance/wall_time.py", "load_balance/heuristic_agents.py")
_GENET_MODULES = ("param", "utils", "environments", "load_balance")


def extract_genet_lb(mirror: Path, dest: Path) -> Path:
    """Copy Genet's LB environment files out of the mirror's git directory into ``dest``; returns ``dest``."""
    for rel in GENET_FILES:
        text = subprocess.run(["git", "--git-dir", str(mirror), "show", f"HEAD:genet-lb-fig-upload/{rel}"],
                              check=True, capture_output=True).stdout
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(text)
    return dest


def _forget_genet_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in _GENET_MODULES:
            del sys.modules[name]


def load_genet_lb(mirror: Path = DEFAULT_MIRROR, *, queue_shuffle_prob: float = 0.5,
                  num_stream_jobs: int = 2000) -> SimpleNamespace:
    """Genet's ``environments`` and ``LeastWorkAgent``, imported from a temporary copy (its ``param.py`` parses
    its options from ``sys.argv`` at import)."""
    tmp = Path(tempfile.mkdtemp(prefix="genet-lb-"))
    extract_genet_lb(Path(mirror), tmp)
    argv = sys.argv
    _forget_genet_modules()
    sys.path.insert(0, str(tmp))
    sys.argv = ["genet-lb", "--queue_shuffle_prob", str(queue_shuffle_prob),
                "--num_stream_jobs", str(num_stream_jobs)]
    try:
        environments = importlib.import_module("environments")
        agents = importlib.import_module("load_balance.heuristic_agents")
    finally:
        sys.argv = argv
        sys.path.remove(str(tmp))
        _forget_genet_modules()  # generic names (utils, param): keep them out of everyone else's imports
    return SimpleNamespace(environments=environments, LeastWorkAgent=agents.LeastWorkAgent, path=tmp)


def genet_episode(genet: SimpleNamespace, seed: int) -> tuple[float, int]:
    """(return, decisions) of one episode of Genet's test loop (``rl_test.py`` ``run_test``) with least-work."""
    env = genet.environments.make("load_balance")
    agent = genet.LeastWorkAgent()
    env.set_random_seed(seed)
    env.reset()
    state, done, total, steps = env.observe(), False, 0.0, 0
    while not done:
        state, reward, done = env.step(agent.get_action(state))
        total += reward
        steps += 1
    return total, steps


PARK_MIRROR = Path(os.environ.get("PARK_MIRROR", "/work/.mirror/park-project+park/repo"))
#: Park's files its LB environment needs; park/__init__.py, park/envs/__init__.py and park/spaces/__init__.py are
#: replaced by stubs (the real ones import every environment and space, with their dependencies).
PARK_FILES = ("park/core.py", "park/logger.py", "park/param.py", "park/utils/__init__.py", "park/utils/seeding.py",
              "park/spaces/box.py", "park/spaces/discrete.py", "park/spaces/rng.py",
              "park/envs/load_balance/__init__.py", "park/envs/load_balance/job.py",
              "park/envs/load_balance/job_generator.py", "park/envs/load_balance/load_balance.py",
              "park/envs/load_balance/server.py", "park/envs/load_balance/timeline.py",
              "park/envs/load_balance/wall_time.py")
PARK_STUBS = {"park/__init__.py": "", "park/envs/__init__.py": "",
              "park/spaces/__init__.py": "from park.spaces.box import Box\nfrom park.spaces.discrete import Discrete\n"}


def load_park_lb(mirror: Path = PARK_MIRROR):
    """Park's ``LoadBalanceEnv`` class, imported from a temporary copy of its files (with stub package
    ``__init__`` files)."""
    tmp = Path(tempfile.mkdtemp(prefix="park-lb-"))
    for rel in PARK_FILES:
        text = subprocess.run(["git", "--git-dir", str(mirror), "show", f"HEAD:{rel}"], check=True,
                              capture_output=True).stdout
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(text)
    for rel, text in PARK_STUBS.items():
        (tmp / rel).write_text(text)
    argv = sys.argv
    for name in [m for m in sys.modules if m == "park" or m.startswith("park.")]:
        del sys.modules[name]
    sys.path.insert(0, str(tmp))
    sys.argv = ["park-lb"]
    try:
        module = importlib.import_module("park.envs.load_balance.load_balance")
    finally:
        sys.argv = argv
        sys.path.remove(str(tmp))
        for name in [m for m in sys.modules if m == "park" or m.startswith("park.")]:
            del sys.modules[name]
    import logging
    logging.getLogger().setLevel(logging.ERROR)  # Park warns at every observation above its cap
    return module.LoadBalanceEnv


def park_episode(env_class, seed: int) -> tuple[float, int]:
    """(return, decisions) of one Park episode with the least-loaded server read off its observation."""
    env = env_class()
    env.seed(seed)
    obs = env.reset()
    done, total, steps = False, 0.0, 0
    while not done:
        obs, reward, done, _ = env.step(int(np.argmin(obs[:-1])))
        total += reward
        steps += 1
    return total, steps


GENET_PROCESS = """
import sys, time
sys.path.insert(0, {path!r})
sys.argv = ["genet-lb"]
import environments
from load_balance.heuristic_agents import LeastWorkAgent
env, agent, steps = environments.make("load_balance"), LeastWorkAgent(), 0
for ep in range({n}):
    env.set_random_seed(100000000 + ep)
    env.reset()
    state, done = env.observe(), False
    while not done:
        state, reward, done = env.step(agent.get_action(state))
        steps += 1
print(steps)
"""


def ours_gym(episodes: int) -> tuple[float, int]:
    from genet.lb.env import LoadBalanceEnv
    env = LoadBalanceEnv(layout="lb.state-3w")
    steps = 0
    t0 = time.perf_counter()
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        while True:
            obs, _, term, trunc, _ = env.step(int(np.argmin(obs[:3])))
            steps += 1
            if term or trunc:
                break
    return steps / (time.perf_counter() - t0), steps


def ours_batched(episodes: int) -> tuple[float, int]:
    from genet.lb.registry import make_policy
    from genet.lb.simulator import GENET, simulate
    ws = [GENET.workload_for(s) for s in range(episodes)]
    t0 = time.perf_counter()
    res = simulate(make_policy("least_work"), ws, GENET, seeds=0)
    steps = sum(r.decisions for r in res)
    return steps / (time.perf_counter() - t0), steps


def whole_process(cmd: list[str], **kwargs) -> tuple[float, float, str]:
    """(wall-clock s, CPU s = user + system of the child, its stdout) of one fresh process running ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def _median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=10, help="episodes of 2000 jobs per figure (count)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="whole-process runs of each command, alternating; the medians are printed (count)")
    ap.add_argument("--genet-mirror", type=Path, default=DEFAULT_MIRROR, help="git directory of Genet's repository")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")
    n = args.episodes
    from genet.lb.registry import make_policy
    from genet.lb.simulator import GENET, simulate
    simulate(make_policy("least_work"), [GENET.workload_for(0).head(50)], GENET)  # compile (cached) first

    genet = None
    if args.genet_mirror.exists():
        genet = load_genet_lb(args.genet_mirror)
    else:
        print(f"Genet's repository not found at {args.genet_mirror}: its side is skipped "
              "(fetch github:GenetProject/Genet, or pass --genet-mirror)")

    rows = []
    if genet is not None:
        t0 = time.perf_counter()
        steps = sum(genet_episode(genet, 100000000 + ep)[1] for ep in range(n))
        g_rate = steps / (time.perf_counter() - t0)
        rows.append(("Genet LoadBalanceEnvironment + LeastWorkAgent", g_rate))
    gym_rate, _ = ours_gym(n)
    rows.append(("ours: genet/LoadBalance-v0, least-work (one episode at a time)", gym_rate))
    batch_rate, _ = ours_batched(max(n, 64))
    rows.append(("ours: batched core, least_work, 64 episodes at once", batch_rate))
    base = rows[0][1] if genet is not None else None
    print(f"{'in-process steps/s (one core)':<66} {'steps/s':>12} {'x Genet':>8}")
    for label, rate in rows:
        ratio = f"{rate / base:8.1f}" if base else "       -"
        print(f"{label:<66} {rate:>12,.0f} {ratio}")

    # whole process: start-up included; the two commands alternate (a drift of the machine's speed hits both)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    genet_cmd = ([sys.executable, "-c", GENET_PROCESS.format(path=str(genet.path), n=n)]
                 if genet is not None else None)
    ours_cmd = [sys.executable, "-m", "app.cli", "eval", "lb", "--policy", "least_work", "-n", str(n), "--no-progress"]
    g_runs, o_runs, g_steps = [], [], 0
    for _ in range(args.repeats):
        if genet_cmd is not None:
            wall, cpu, out = whole_process(genet_cmd, env=env)
            g_runs.append((wall, cpu))
            g_steps = int(out.split()[-1])
        o_runs.append(whole_process(ours_cmd, cwd=REPO, env=env)[:2])
    o_steps = n * GENET.workload.num_jobs
    o_wall, o_cpu = _median([w for w, _ in o_runs]), _median([c for _, c in o_runs])
    print(f"\nwhole process, {n} episodes of Genet's setting with least-work-left "
          f"(median of {args.repeats} runs each, alternating; CPU = user + system s):")
    if genet_cmd is not None:
        g_wall, g_cpu = _median([w for w, _ in g_runs]), _median([c for _, c in g_runs])
        print(f"  Genet's test loop:                 {g_wall:7.2f} s wall {g_cpu:7.2f} s CPU "
              f"{g_steps / g_wall:>12,.0f} steps/s")
    ratios = ""
    if genet_cmd is not None:  # the median of the pairs' ratios
        ratios = (f"  ({_median([g[0] / o[0] for g, o in zip(g_runs, o_runs)]):.1f}x wall, "
                  f"{_median([g[1] / o[1] for g, o in zip(g_runs, o_runs)]):.1f}x CPU)")
    print(f"  genet eval lb --policy least_work: {o_wall:7.2f} s wall {o_cpu:7.2f} s CPU "
          f"{o_steps / o_wall:>12,.0f} steps/s{ratios}")

    if genet is not None:  # same jobs, shuffle off: the same return
        same = load_genet_lb(args.genet_mirror, queue_shuffle_prob=0.0)
        from traces.workload import generate_workload
        setting = replace(GENET, queue_shuffle_prob=0.0)
        agree = 0
        for ep in range(3):
            seed = 100000000 + ep
            theirs = genet_episode(same, seed)
            ours = simulate(make_policy("least_work"), [generate_workload(setting.workload, seed, legacy_seed=True)],
                            setting, seeds=[seed])[0]
            agree += ours.reward == theirs[0]
        print(f"\nsame jobs, shuffle off: equal returns on {agree}/3 of Genet's test seeds")
    if PARK_MIRROR.exists():
        from genet.lb.observations import policy_spec
        from genet.lb.simulator import PARK
        from genet.policy import PolicyBase
        from traces.workload import generate_workload

        class LeastLoad(PolicyBase):
            name, spec = "least_load", policy_spec("lb.park-10w")

            def act(self, observations, active=None):
                return np.argmin(observations[:, :-1], axis=1)
        park_env = load_park_lb(PARK_MIRROR)
        agree = 0
        for seed in range(3):
            ours = simulate(LeastLoad(), [generate_workload(PARK.workload, seed, legacy_seed=True)], PARK,
                            seeds=[seed])[0]
            agree += (ours.reward, ours.decisions) == park_episode(park_env, seed)
        print(f"Park's LoadBalanceEnv, same jobs: equal returns on {agree}/3 seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
