"""ABR simulator speed figures (printed, never asserted). Run: .venv/bin/python benchmarks/abr_speed.py

Targets from issue 3 (reference measured by the Genet code on this machine kind):
batched core >= 2,000,000 chunk-steps/s on one core with a trivial policy (Genet's core ~190k/s with BBA);
RobustMPC >= 30,000 decisions/s on one core when batched (Genet's numba RobustMPC ~5.7k/s);
`genet eval abr --policy mpc` over the 150 fcc-val traces in < 2 s after start-up.
Needs ../shared (video sizes, fcc-val); uses synthetic traces for the core figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENET_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))

from genet.abr.baselines import BBA  # noqa: E402
from genet.abr.core import BatchedAbrSim  # noqa: E402
from genet.abr.evaluate import evaluate  # noqa: E402
from genet.abr.mpc import RobustMPC  # noqa: E402
from genet.abr.observations import raw_observation  # noqa: E402
from genet.abr.params import GENET_COMPAT, PENSIEVE  # noqa: E402
from genet.abr.video import SessionVideos, load_video  # noqa: E402
from traces import load_traces  # noqa: E402
from traces.generators import generate_set  # noqa: E402


def core_rate(video, traces, n_envs: int, steps: int, policy: str) -> float:
    sim = BatchedAbrSim(traces, video, PENSIEVE.replace(delay_noise=True, random_start=True), n_envs=n_envs,
                        seed=0, autoreset=True, engine="numba")  # (auto would step the first 50k interpreted)
    sim.reset()
    bba = BBA()
    q = np.ones(n_envs, dtype=np.int64)
    sim.step(q)  # compile
    t0 = time.perf_counter()
    for _ in range(steps):
        r = sim.step(q)
        if policy == "bba":
            q = bba.act(raw_observation(r))
    dt = time.perf_counter() - t0
    return n_envs * steps / dt


def mpc_rate(video, traces, n_envs: int, steps: int, planner: str) -> float:
    sim = BatchedAbrSim(traces, video, PENSIEVE, n_envs=n_envs, seed=0, autoreset=False, engine="numba")
    sim.reset()
    mpc = RobustMPC(planner=planner)
    mpc.bind(SessionVideos(sim.bitrates_kbps, sim.sizes, sim.n_chunks, sim.chunk_ms / 1000.0))
    mpc.reset()
    q = np.ones(n_envs, dtype=np.int64)
    obs = raw_observation(sim.step(q))
    mpc.act(obs)  # compile
    decisions, spent = 0, 0.0
    for _ in range(steps):
        if sim.done.all():
            break
        r = sim.step(q)
        obs = raw_observation(r)
        t0 = time.perf_counter()
        q = mpc.act(obs, r.active)
        spent += time.perf_counter() - t0
        decisions += int(r.active.sum())
    return decisions / spent


def main() -> None:
    video = load_video(SHARED / "video" / "envivio")
    synth = generate_set("abr", "rl2", n=64, seed=0)
    print("ABR speed (one core: NUMBA_NUM_THREADS=1)")
    for n in (1, 64, 1024, 4096):
        steps = max(20, 400_000 // n)
        print(f"  core, constant quality, {n:5d} envs: {core_rate(video, synth, n, steps, 'const'):>12,.0f} "
              f"chunk-steps/s")
    print(f"  core + BBA,             1024 envs: {core_rate(video, synth, 1024, 300, 'bba'):>12,.0f} chunk-steps/s")
    for n in (1, 150, 1024):
        print(f"  RobustMPC (numba), {n:5d} envs:     {mpc_rate(video, synth, n, 47, 'numba'):>12,.0f} decisions/s")
    print(f"  RobustMPC (numpy),   150 envs:     {mpc_rate(video, synth, 150, 10, 'numpy'):>12,.0f} decisions/s")
    import gymnasium as gym

    from genet.abr.env import AbrEnv, AbrVectorEnv, register_envs
    register_envs()  # gymnasium.make needs the id registered (nothing registers on import)
    env = AbrEnv(traces=synth, video=video)
    env.reset(seed=0)
    for i in range(200):  # untimed: the first steps load (or compile) the one-session fast path
        if env.step(i % 6)[2]:
            env.reset()
    env.reset(seed=0)
    t0, steps = time.perf_counter(), 0
    while steps < 20000:
        _, _, term, _, _ = env.step(steps % 6)
        steps += 1
        if term:
            env.reset()
    print(f"  AbrEnv (Gymnasium, one session):   {steps / (time.perf_counter() - t0):>12,.0f} steps/s "
          f"(issue 17 target: >= Genet's single env, 146k on this machine kind; resets included)")
    env = gym.make("genet/Abr-v0", traces=synth, video=video)
    env.reset(seed=0)
    t0, steps = time.perf_counter(), 0
    while steps < 20000:
        _, _, term, _, _ = env.step(steps % 6)
        steps += 1
        if term:
            env.reset()
    print(f"  gym.make('genet/Abr-v0') (wrappers): {steps / (time.perf_counter() - t0):>10,.0f} steps/s")
    venv = AbrVectorEnv(256, traces=synth, video=video, delay_noise=False)
    venv.reset(seed=0)
    a = np.ones(256, dtype=np.int64)
    t0 = time.perf_counter()
    for _ in range(200):
        venv.step(a)
    print(f"  AbrVectorEnv, 256 envs (6x8 obs):  {256 * 200 / (time.perf_counter() - t0):>12,.0f} steps/s")
    fcc = SHARED / "traces" / "abr" / "fcc-val"
    traces = load_traces(fcc)
    evaluate("mpc", traces[:2], video, GENET_COMPAT)
    t0 = time.perf_counter()
    evaluate("mpc", traces, video, GENET_COMPAT)
    print(f"  evaluate('mpc') over fcc-val ({len(traces)} traces), in process: {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "app.cli", "eval", "abr", "--policy", "mpc", "--traces", str(fcc),
                    "--video", str(SHARED / "video" / "envivio"), "--out", "/tmp/genet-bench-eval", "--no-progress"],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    print(f"  `genet eval abr --policy mpc` over fcc-val, whole command incl. start-up: "
          f"{time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
