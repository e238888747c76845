"""A3C and DQN training speed beside Pensieve-PPO's own A3C and DQN agents (issue 28; target: ours >= 5x
theirs, as our PPO is beside theirs). Prints figures, asserts nothing.

    nice -n 10 .venv/bin/python benchmarks/agents_vs_pensieve_ppo.py [--pensieve-ppo DIR]
        [--reference-python PY] [--steps 30000] [--repeats 3] [--agents a3c,dqn,dqn-matched] [--their-workers 16]
        [--ours-torch-threads 1]

Both sides train from scratch for the same number of environment steps (``--steps`` transitions, i.e. ABR
decisions) on the same real traces (``--traces``, default ../shared/traces/abr/fcc-train) and the same
EnvivioDash3 chunk sizes (ours: the table the package ships; theirs: ../shared/video/envivio, the same numbers),
each with its own default learning settings:

* ours: ``genet train abr --agent a3c|dqn --method udr --real-traces TRACES --real-prob 1 --steps N
  --torch-threads 1`` (16 sessions x 48 decisions per update; a3c: one RMSProp step per update; dqn: one Adam
  step of 128 replayed transitions per 16 new ones), run through ``app.cli.main`` in a fresh process of this
  interpreter; one torch thread as each of their processes has (dqn's default too; ``--ours-torch-threads 0``:
  every core, a3c's default, which loses to one thread when other work holds the second core);
* theirs: Pensieve-PPO's ``Trainer`` (pensieve_ppo/agent/trainer.py, what ``python -m pensieve_ppo train
  --agent-name a3c|dqn`` runs) with its default ``--parallel-workers`` 16, each worker one 47-decision episode
  per epoch, one central update per epoch (a3c: actor and critic RMSProp steps on the epoch's transitions; dqn:
  one Adam step of 1024 replayed transitions once the pool holds 4096), for as many epochs as cover N
  transitions. Their code runs unmodified from the checkout: a small driver (written to a temporary folder,
  never into the repository) imports their modules as their command line does, bounds the epochs, switches
  off their periodic model saving and testing (an evaluation, not training), and counts the transitions each
  epoch delivers to the learner.

Nothing of Pensieve-PPO is copied here: give a checkout of its ``pensieve_ppo`` package (github.com/
yindaheng98/Pensieve-PPO, the PyTorch rewrite of godka/Pensieve-PPO with its agent registry; godka's own
A2C and DQN were TensorFlow 1 scripts, src/a2c.py and src/dqn.py, not in its tree today) as ``--pensieve-ppo``
(default ``$PENSIEVE_PPO_DIR`` or /work/ref/pensieve-ppo). Its imports need torch, numpy, gymnasium,
tensorboard, tqdm, transformers < 5 and peft: ``--reference-python`` names an interpreter that has them
(default ``$PENSIEVE_PPO_PYTHON``, else /work/ref/venv/bin/python when it exists, else this one).

Each round runs, per agent, ours and theirs back to back (which goes first alternates by round), so both see
the same load; ``--repeats`` rounds. Printed per agent, medians over the rounds and the median of the
per-round ratios (ours / theirs):

* ``training``: transitions / wall seconds of the training call (ours: ``main`` of the train command after its
  modules are imported, which includes building the environments, numba's warm-up and writing the run
  directory; theirs: ``Trainer.train``, which includes starting the worker processes and their environments);
* ``steady``: the same after the first fifth of the steps (from update/epoch records: start-up excluded);
* ``cpu``: transitions / CPU seconds (user + sys, the process and all its children) of the training call: the
  figure least moved by other work on the machine;
* ``process``: transitions / wall seconds of the whole fresh process (interpreter start, imports: theirs
  imports transformers through its NetLLM agents).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from startup_speed import SHARED, timed  # noqa: E402  (one definition of the fresh-process timing)

DEFAULT_CHECKOUT = Path(os.environ.get("PENSIEVE_PPO_DIR", "/work/ref/pensieve-ppo"))
DEFAULT_REFERENCE_PYTHON = os.environ.get("PENSIEVE_PPO_PYTHON", "/work/ref/venv/bin/python")
#: The agents compared: our row name -> Pensieve-PPO's registry name.
AGENTS = {"a3c": "a3c", "dqn": "dqn", "dqn-matched": "dqn"}
#: Our options of a row beyond ``--agent``: ``dqn-matched`` is our DQN at their replay ratio (one Adam step of
#: 1,024 replayed transitions per 752 new ones: their 16 workers x 47 decisions per epoch, their batch size), so
#: both learners do the same gradient work per transition; plain ``dqn`` keeps our default (128 per 16: 6x theirs).
OURS_OPTIONS = {"dqn-matched": ["--minibatch", "1024", "--train-every", "752"]}
#: Files of their checkout the benchmark runs (their Trainer and each agent's module).
THEIR_FILES = {"trainer": "pensieve_ppo/agent/trainer.py", "a3c": "pensieve_ppo/quality_ladder/rl/a3c/agent.py",
               "dqn": "pensieve_ppo/quality_ladder/rl/dqn/agent.py"}
#: ``steady`` skips the records before this fraction of the steps (start-up, warm-up).
STEADY_FROM = 0.2
RESULT = "RESULT "

#: Pensieve-PPO's training, bounded: argv[1] is a JSON config (checkout, agent, traces, video_prefix, seed,
#: workers, steps, out, log). Imports the registry before forking the workers, as their command line does;
#: prints RESULT + JSON: transitions, wall and CPU seconds of Trainer.train, one (epoch, transitions, time) per
#: epoch, and the settings their agent ran with.
THEIR_DRIVER = r'''
import json, math, os, resource, sys, time
cfg = json.loads(sys.argv[1])
sys.path.insert(0, cfg["checkout"])
from pensieve_ppo.agent import EpochEndCallback
from pensieve_ppo.defaults import PicklableAgentFactory, import_registry_packages
from pensieve_ppo.quality_ladder.envivio import TOTAL_VIDEO_CHUNKS
from pensieve_ppo.train import NUM_AGENTS, prepare_training
import numpy as np
import_registry_packages()  # as prepare_registry_package does in their CLI, before the workers fork


class CountingAgentFactory(PicklableAgentFactory):
    """Their agent factory; the agent also counts the transitions handed to its learner."""

    def __call__(self):
        agent = super().__call__()
        produce = agent.produce_training_batch
        agent.bench_transitions = 0

        def counted(trajectory, done):
            agent.bench_transitions += len(trajectory)
            return produce(trajectory, done)

        agent.produce_training_batch = counted
        return agent


class EpochLog(EpochEndCallback):
    def __init__(self, path):
        self.path = path

    def __call__(self, epoch, agent, info):
        with open(self.path, "a") as fh:
            fh.write(f"{epoch} {agent.bench_transitions} {time.perf_counter()!r}\n")


def cpu_s():
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


workers = cfg["workers"] or NUM_AGENTS
epochs = math.ceil(cfg["steps"] / (workers * (TOTAL_VIDEO_CHUNKS - 1)))  # one episode per worker per epoch
np.random.seed(cfg["seed"])
trainer = prepare_training(name=cfg["agent"], trace_folder=cfg["traces"], random_seed=cfg["seed"],
                           player_kwargs={"video_size_file_prefix": cfg["video_prefix"]}, output_dir=cfg["out"],
                           parallel_workers=workers, train_epochs=epochs, model_save_interval=epochs + 1,
                           on_epoch_end=EpochLog(cfg["log"]))
f = trainer.agent_factory
trainer.agent_factory = CountingAgentFactory(f.name, f.model_path, f.agent_kwargs)
c0, t0 = cpu_s(), time.perf_counter()
trainer.train()
t1, c1 = time.perf_counter(), cpu_s()
probe = f()  # after the clock: an agent built before the fork would warm up the workers' imports
settings = {k: getattr(probe, k) for k in ("batch_size", "min_pool_size", "tau", "actor_lr", "critic_lr",
                                           "lr_rate", "entropy_weight") if hasattr(probe, k)}
rows = [line.split() for line in open(cfg["log"])]
records = [(int(n), float(t) - t0) for _, n, t in rows]
print("RESULT " + json.dumps({"transitions": records[-1][0], "wall_s": t1 - t0, "cpu_s": c1 - c0,
                              "records": records, "workers": workers, "epochs": epochs, "settings": settings}))
'''


def ours_child(cfg: dict) -> None:
    """Our side, in a fresh process: ``genet train abr`` through ``app.cli.main`` once its modules are imported;
    prints RESULT + JSON like THEIR_DRIVER (records from the run's learning curve: steps, training seconds)."""
    from app.cli import main
    import genet.abr.a3c  # noqa: F401  (imported before the clock starts, as THEIR_DRIVER's modules)
    import genet.abr.dqn  # noqa: F401
    import genet.train_cli  # noqa: F401

    def cpu_s() -> float:
        return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                      resource.getrusage(resource.RUSAGE_CHILDREN)))

    argv = ["train", "abr", "--agent", cfg["agent"].split("-")[0], "--method", "udr", "--steps", str(cfg["steps"]),
            "--real-traces", cfg["traces"], "--real-prob", "1", "--seed", str(cfg["seed"]), "--out", cfg["out"],
            "--no-progress", "--torch-threads", str(cfg["torch_threads"]), *OURS_OPTIONS.get(cfg["agent"], [])]
    c0, t0 = cpu_s(), time.perf_counter()
    status = main(argv)
    t1, c1 = time.perf_counter(), cpu_s()
    if status:
        sys.exit(f"genet {' '.join(argv)} exited {status}")
    with open(Path(cfg["out"]) / "learning_curve.csv", newline="") as fh:
        records = [(int(r["env_steps"]), float(r["wall_s"])) for r in csv.DictReader(fh)]
    print(RESULT + json.dumps({"transitions": records[-1][0], "wall_s": t1 - t0, "cpu_s": c1 - c0,
                               "records": records, "command": "genet " + " ".join(argv)}))


def parse_result(stdout: str, who: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    sys.exit(f"{who}: no result line in its output (last lines: {stdout.strip()[-300:]!r})")


def steady_rate(records: list[list[float]], steps: int) -> float:
    """Transitions per second between the first record at or past STEADY_FROM of the steps and the last."""
    first = next((r for r in records if r[0] >= STEADY_FROM * steps and r is not records[-1]), records[0])
    last = records[-1]
    return (last[0] - first[0]) / (last[1] - first[1]) if last[1] > first[1] else float("nan")


def measure(side: str, cmd: list[str], cwd: Path, steps: int) -> dict:
    """One fresh-process run: its RESULT plus the four rates (transitions per second)."""
    wall, cpu, stdout = timed(cmd, cwd)
    r = parse_result(stdout, side)
    n = r["transitions"]
    r.update(training=n / r["wall_s"], steady=steady_rate(r["records"], n), cpu=n / r["cpu_s"], process=n / wall,
             process_wall_s=wall, process_cpu_s=cpu)
    return r


def check_checkout(checkout: Path, python: str, agents: list[str]) -> list[str]:
    """The agents the checkout has (a one-line message and exit for a checkout or interpreter that cannot run)."""
    if not (checkout / THEIR_FILES["trainer"]).is_file():
        print(f"Pensieve-PPO checkout not found: {checkout / THEIR_FILES['trainer']} is missing; pass "
              f"--pensieve-ppo DIR (a clone of github.com/yindaheng98/Pensieve-PPO, its pensieve_ppo package) and "
              f"--reference-python PY (an interpreter with torch, gymnasium, tensorboard, transformers<5, peft)")
        sys.exit(0)
    have = [a for a in agents if (checkout / THEIR_FILES[AGENTS[a]]).is_file()]
    for a in agents:
        if a not in have:
            print(f"{a}: skipped, the checkout has no {THEIR_FILES[a]}")
    probe = subprocess.run([python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "import pensieve_ppo.quality_ladder", str(checkout)], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"--reference-python {python} cannot import Pensieve-PPO from {checkout}: {last}")
    return have


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pensieve-ppo", type=Path, default=DEFAULT_CHECKOUT,
                    help="checkout of Pensieve-PPO's pensieve_ppo package (default: $PENSIEVE_PPO_DIR or "
                         "/work/ref/pensieve-ppo)")
    ap.add_argument("--reference-python", default=None,
                    help="interpreter that runs their code (default: $PENSIEVE_PPO_PYTHON, else "
                         "/work/ref/venv/bin/python when it exists, else this one)")
    ap.add_argument("--steps", type=int, default=30_000,
                    help="environment steps (transitions) of every training run (count; 30000: 3-7 minutes for "
                         "the default 3 rounds on this 2-core machine with other work beside it)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (count)")
    ap.add_argument("--agents", default="a3c,dqn,dqn-matched",
                    help="rows to compare, comma-separated: a3c, dqn, dqn-matched (our DQN at their replay ratio)")
    ap.add_argument("--their-workers", type=int, default=0,
                    help="Pensieve-PPO's --parallel-workers (count; 0 = their default, 16)")
    ap.add_argument("--ours-torch-threads", type=int, default=1,
                    help="our --torch-threads (count; 1, as each of their processes: their Trainer sets one "
                         "torch thread, and dqn's default; 0 = every core, a3c's default)")
    ap.add_argument("--traces", type=Path, default=SHARED / "traces" / "abr" / "fcc-train",
                    help="trace folder both train on (Pensieve's text format)")
    ap.add_argument("--video-prefix", default=str(SHARED / "video" / "envivio" / "video_size_"),
                    help="their EnvivioDash3 chunk-size files (prefix of video_size_0..5)")
    ap.add_argument("--seed", type=int, default=0, help="seed of round 0; round k uses seed + k")
    ap.add_argument("--ours-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ours_child is not None:
        ours_child(json.loads(args.ours_child))
        return 0

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = [a for a in agents if a not in AGENTS]
    if unknown or not agents:
        ap.error(f"--agents: unknown {unknown[0] if unknown else ''!r}; choose from {', '.join(AGENTS)}")
    if args.steps < 1 or args.repeats < 1:
        ap.error("--steps and --repeats must be >= 1")
    if not args.traces.is_dir():
        ap.error(f"--traces: {args.traces} is not a directory")
    python = args.reference_python or (DEFAULT_REFERENCE_PYTHON if Path(DEFAULT_REFERENCE_PYTHON).exists()
                                       else sys.executable)
    agents = check_checkout(args.pensieve_ppo, python, agents)
    if not agents:
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="agents-vs-pensieve-ppo-"))
    driver = tmp / "pensieve_ppo_driver.py"
    driver.write_text(THEIR_DRIVER)
    print(f"host: {platform.node()} ({os.cpu_count()} cores), nice {os.nice(0)}, python {platform.python_version()}; "
          f"theirs: {args.pensieve_ppo} with {python}")
    print(f"traces: {args.traces} ({len(os.listdir(args.traces))} files); {args.steps} steps per run, "
          f"{args.repeats} rounds")
    print(f"{'round':>5} {'agent':>11} {'side':>6} {'steps':>6} {'training tr/s':>13} {'steady tr/s':>11} "
          f"{'cpu tr/s':>9} {'process tr/s':>12} {'train wall s':>12} {'process s':>9}")
    runs: dict[tuple[str, str], list[dict]] = {}
    try:
        for rnd in range(args.repeats):
            seed = args.seed + rnd
            for agent in agents:
                out = tmp / f"r{rnd}-{agent}"
                ours_cfg = {"agent": agent, "steps": args.steps, "traces": str(args.traces), "seed": seed,
                            "out": str(out / "ours"), "torch_threads": args.ours_torch_threads}
                their_cfg = {"checkout": str(args.pensieve_ppo.resolve()), "agent": AGENTS[agent],
                             "traces": str(args.traces), "video_prefix": args.video_prefix, "seed": seed,
                             "workers": args.their_workers, "steps": args.steps, "out": str(out / "theirs"),
                             "log": str(out / "theirs-epochs.txt")}
                out.mkdir(parents=True)
                sides = [("ours", [sys.executable, str(Path(__file__).resolve()), "--ours-child",
                                   json.dumps(ours_cfg)], REPO),
                         ("theirs", [python, str(driver), json.dumps(their_cfg)], out)]
                for side, cmd, cwd in (sides if rnd % 2 == 0 else sides[::-1]):
                    r = measure(side, cmd, cwd, args.steps)
                    runs.setdefault((agent, side), []).append(r)
                    print(f"{rnd:>5} {agent:>11} {side:>6} {r['transitions']:>6} {r['training']:>13.0f} "
                          f"{r['steady']:>11.0f} {r['cpu']:>9.0f} {r['process']:>12.0f} {r['wall_s']:>12.1f} "
                          f"{r['process_wall_s']:>9.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nmedians over {args.repeats} interleaved rounds (transitions/s; ratio: median of the rounds' "
          f"ours/theirs):")
    print(f"{'agent':>11} {'measure':>9} {'ours':>8} {'theirs':>8} {'ratio':>7}  per round")
    for agent in agents:
        ours, theirs = runs[(agent, "ours")], runs[(agent, "theirs")]
        for what in ("training", "steady", "cpu", "process"):
            ratios = [a[what] / b[what] for a, b in zip(ours, theirs)]
            print(f"{agent:>11} {what:>9} {statistics.median(r[what] for r in ours):>8.0f} "
                  f"{statistics.median(r[what] for r in theirs):>8.0f} {statistics.median(ratios):>6.2f}x  "
                  f"{', '.join(f'{x:.2f}' for x in ratios)}")
        t = theirs[0]
        print(f"      ours: {ours[0]['command']}")
        print(f"      theirs: Trainer of {args.pensieve_ppo}, {t['workers']} workers x {t['epochs']} epochs, "
              f"{AGENTS[agent]} agent settings {t['settings']}")
        if agent.startswith("dqn"):  # the learners' work per transition may differ: say by how much
            from genet.agents.dqn import DqnConfig
            d = DqnConfig()
            opts = OURS_OPTIONS.get(agent, [])
            mb = int(opts[opts.index("--minibatch") + 1]) if "--minibatch" in opts else d.minibatch
            every = int(opts[opts.index("--train-every") + 1]) if "--train-every" in opts else d.train_every
            print(f"      replayed samples per collected transition once learning: ours "
                  f"{mb / every:.2f} (minibatch {mb} every {every}, from at most "
                  f"{d.learning_starts} transitions on), theirs "
                  f"{t['settings']['batch_size'] * t['epochs'] / t['transitions']:.2f} "
                  f"(batch {t['settings']['batch_size']} per epoch of {t['transitions'] / t['epochs']:.0f}, "
                  f"from a pool of {t['settings']['min_pool_size']} on)")
    print("target (issue 28): ours >= 5x theirs for each agent ('training', equal steps)")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(figures are noisy when other work shares the cores; 'cpu' is the steadiest)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
