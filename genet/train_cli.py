"""``genet train {abr,cc}`` and ``genet export``: train RL policies and export them to ONNX.

Methods (paper §4-§5, genet-simulators.md §6):

* ``udr``: PPO on uniform domain randomisation over the RL1/RL2/RL3 range,
  optionally mixing real traces with probability ``--real-prob`` (§5.2);
* ``genet``: the Genet curriculum (:func:`genet.curriculum.loop.run_curriculum`):
  a warm-up phase on UDR, then ``--rounds`` rounds of BO search of the
  gap-to-baseline (``--ensemble``: max gap over several baselines) ->
  promotion (w = 0.3) -> training;
* ``cl1``: hand-picked difficulty: ``--rounds`` + 1 stages of training whose
  bandwidth change interval range widens from the calmest values (longest
  holds) to the whole range, i.e. increasingly frequent bandwidth changes;
* ``cl2``: curriculum on where the baseline performs badly (objective optimum -
  baseline); ``cl3``: curriculum on the gap to the optimum (optimum - RL). LB has
  no computable optimum: its stand-in is the no-wait bound, an upper bound on
  every policy's return (:func:`genet.lb.simulator.no_wait_return`).

``--steps`` is the total number of environment steps of the run; the
curriculum methods split it evenly over the warm-up and the rounds.

Agents (``--agent``, :data:`genet.agents.registry.AGENTS`): ``ppo`` (the
default; every method), for ABR and CC ``a3c`` (synchronous, Pensieve's
settings; every method; CC: Aurora's network), for ABR ``dqn`` (Double DQN with a replay buffer and a target
network, ε-greedy; every method; the exported policy is greedy, argmax Q;
``--lr`` and ``--minibatch`` are its learner's) and the imitation agents ``bc`` (behaviour
cloning on a teacher's rollouts) and ``dagger`` (student rollouts labelled by
the teacher), which learn from ``--teacher`` with ``--method udr`` (ABR: ``bba``,
``mpc`` or ``optimal``, the offline optimum that sees the future; CC: the
simulator's ``bbr`` or ``cubic``, run shadow-wise on the student's packets,
genet/cc/teacher.py); their default ``--steps`` is 300000 (a few minutes here).
``--init-from`` starts PPO from another run's network (a PPO run's or a
bc/dagger run's: PPO fine-tunes the imitated policy). ``dt`` (ABR) is
offline RL: a Decision Transformer trained on the experience pool(s) of
``--pool`` (``genet pool abr`` writes them) and conditioned at run time on
``--target-return`` (genet/abr/dt.py); no environment is stepped.

Run directory (``--out``, default ``runs/<use_case>-<method>-<range>-s<seed>``):

* ``run.json``: use case, method, options, training settings, command, git
  commit, written at the start (a ``--resume`` checks the use case against it);
* ``run-metadata.json``: the record every genet run writes (:mod:`foundation.runmeta`: command, commit,
  seed, host, versions, UTC start/finish; a resume keeps the earlier records in ``previous``);
* ``learning_curve.csv`` (one row per PPO update) and ``learning_curve.png``;
* udr/cl1: ``checkpoints/latest.pt`` every ``--checkpoint-every`` updates
  and ``checkpoints/step_<env_steps>.pt`` copies; genet/cl2/cl3:
  ``model-round<r>``, ``state.json``, ``rounds.csv`` after every phase and
  ``rounds.png`` (gap per BO trial, chosen config per round);
* ``model.pt``: the final model. ``genet export RUN_DIR -o policy.onnx``
  exports it (or the latest checkpoint of an unfinished run).

Use cases plug in through :data:`TRAIN_USE_CASES`: a module providing
``build_use_case(args, real_traces, on_update, space)``, ``train_config_dict(use_case)``
and ``export_policy(use_case, model, path, metadata)``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.commands import Command
from foundation.errors import BadInputError

METHODS = ("udr", "genet", "cl1", "cl2", "cl3")
RANGES = ("rl1", "rl2", "rl3")
OBJECTIVE_OF = {"genet": "gap_to_baseline", "cl2": "baseline_to_optimum", "cl3": "gap_to_optimum"}
RUN_FILE = "run.json"
#: Default --checkpoint-every per use case: about every 70-300 k transitions (an Aurora update is 7200
#: transitions, an ABR update 768-1536 and takes ~0.1 s, so checkpointing it every 10 updates would cost
#: more than the training).
CHECKPOINT_EVERY = {"cc": 10, "abr": 200, "lb": 20}
#: PPO option defaults shown by `genet train <use case> --help` (a use case not listed gets None = its own).
PPO_DEFAULTS = {"cc": {"n_envs": 2, "steps_per_update": 7200, "epochs": 12, "minibatch": 600, "lr": 1e-3},
                "lb": {"n_envs": 16, "steps_per_update": 4096, "epochs": 4, "minibatch": 512, "lr": 1e-3}}


@dataclass(frozen=True)
class TrainEntry:
    """A use case ``genet train`` knows.

    name: the use-case name ("cc")
    module: module with build_use_case / train_config_dict / export_policy
    baselines: baseline names of the gap objective (first = default)
    missing: message when the module is not there yet
    """

    name: str
    module: str
    baselines: tuple[str, ...]
    missing: str = ""
    #: why a method cannot train this use case (method -> reason); the others can
    unavailable: tuple[tuple[str, str], ...] = ()
    #: whether a trained policy file (``PATH.onnx``) can be a baseline of the gap objective (ABR: e.g. the best
    #: UDR policy beside RobustMPC, issue 30; its use case's ``test`` runs an ONNX path like a baseline name)
    policy_baselines: bool = False


TRAIN_USE_CASES = {
    "cc": TrainEntry("cc", "genet.cc.training", ("bbr", "cubic")),
    "abr": TrainEntry("abr", "genet.abr.training", ("mpc", "bba"), policy_baselines=True,
                      missing="ABR training is not available yet: genet/abr/training.py (the ABR use case of the "
                              "curriculum) has not been written; `genet train cc` works"),
    # LB's optimum (cl2, cl3) is a stand-in: the no-wait bound (genet/lb/simulator.py no_wait_return)
    "lb": TrainEntry("lb", "genet.lb.training", ("least_work", "sed", "jsq", "power_of_two", "round_robin", "random")),
}


def use_case_module(name: str):
    import importlib
    if name not in TRAIN_USE_CASES:
        raise BadInputError(f"unknown use case {name!r}; choose one of {', '.join(TRAIN_USE_CASES)}")
    entry = TRAIN_USE_CASES[name]
    try:
        return importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name and entry.module.startswith(exc.name):
            raise BadInputError(entry.missing or f"training for {name!r} is not available ({entry.module} missing)") \
                from None
        raise


# ------------------------------------------------------------------ parser
def _train_arguments(entry: TrainEntry):
    """The arguments of ``genet train <entry.name>``."""
    def add(p: argparse.ArgumentParser) -> None:
        _add_train_options(p, entry)
        p.set_defaults(use_case=entry.name)
    return add


def _export_arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `genet train`")
    e.add_argument("-o", "--output", metavar="FILE", required=True, help="ONNX file to write (e.g. policy.onnx)")
    e.add_argument("--checkpoint", metavar="FILE", default=None,
                   help="export this checkpoint of the run (e.g. RUN_DIR/checkpoints/step_76800.pt or "
                        "RUN_DIR/model-round2) instead of its final model")


def _add_train_options(p: argparse.ArgumentParser, entry: TrainEntry) -> None:
    p.add_argument("--method", default="udr", help=f"training method: {', '.join(METHODS)}")
    p.add_argument("--range", dest="range_name", default="rl3",
                   help=f"config-space range of the UDR (initial) distribution: {', '.join(RANGES)}")
    p.add_argument("--baseline", default=entry.baselines[0],
                   help=f"baseline(s) of the gap objective, comma-separated: {', '.join(entry.baselines)}"
                        + (" or a trained policy PATH.onnx (e.g. the best UDR model beside mpc, with --ensemble)"
                           if entry.policy_baselines else ""))
    p.add_argument("--ensemble", action="store_true",
                   help="gap = max over the baselines (needs two or more; paper §4.2 footnote)")
    p.add_argument("--steps", type=int, default=None,
                   help="total environment steps of the run (transitions; default: 720000 for ppo, a3c and dqn, "
                        "Aurora's UDR budget; 300000 for bc and dagger, about a minute or two here)")
    p.add_argument("--rounds", type=int, default=9,
                   help="curriculum rounds (genet, cl2, cl3) or extra difficulty stages (cl1) (count; paper: 9)")
    p.add_argument("--trials", type=int, default=15, help="BO trials per round (count)")
    p.add_argument("--random-trials", type=int, default=10, help="random BO trials before the GP-guided ones (count)")
    p.add_argument("--trial-batch", type=int, default=1,
                   help="GP-guided BO trials asked at once and evaluated together, on the rollout workers when "
                        "there are some (count; 1: the paper's one-at-a-time search, trial for trial)")
    p.add_argument("--envs-per-trial", type=int, default=10, help="k environments per BO trial (count)")
    p.add_argument("--promote-weight", type=float, default=0.3,
                   help="weight 0-1 of each promoted config in the training distribution (others x (1 - w))")
    p.add_argument("--promotion-distance", type=float, default=0.0,
                   help="0 promotes each round's best BO trial (Genet); d > 0 promotes the best trial farther "
                        "than d from every config promoted before (max over dimensions of the difference in "
                        "the BO's 0-1 coordinates), none if no trial is: a corner training cannot fix is then "
                        "promoted once, not every round")
    p.add_argument("--min-promotion-gap", type=float, default=None, metavar="G",
                   help="promote only a BO trial whose gap is above G (0: only where the baseline beats the "
                        "policy), nothing in a round where none is (default: Genet, the best trial whatever its "
                        "gap)")
    p.add_argument("--updates-per-round", type=int, default=None,
                   help="PPO updates per curriculum phase (count; default: --steps split evenly over the "
                        "warm-up and the rounds)")
    p.add_argument("--init-from", metavar="MODEL", default=None,
                   help="start from this trained model (a model.pt or checkpoint of the same use case, or a run "
                        "directory: its model.pt): the curriculum methods continue a PPO model (e.g. a UDR-RL3 "
                        "run's) instead of a warm-up phase (the paper's schedule); it also takes a bc/dagger (or "
                        "a3c) run's model, and --method udr/cl1 start PPO from the model's network (fine-tuning an imitated policy)")
    p.add_argument("--space", metavar="FILE", default=None,
                   help=f"config-space JSON file with the same dimensions as traces/spaces/{entry.name}.json but "
                        f"your own ranges (default: that file)")
    p.add_argument("--real-traces", metavar="DIR", default=None,
                   help="directory of real traces mixed into training (paper §5.2); several: comma-separated")
    p.add_argument("--real-prob", type=float, default=0.3,
                   help="probability 0-1 of training on a real trace when --real-traces is given")
    p.add_argument("--seed", type=int, default=0, help="master seed (integer)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="run directory (default runs/<use case>-<method>-<range>-s<seed>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (with the run's own training settings; "
                        "--steps is the new total, counted in the run's transitions per update)")
    p.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY.get(entry.name, 10),
                   help="PPO updates between checkpoints (udr, cl1; the curriculum checkpoints every phase); "
                        "the learning-curve PNG is redrawn at a checkpoint at most once a minute")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ppo = PPO_DEFAULTS.get(entry.name)
    g = p.add_argument_group("PPO settings (defaults: Aurora, genet-simulators.md §8.3)" if ppo
                             else "PPO settings (not given: the use case's own defaults)")

    def dflt(key):
        return ppo[key] if ppo else None

    g.add_argument("--n-envs", type=int, default=dflt("n_envs"), help="environments per rollout (count)")
    g.add_argument("--steps-per-update", type=int, default=dflt("steps_per_update"),
                   help="transitions per PPO update, all environments together (count)")
    g.add_argument("--epochs", type=int, default=dflt("epochs"), help="PPO passes over each batch (count)")
    g.add_argument("--minibatch", type=int, default=dflt("minibatch"), help="transitions per gradient step (count)")
    g.add_argument("--lr", type=float, default=dflt("lr"), help="Adam learning rate (per step)")
    g.add_argument("--torch-threads", type=int, default=None,
                   help="torch intra-op threads (count; 0 = every core; not given: ABR ppo every core, ABR bc and "
                        "dagger 1, CC 1); "
                        "use 1 when several runs share the machine")
    g.add_argument("--rollout-workers", type=int, default=1,
                   help="worker processes that step slices of the environments and share the PPO update "
                        "(count; 1 = in this process; 0 = every core, at most --n-envs); the same seed and "
                        "count give the same run; a resume keeps the run's count")
    g.add_argument("--ray-address", metavar="ADDR", default=None,
                   help="run the rollout workers and the curriculum's BO trials on this Ray cluster "
                        "(e.g. 10.0.0.5:6379 or 'auto'; needs the 'cluster' extra); default: local processes")
    if entry.name == "abr":
        g.add_argument("--entropy-rate", type=float, default=None,
                       help="step size of the adaptive entropy weight (default: the learning rate, as "
                            "Pensieve-PPO: ~20k updates from ln 6 to the target; 1e-3 anneals in ~2k)")
        g.add_argument("--entropy-init", type=float, default=None,
                       help="the adaptive entropy weight's start (default: ln 6 = 1.79, Pensieve-PPO's, for a "
                            "policy from scratch; a fine-tune of a sharp student (--init-from) keeps it with a small "
                            "one, e.g. 0.01, the floor: ln 6 pulls it back towards uniform)")
        g.add_argument("--critic-warmup", type=int, default=None, metavar="N",
                       help="ppo: the first N updates train the critic alone, the actor as it is (count; default "
                            "0; for --init-from a student whose critic never learned: its advantages are noise "
                            "until the critic has seen the returns)")
        g.add_argument("--anchor-coef", type=float, default=None, metavar="C",
                       help="ppo with --init-from: weight of KL(start || policy) in the loss, start = the "
                            "--init-from network, so a fine-tune keeps what a student had unless the returns say "
                            "otherwise (default 0: none; --rollout-workers 1)")
        g.add_argument("--critic-warmup-lr", type=float, default=None, metavar="LR",
                       help="ppo: Adam's step size during --critic-warmup (default: --lr; a fresh critic learns the "
                            "returns' scale, a few hundred, far faster at 1e-3 than at 1e-4)")
    _add_agent_options(p, entry)
    if entry.name == "cc":
        g.add_argument("--history-length", type=int, default=10,
                       help="monitor intervals in the observation (count; 10 gives 30 values)")
        g.add_argument("--gap-after-first-ack", action="store_true", default=None,
                       help="curriculum: score BO trials (model and baseline alike) on the packets each sender "
                            "sent after its first ACK; an Aurora sender's first interval, before any feedback, "
                            "is beyond any policy's control (default: the whole run, as Genet)")
        from genet.cc.aurora import STARTUPS
        g.add_argument("--startup", choices=STARTUPS, default=None,
                       help="the Aurora sender's start-up, recorded in the exported model so that eval, emulate "
                            "and sender send run it the same way: aurora = pace at 10 packets per min RTT from the "
                            "first packet (Aurora's and Genet's; the shipped models'); window = at most "
                            "--initial-window-packets in flight until the first ACK, then min(rate, window / first "
                            "RTT), as the real UDP sender (genet/cc/aurora.py) (default: window; `--startup aurora "
                            "--interval-serialisation link` is Genet's simulator exactly)")
        from genet.cc.aurora import INTERVAL_SERIALISATIONS
        g.add_argument("--interval-serialisation", choices=INTERVAL_SERIALISATIONS, default=None,
                       help="how the simulator lengthens the next monitor interval: link = by the link's true "
                            "bandwidth at the sends (Genet's, an oracle; the shipped models'), measured = by the "
                            "interval's delivery rate, as the real UDP sender must; recorded in the exported model "
                            "(default: measured)")
        g.add_argument("--initial-window-packets", type=int, default=None,
                       help="the window start-up's initial window (packets, 1-1000; default: 10, TCP's IW10)")


def _add_agent_options(p: argparse.ArgumentParser, entry: TrainEntry) -> None:
    """--agent (every agent of the registry listed) and, for a use case with imitation agents, their options."""
    from genet.agents.registry import AGENTS, DEFAULT_AGENT, DEFAULT_TEACHERS, TEACHERS
    a = p.add_argument_group("Agent (the learning method; genet/agents/registry.py)")
    listing = "; ".join(f"{e.form}: {e.description}" + ("" if e.attributes.get("trainers") is None else
                                                        f" ({', '.join(e.attributes['trainers'])} only)")
                        for e in AGENTS.entries())
    a.add_argument("--agent", default=None, help=f"{listing} (default: {DEFAULT_AGENT})")
    if entry.name == "abr":  # Double DQN's replay ratio (genet/abr/dqn.py)
        a.add_argument("--train-every", type=int, default=None, metavar="N",
                       help="dqn: transitions collected per gradient step of --minibatch replayed ones (count; "
                            "default: 16, with --minibatch 128: each transition replayed 8 times)")
    if entry.name == "abr":  # the offline agent (dt, genet/abr/dt.py)
        a.add_argument("--pool", metavar="FILE[,FILE...]", default=None,
                       help="dt: the experience pool(s) it learns from (.npz files `genet pool abr` writes)")
        a.add_argument("--target-return", type=float, default=None, metavar="QOE",
                       help="dt: return-to-go of each session's first decision at run time, stored in the exported "
                            "model (default: the 75th percentile of the pool's episode returns, genet/abr/dt.py)")
    if entry.name not in TEACHERS:
        return
    about = {"abr": " (optimal: the offline optimum, which sees the future)",
             "cc": " (the simulator's, run shadow-wise on the student's packets: genet/cc/teacher.py)"}
    a.add_argument("--teacher", default=None,
                   help=f"policy bc and dagger learn from: {', '.join(TEACHERS[entry.name])}"
                        f"{about.get(entry.name, '')} (default: {DEFAULT_TEACHERS[entry.name]})")
    a.add_argument("--grad-steps", type=int, default=None,
                   help="bc, dagger: Adam steps per update, each on --minibatch labelled states drawn from the "
                        "aggregated data (count; default: 40; --lr default 1e-3, --minibatch 256)")
    a.add_argument("--beta-decay", type=float, default=None,
                   help="dagger: rollout i executes the teacher's action with probability BETA**i, else the "
                        "student's (0-1; rollout 0 is the teacher's; default: 0.5)")


# ------------------------------------------------------------- validation
@dataclass
class TrainPlan:
    """The validated options of one run."""

    use_case: str
    method: str
    range_name: str
    baselines: tuple[str, ...]
    ensemble: bool
    total_updates: int
    out: Path
    real_traces: list | None
    space: Any = None


def plan_run(args: argparse.Namespace) -> TrainPlan:
    """Check every option before any training starts; raise ValueError naming the option."""
    entry = TRAIN_USE_CASES[args.use_case]
    _check_agent(args)
    baselines = _check_method(args, entry)
    _check_schedule(args)
    _check_ppo(args)
    space = load_train_space(args.use_case, args.space) if getattr(args, "space", None) else None
    if args.steps_per_update is not None and args.n_envs is not None and args.steps_per_update < args.n_envs:
        raise BadInputError(f"need --steps-per-update >= --n-envs; got {args.steps_per_update}, {args.n_envs}")
    real = _load_real_traces(args)
    out = _check_out(args)
    return TrainPlan(args.use_case, args.method, args.range_name, baselines, args.ensemble, 0, out, real, space)


def agent_name(args: argparse.Namespace) -> str:
    """The run's agent (--agent; not given: ppo)."""
    from genet.agents.registry import DEFAULT_AGENT
    return getattr(args, "agent", None) or DEFAULT_AGENT


def _check_agent(args: argparse.Namespace) -> None:
    """--agent (known, trains this use case), the imitation options, and --steps' default for the agent."""
    from genet.agents.registry import AGENTS, DEFAULT_STEPS, DEFAULT_TEACHERS, TEACHERS, trainer_module, uses_teacher
    agent = agent_name(args)
    trainer_module(agent, args.use_case)  # one line naming the known agents / those for this use case
    _check_pool(args, agent)
    imitation = ("teacher", "grad_steps", "beta_decay")
    if not uses_teacher(agent):
        given = [o for o in imitation if getattr(args, o, None) is not None]
        if given:
            raise BadInputError(f"--{given[0].replace('_', '-')} is an option of the imitation agents (bc, dagger), "
                                f"not --agent {agent}")
    else:
        teachers = TEACHERS.get(args.use_case, ())
        if getattr(args, "teacher", None) is None:
            args.teacher = DEFAULT_TEACHERS.get(args.use_case)
        if args.teacher not in teachers:
            raise BadInputError(f"--teacher {args.teacher!r}: unknown {args.use_case} teacher; choose one of "
                                f"{', '.join(teachers)}")
        if args.method != "udr":
            raise BadInputError(f"--agent {agent} trains with --method udr (the curriculum methods train ppo), not "
                                f"--method {args.method}")
        if getattr(args, "init_from", None):
            raise BadInputError(f"--init-from starts ppo from a trained model; --agent {agent} starts from its "
                                f"teacher")
        if getattr(args, "grad_steps", None) is not None and args.grad_steps < 1:
            raise BadInputError(f"--grad-steps must be >= 1, got {args.grad_steps}")
        if getattr(args, "beta_decay", None) is not None and not 0 <= args.beta_decay <= 1:
            raise BadInputError(f"--beta-decay must be in [0, 1], got {args.beta_decay}")
    if getattr(args, "critic_warmup", None) is not None:
        if agent != "ppo":
            raise BadInputError(f"--critic-warmup is an option of --agent ppo, not --agent {agent}")
        if args.critic_warmup < 0:
            raise BadInputError(f"--critic-warmup must be >= 0 (updates), got {args.critic_warmup}")
    if getattr(args, "critic_warmup_lr", None) is not None:
        if not getattr(args, "critic_warmup", None):
            raise BadInputError("--critic-warmup-lr is the step size of --critic-warmup N: give N too")
        if not args.critic_warmup_lr > 0:
            raise BadInputError(f"--critic-warmup-lr must be > 0, got {args.critic_warmup_lr}")
    if getattr(args, "anchor_coef", None) is not None:
        if agent != "ppo" or not getattr(args, "init_from", None):
            raise BadInputError("--anchor-coef keeps a PPO fine-tune near the network it starts from: give --agent ppo "
                                "(the default) and --init-from MODEL")
        if not args.anchor_coef >= 0:
            raise BadInputError(f"--anchor-coef must be >= 0, got {args.anchor_coef}")
        if args.anchor_coef > 0 and (getattr(args, "rollout_workers", 1) != 1 or getattr(args, "ray_address", None)):
            raise BadInputError("--anchor-coef runs the update in this process: leave --rollout-workers at 1 and "
                                "--ray-address out")
    if getattr(args, "entropy_init", None) is not None and not args.entropy_init >= 0:
        raise BadInputError(f"--entropy-init must be >= 0, got {args.entropy_init}")
    if getattr(args, "train_every", None) is not None:
        if agent != "dqn":
            raise BadInputError(f"--train-every is an option of --agent dqn, not --agent {agent}")
        if args.train_every < 1:
            raise BadInputError(f"--train-every must be >= 1 (transitions per gradient step), got {args.train_every}")
    if not AGENTS.get(agent).attributes.get("workers", True) and (
            getattr(args, "rollout_workers", 1) != 1 or getattr(args, "ray_address", None)):
        raise BadInputError(f"--agent {agent} steps its sessions in this process: leave --rollout-workers at 1 "
                            f"and --ray-address out")
    if args.steps is None:
        args.steps = DEFAULT_STEPS.get(agent, DEFAULT_STEPS["ppo"])


def _check_pool(args: argparse.Namespace, agent: str) -> None:
    """--pool and --target-return: the offline agent's (dt) options, --pool required by it."""
    if agent != "dt":
        given = [o for o in ("pool", "target_return") if getattr(args, o, None) is not None]
        if given:
            raise BadInputError(f"--{given[0].replace('_', '-')} is an option of --agent dt, not --agent {agent}")
        return
    if not getattr(args, "pool", None):
        raise BadInputError("--agent dt learns from an experience pool: give --pool FILE[,FILE...] "
                            "(`genet pool abr` writes one)")
    for part in (x for x in args.pool.split(",") if x):
        if not Path(part).is_file():
            raise FileNotFoundError(f"--pool {part}: no such pool file")
    if args.method != "udr":
        raise BadInputError(f"--agent dt learns from its pool with --method udr, not --method {args.method}")
    from genet.abr.pool import read_pools
    read_pools(args.pool)  # before the run folder is made: a bad file is a one-line error naming it
    if getattr(args, "init_from", None):
        raise BadInputError("--init-from starts ppo from a trained model; --agent dt starts from scratch")


def train_module(use_case: str, agent: str):
    """The module that trains ``agent`` for ``use_case``: ppo's is the use case's :data:`TRAIN_USE_CASES` entry,
    another agent's the one its registry entry names (genet/agents/registry.py)."""
    import importlib
    from genet.agents.registry import trainer_module
    module = trainer_module(agent, use_case)
    return use_case_module(use_case) if module is None else importlib.import_module(module)


def _check_method(args: argparse.Namespace, entry: TrainEntry) -> tuple[str, ...]:
    """--method, --range, --baseline (returned, split), --ensemble."""
    if args.method not in METHODS:
        raise BadInputError(f"--method {args.method!r}: unknown method; choose one of {', '.join(METHODS)}")
    why = dict(entry.unavailable).get(args.method)
    if why:
        usable = [m for m in METHODS if m not in dict(entry.unavailable)]
        raise BadInputError(f"--method {args.method}: not for {entry.name}: {why}; choose one of {', '.join(usable)}")
    if args.range_name not in RANGES:
        raise BadInputError(f"--range {args.range_name!r}: unknown range; choose one of {', '.join(RANGES)}")
    baselines = tuple(b.strip() for b in args.baseline.split(",") if b.strip())
    if entry.policy_baselines:  # a trained policy as a baseline: an existing .onnx file, by its absolute path
        files = [b for b in baselines if b.endswith(".onnx")]
        for f in files:
            if not Path(f).is_file():
                raise BadInputError(f"--baseline {f}: no such policy file")
        baselines = tuple(str(Path(b).resolve()) if b.endswith(".onnx") else b for b in baselines)
    bad = [b for b in baselines if b not in entry.baselines and not (entry.policy_baselines and b.endswith(".onnx"))]
    if bad or not baselines:
        also = " or a trained policy PATH.onnx" if entry.policy_baselines else ""
        raise BadInputError(f"--baseline {args.baseline!r}: unknown baseline {bad[0] if bad else ''!r} for "
                         f"{entry.name}; choose from {', '.join(entry.baselines)}{also}")
    if args.ensemble and len(baselines) < 2:
        raise BadInputError(f"--ensemble needs two or more baselines (e.g. --baseline {','.join(entry.baselines)})")
    return baselines


def _check_schedule(args: argparse.Namespace) -> None:
    """--steps, the curriculum's options (rounds, promotions, --init-from, BO trials) and --checkpoint-every."""
    if args.steps < 1:
        raise BadInputError(f"--steps must be >= 1 environment step, got {args.steps}")
    if getattr(args, "trial_batch", 1) < 1:
        raise BadInputError(f"--trial-batch must be >= 1 trial, got {args.trial_batch}")
    if args.rounds < 0:
        raise BadInputError(f"--rounds must be >= 0, got {args.rounds}")
    if not 0 < getattr(args, "promote_weight", 0.3) < 1:
        raise BadInputError(f"--promote-weight must be in (0, 1), got {args.promote_weight}")
    if not 0 <= getattr(args, "promotion_distance", 0.0) <= 1:
        raise BadInputError(f"--promotion-distance must be in [0, 1] (the BO's unit coordinates), got "
                            f"{args.promotion_distance}")
    if getattr(args, "updates_per_round", None) is not None and args.updates_per_round < 1:
        raise BadInputError(f"--updates-per-round must be >= 1, got {args.updates_per_round}")
    if getattr(args, "init_from", None):
        if args.method not in OBJECTIVE_OF and args.use_case not in ("abr", "cc"):
            raise BadInputError(f"--init-from starts a curriculum (--method genet, cl2, cl3), not --method "
                                f"{args.method}")
        if Path(args.init_from).is_dir() and (Path(args.init_from) / "model.pt").is_file():
            args.init_from = str(Path(args.init_from) / "model.pt")  # a run directory: its final model
        if not Path(args.init_from).is_file():
            raise FileNotFoundError(f"--init-from {args.init_from}: no such model file (a model.pt, a checkpoint, "
                                    f"or a run directory holding model.pt)")
    window = getattr(args, "initial_window_packets", None)
    if window is not None and getattr(args, "startup", None) == "aurora":
        raise BadInputError(f"--initial-window-packets {window} sets the window of --startup window, not of "
                            f"--startup aurora")
    if window is not None:
        from genet.cc.aurora import MAX_INITIAL_WINDOW_PACKETS
        if not 1 <= window <= MAX_INITIAL_WINDOW_PACKETS:
            raise BadInputError(f"--initial-window-packets must be 1-{MAX_INITIAL_WINDOW_PACKETS} packets, got {window}")
    if getattr(args, "gap_after_first_ack", None) and args.method != "genet":
        # cl2/cl3 compare with the ideal sender's whole-run reward, which has no first ACK to cut at
        raise BadInputError(f"--gap-after-first-ack changes the gap to a baseline of --method genet's BO trials, "
                            f"not --method {args.method}")
    if getattr(args, "min_promotion_gap", None) is not None and args.method not in OBJECTIVE_OF:
        raise BadInputError(f"--min-promotion-gap changes a curriculum's promotions (--method genet, cl2, cl3), "
                            f"not --method {args.method}")
    if getattr(args, "promotion_distance", 0.0) > 0 and args.method not in OBJECTIVE_OF:
        raise BadInputError(f"--promotion-distance changes a curriculum's promotions (--method genet, cl2, cl3), "
                            f"not --method {args.method}")
    if args.checkpoint_every < 1:
        raise BadInputError(f"--checkpoint-every must be >= 1 update, got {args.checkpoint_every}")
    if not 1 <= args.trials or not 0 <= args.random_trials <= args.trials or args.envs_per_trial < 1:
        raise BadInputError(f"need --trials >= 1, 0 <= --random-trials <= --trials and --envs-per-trial >= 1; got "
                         f"{args.trials}, {args.random_trials}, {args.envs_per_trial}")


def _check_ppo(args: argparse.Namespace) -> None:
    """The PPO settings and where the rollouts run (workers, a Ray cluster, torch threads)."""
    if getattr(args, "rollout_workers", 1) < 0:
        raise BadInputError(f"--rollout-workers must be >= 0 (0 = every core), got {args.rollout_workers}")
    if getattr(args, "ray_address", None):
        try:
            import ray  # noqa: F401
        except ImportError:
            from foundation.errors import MissingExtraError
            raise MissingExtraError("cluster", "--ray-address", "ray") from None
    if getattr(args, "torch_threads", None) is not None and args.torch_threads < 0:
        raise BadInputError(f"--torch-threads must be >= 0 (0 = every core), got {args.torch_threads}")
    for opt in ("n_envs", "steps_per_update", "epochs", "minibatch"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            raise BadInputError(f"--{opt.replace('_', '-')} must be >= 1, got {getattr(args, opt)}")
    if args.lr is not None and not args.lr > 0:
        raise BadInputError(f"--lr must be > 0, got {args.lr}")
    if getattr(args, "entropy_rate", None) is not None and not args.entropy_rate > 0:
        raise BadInputError(f"--entropy-rate must be > 0, got {args.entropy_rate}")


def _load_real_traces(args: argparse.Namespace) -> list | None:
    """The traces of --real-traces (comma-separated folders; None when not given), and --real-prob checked."""
    if args.real_traces is None:
        return None
    if not 0 <= args.real_prob <= 1:
        raise BadInputError(f"--real-prob must be a probability in [0, 1], got {args.real_prob}")
    from traces import load_traces
    real = []
    for part in (x for x in args.real_traces.split(",") if x):
        d = Path(part)
        if not d.exists():
            raise FileNotFoundError(f"--real-traces {d}: no such file or directory")
        got = load_traces(d)
        if not got:
            raise BadInputError(f"--real-traces {d}: the directory holds no traces")
        real += got
    if not real:
        raise BadInputError(f"--real-traces {args.real_traces!r}: no directory given")
    return real


def _check_out(args: argparse.Namespace) -> Path:
    """The run directory: --out (default runs/<use case>-<method>-<range>-s<seed>); with --resume, a run of the
    same use case and method; without, one that holds no run yet."""
    out = Path(args.out) if args.out else Path("runs") / f"{args.use_case}-{args.method}-{args.range_name}-s{args.seed}"
    run_file = out / RUN_FILE
    if args.resume:
        if not run_file.is_file():
            raise FileNotFoundError(f"--resume: {run_file} does not exist (not a genet train run directory)")
        prev = json.loads(run_file.read_text())
        if prev.get("use_case") != args.use_case:
            raise BadInputError(f"--resume: {out} is a {prev.get('use_case')!r} run, not a {args.use_case!r} run")
        if prev.get("method") != args.method:
            raise BadInputError(f"--resume: {out} is a {prev.get('method')!r} run, not --method {args.method}")
        if prev.get("agent", "ppo") != agent_name(args) or prev.get("teacher") != getattr(args, "teacher", None):
            def said(agent, teacher):
                return f"--agent {agent}" + (f" --teacher {teacher}" if teacher else "")
            raise BadInputError(f"--resume: {out} is a run of {said(prev.get('agent', 'ppo'), prev.get('teacher'))}, "
                                f"not {said(agent_name(args), getattr(args, 'teacher', None))}")
    elif run_file.exists():
        raise BadInputError(f"--out {out} already holds a run ({run_file}); pass --resume to continue it "
                         f"or choose another --out")
    return out


def load_train_space(use_case: str, path: str):
    """A user's config-space file for ``--space``: readable, ranges not inverted (checked by
    :func:`traces.config_space.load_space`), and the same dimensions as the use case's own space."""
    from traces.config_space import load_space
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--space {p}: no such file")
    space = load_space(p)
    own = load_space(use_case)
    if space.use_case != use_case:
        raise BadInputError(f"--space {p}: a {space.use_case!r} config space, not {use_case!r}")
    if set(space.names) != set(own.names):
        missing, extra = sorted(set(own.names) - set(space.names)), sorted(set(space.names) - set(own.names))
        raise BadInputError(f"--space {p}: dimensions must be those of traces/spaces/{use_case}.json"
                         f"{'; missing ' + ', '.join(missing) if missing else ''}"
                         f"{'; unknown ' + ', '.join(extra) if extra else ''}")
    return space


def steps_per_update(use_case: Any) -> int:
    """Transitions per PPO update of a use case (its config's ``batch_size`` or ``steps_per_update``)."""
    cfg = getattr(use_case, "config", None)
    for attr in ("batch_size", "steps_per_update"):
        v = getattr(cfg, attr, None)
        if v:
            return int(v)
    raise BadInputError(f"use case {getattr(use_case, 'name', '?')!r} does not say its transitions per update")


def recorded_steps_per_update(train_config: dict) -> int | None:
    """Transitions per update of a run's recorded ``train_config`` (run.json): ``steps_per_update``, or
    ``n_envs`` x ``rollout_steps`` (ABR); None when it says neither."""
    if train_config.get("steps_per_update"):
        return int(train_config["steps_per_update"])
    if train_config.get("n_envs") and train_config.get("rollout_steps"):
        return int(train_config["n_envs"]) * int(train_config["rollout_steps"])
    return None


def set_total_updates(plan: TrainPlan, args: argparse.Namespace, use_case: Any,
                      recorded_spu: int | None = None) -> None:
    """--steps -> PPO updates; the curriculum methods need at least one update per phase. ``recorded_spu``: a
    resumed run's own transitions per update (its checkpoint trains with its recorded settings, whatever the
    resume's options say)."""
    spu = recorded_spu or steps_per_update(use_case)
    plan.total_updates = max(1, math.ceil(args.steps / spu))
    if plan.method in OBJECTIVE_OF and getattr(args, "updates_per_round", None):
        phases = args.rounds + (0 if getattr(args, "init_from", None) else 1)
        plan.total_updates = max(1, phases * args.updates_per_round)
        return
    if plan.method not in ("udr", "cl1") and plan.total_updates < args.rounds + 1:
        raise BadInputError(f"--steps {args.steps} gives {plan.total_updates} PPO update(s) of {spu} transitions, "
                         f"fewer than the {args.rounds + 1} phases of --method {plan.method} "
                         f"(warm-up + --rounds {args.rounds})")


def command_line(args: argparse.Namespace) -> str:
    """The `genet train` command that reproduces this run (every option spelled out)."""
    parts = ["genet", "train", args.use_case]
    for dest, value in vars(args).items():
        if dest in ("func", "use_case", "resume", "no_progress", "command", "train_command") or value is None \
                or value is False:
            continue
        flag = "--range" if dest == "range_name" else "--" + dest.replace("_", "-")
        parts += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _write_json(path: Path, data: dict) -> None:
    from foundation.atomic import atomic_text_writer
    with atomic_text_writer(path) as fh:
        json.dump(data, fh, indent=1, default=str)


# ---------------------------------------------------------- curve output
CURVE_COLUMNS = ("update", "env_steps", "wall_s", "mean_step_reward", "episodes", "episode_reward_mean",
                 "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "explained_variance", "log_std",
                 "transitions_per_s")


#: More learning-curve columns of the imitation agents (bc, dagger; genet/agents/imitation.py).
IMITATION_COLUMNS = ("imitation_loss", "agreement", "agreement_before", "teacher_share", "samples", "learning_rate")


def curve_columns(agent: str = "ppo") -> tuple[str, ...]:
    """The learning-curve columns of an agent's runs (its registry entry's ``curve_columns`` after the common ones)."""
    from genet.agents.registry import AGENTS, uses_teacher
    own = tuple(AGENTS.get(agent).attributes.get("curve_columns", ()))
    return (CURVE_COLUMNS + IMITATION_COLUMNS if uses_teacher(agent) else CURVE_COLUMNS) + own


def _curve_rows(fh, records: list[dict], header: bool, columns: tuple[str, ...] = CURVE_COLUMNS) -> None:
    import csv
    w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    if header:
        w.writeheader()
    w.writerows(records)


def write_curve(history: list[dict], out: Path, columns: tuple[str, ...] = CURVE_COLUMNS) -> None:
    """Rewrite ``learning_curve.csv`` from the whole history (atomically)."""
    from foundation.atomic import atomic_text_writer
    with atomic_text_writer(out / "learning_curve.csv") as fh:
        _curve_rows(fh, history, header=True, columns=columns)


class CurveLog:
    """The learning curve while training: one CSV row appended per PPO update (a long run does not
    rewrite the file every update), plus TensorBoard event files in ``out/tensorboard`` when the
    ``tensorboard`` package is installed. The first :meth:`append` (and :meth:`sync`, at the end) rewrites
    the CSV from the model's history, so a resumed run drops the rows a crash left after its last
    checkpoint."""

    def __init__(self, out: Path, tensorboard: bool = True, columns: tuple[str, ...] = CURVE_COLUMNS):
        self.out = out
        self.columns = columns
        self.rows = 0
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: CSV + PNG only
                SummaryWriter = None
            if SummaryWriter is not None:
                self.tb = SummaryWriter(log_dir=str(out / "tensorboard"))

    def sync(self, history: list[dict]) -> None:
        write_curve(history, self.out, self.columns)
        self.rows = len(history)

    def append(self, history: list[dict]) -> None:
        if self.rows == 0 or self.rows > len(history):
            self.sync(history)
        else:
            with open(self.out / "learning_curve.csv", "a", newline="") as fh:
                _curve_rows(fh, history[self.rows:], header=False, columns=self.columns)
            self.rows = len(history)
        if self.tb is not None and history:
            r = history[-1]
            for k in self.columns[3:]:
                v = r.get(k)
                if isinstance(v, (int, float)) and v == v:
                    self.tb.add_scalar(f"train/{k}", v, global_step=int(r["env_steps"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def plot_curve(history: list[dict], out: Path) -> Path | None:
    if not history:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    steps = np.array([r["env_steps"] for r in history])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax1.plot(steps, [r["mean_step_reward"] for r in history], lw=1)
    ax1.set_ylabel("mean reward per step")
    ax1.grid(alpha=0.3)
    ax2.plot(steps, [r["episode_reward_mean"] for r in history], ".", ms=3)
    ax2.set_ylabel("episode reward")
    ax2.set_xlabel("environment steps")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "learning_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ train
def cl1_stages(space, range_name: str, n_stages: int) -> list:
    """CL1: distributions whose bandwidth-change-interval range widens from the longest
    holds (calm) to the whole range (frequent changes), one per stage."""
    from genet.curriculum.distribution import ConfigDistribution
    dim = "bandwidth_change_interval_s" if "bandwidth_change_interval_s" in space.names else None
    out = []
    for k in range(n_stages):
        dist = ConfigDistribution.udr(space, range_name)
        if dim is not None:
            lo, hi = dist.entries[0].ranges[dim]
            frac = (k + 1) / n_stages
            dist.entries[0].ranges[dim] = (hi - (hi - lo) * frac, hi)
            dist.entries[0].label = f"cl1-stage{k}"
        out.append(dist)
    return out


def run_train(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("train", f"genet train {args.use_case}")
    plan = plan_run(args)  # every check before the heavy imports and any training
    module = train_module(plan.use_case, agent_name(args))
    from genet.curriculum.distribution import ConfigDistribution
    out = plan.out
    bar = None
    curve: CurveLog | None = None

    def on_update(model: Any, record: dict) -> None:
        curve.append(model.history)
        if bar is not None:
            bar.n = min(record["update"], plan.total_updates)
            bar.set_postfix(reward=f"{record['mean_step_reward']:.1f}", refresh=False)
            bar.refresh()

    use_case = module.build_use_case(args, real_traces=plan.real_traces, on_update=on_update, space=plan.space)
    recorded = None
    if args.resume:  # the checkpoint goes on with its own update size: --steps counts in it
        recorded = recorded_steps_per_update(json.loads((out / RUN_FILE).read_text()).get("train_config") or {})
    set_total_updates(plan, args, use_case, recorded)
    out.mkdir(parents=True, exist_ok=True)
    curve = CurveLog(out, columns=curve_columns(agent_name(args)))
    if not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=plan.total_updates, desc=f"genet train {plan.use_case} {agent_name(args)} {plan.method}",
                   unit="update")
    # the use case may leave out real traces its simulator cannot play (it warns which)
    n_real = len(getattr(use_case, "real_traces", None) or plan.real_traces or [])
    real_prob = args.real_prob if n_real else 0.0
    initial = ConfigDistribution.udr(use_case.space, plan.range_name, real_prob, n_real)
    from foundation.runmeta import write_run_metadata
    run_meta = write_run_metadata(out, seed=args.seed, extra={"use_case": plan.use_case, "agent": agent_name(args),
                                                             "method": plan.method,
                                                             "resume": bool(args.resume), "steps": args.steps})
    if not args.resume:
        _write_json(out / RUN_FILE, {
            "use_case": plan.use_case, "agent": agent_name(args), "teacher": getattr(args, "teacher", None),
            "method": plan.method, "range": plan.range_name,
            "baselines": list(plan.baselines), "ensemble": plan.ensemble, "seed": args.seed, "steps": args.steps,
            "rounds": args.rounds, "total_updates": plan.total_updates,
            "real_traces": args.real_traces, "real_prob": real_prob, "n_real_traces": n_real,
            "space": str(plan.space.path) if plan.space is not None else f"traces/spaces/{plan.use_case}.json",
            "train_config": module.train_config_dict(use_case),
            "command": command_line(args),
            "argv": {k: v for k, v in vars(args).items() if k != "func"}, "commit": run_meta.commit or "",
            "started": run_meta.started_utc})  # host, versions, ...: run-metadata.json (foundation/runmeta.py)
    else:
        run = json.loads((out / RUN_FILE).read_text())
        run.setdefault("resumes", []).append({"command": command_line(args), "steps": args.steps,
                                              "rounds": args.rounds, "time": run_meta.started_utc,
                                              "commit": run_meta.commit or ""})
        _write_json(out / RUN_FILE, run)
    t0 = time.perf_counter()
    try:
        if plan.method in ("udr", "cl1"):
            model = _train_staged(use_case, plan, args, initial)
        else:
            model = _train_curriculum(use_case, plan, args, initial)
    finally:
        close = getattr(use_case, "close", None)
        if close is not None:
            close()  # rollout workers
    use_case.save_model(model, out / "model.pt")
    curve.sync(model.history)
    curve.close()
    plot_curve(model.history, out)
    if bar is not None:
        bar.close()
    run_meta.finish(out, env_steps=model.env_steps, updates=model.updates)
    last = model.history[-1] if model.history else {}
    print(f"trained {plan.use_case} ({agent_name(args)}, {plan.method}): {model.env_steps} environment steps, "
          f"{model.updates} updates "
          f"in {time.perf_counter() - t0:.1f} s; last mean step reward {last.get('mean_step_reward', float('nan')):.2f}")
    print(f"run directory: {out} (model.pt, learning_curve.csv/.png); export with "
          f"`genet export {out} -o policy.onnx`")
    return 0


def _train_staged(use_case, plan: TrainPlan, args, initial) -> Any:
    """udr (one stage) or cl1 (rounds + 1 stages), checkpointed every --checkpoint-every updates."""
    import shutil
    ckpt_dir = plan.out / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    latest = ckpt_dir / "latest.pt"
    if plan.method == "udr":
        stages = [initial]
    else:
        stages = cl1_stages(use_case.space, plan.range_name, args.rounds + 1)
        for d in stages:
            d.real_prob, d.n_real_traces = initial.real_prob, initial.n_real_traces
    per_stage = [plan.total_updates // len(stages) + (1 if i < plan.total_updates % len(stages) else 0)
                 for i in range(len(stages))]
    if args.resume and latest.is_file():
        model = use_case.load_model(latest)
        print(f"resuming {plan.out} after {model.updates} updates ({model.env_steps} environment steps)")
    elif getattr(args, "init_from", None):
        model = use_case.model_from(Path(args.init_from), args.seed)  # PPO from another run's network
    else:
        model = use_case.new_model(args.seed)
    bounds = [sum(per_stage[:i + 1]) for i in range(len(per_stage))]
    last_plot = -float("inf")
    while model.updates < plan.total_updates:
        stage = next(i for i, b in enumerate(bounds) if model.updates < b)
        n = min(args.checkpoint_every - model.updates % args.checkpoint_every, bounds[stage] - model.updates)
        use_case.train(model, stages[stage], n, args.seed)
        if model.updates % args.checkpoint_every == 0 or model.updates == plan.total_updates:
            use_case.save_model(model, latest)
            shutil.copyfile(latest, ckpt_dir / f"step_{model.env_steps}.pt")
            if time.monotonic() - last_plot > 60:
                plot_curve(model.history, plan.out)
                last_plot = time.monotonic()
    return model


def _train_curriculum(use_case, plan: TrainPlan, args, initial) -> Any:
    from genet.curriculum.loop import CurriculumConfig, plot_rounds, run_curriculum
    per_phase = getattr(args, "updates_per_round", None) or max(1, plan.total_updates // (args.rounds + 1))
    cfg = CurriculumConfig(rounds=args.rounds, iterations_per_round=per_phase, n_trials=args.trials,
                           n_random=args.random_trials, envs_per_trial=args.envs_per_trial,
                           promote_weight=getattr(args, "promote_weight", 0.3),
                           promotion_distance=getattr(args, "promotion_distance", 0.0),
                           min_promotion_gap=getattr(args, "min_promotion_gap", None),
                           baselines=plan.baselines, ensemble=plan.ensemble, objective=OBJECTIVE_OF[plan.method],
                           seed=args.seed, trial_batch=getattr(args, "trial_batch", 1))
    init = getattr(args, "init_from", None)
    initial_model = _initial_model(use_case, Path(init), args.seed) if init and not args.resume else None
    model, dist, state = run_curriculum(use_case, cfg, plan.out, initial=initial, resume=args.resume,
                                        log=lambda s: print(s, file=sys.stderr), initial_model=initial_model)
    if state.rounds:
        plot_rounds(state, plan.out / "rounds.png")
    plot_curve(model.history, plan.out)
    return model


def _initial_model(use_case, path: Path, seed: int) -> Any:
    """The curriculum's --init-from model: a PPO checkpoint of the use case as it is (optimiser, counters and
    all); another agent's checkpoint (bc/dagger, a3c) as a new PPO model with its network."""
    from foundation.errors import BadInputError as _Bad
    try:
        return use_case.load_model(path)
    except _Bad:
        if not hasattr(use_case, "model_from"):
            raise
        return use_case.model_from(path, seed)


# ----------------------------------------------------------------- export
def latest_model_path(run_dir: Path, run: dict) -> Path:
    """The final model of a run, else its latest checkpoint."""
    if (run_dir / "model.pt").is_file():
        return run_dir / "model.pt"
    if (run_dir / "checkpoints" / "latest.pt").is_file():
        return run_dir / "checkpoints" / "latest.pt"
    state = run_dir / "state.json"
    if state.is_file():
        phases = json.loads(state.read_text()).get("phases_done", 0)
        p = run_dir / f"model-round{phases - 1}"
        if phases > 0 and p.is_file():
            return p
    raise FileNotFoundError(f"{run_dir}: no model.pt and no checkpoint yet (did training start?)")


def run_export(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("train", "genet export")
    run_dir = Path(args.run_dir)
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise FileNotFoundError(f"{run_dir}: not a genet train run directory ({RUN_FILE} missing)")
    run = json.loads(run_file.read_text())
    if run.get("use_case") not in TRAIN_USE_CASES:
        raise BadInputError(f"{run_file}: unknown use case {run.get('use_case')!r}")
    module = train_module(run["use_case"], run.get("agent") or "ppo")
    model_path = Path(args.checkpoint) if getattr(args, "checkpoint", None) else latest_model_path(run_dir, run)
    if not model_path.is_file():
        raise FileNotFoundError(f"--checkpoint {model_path}: no such file")
    use_case = module.build_use_case(argparse.Namespace(**run["argv"]))
    model = use_case.load_model(model_path)
    provenance = {"method": run.get("method"), "range": run.get("range"), "baselines": run.get("baselines"),
                  "ensemble": run.get("ensemble"), "command": run.get("command"), "commit": run.get("commit"),
                  "run_dir": str(run_dir), "checkpoint": model_path.name, "name": f"{run.get('use_case')}-"
                  f"{run.get('method')}-s{run.get('seed')}", "agent": run.get("agent") or "ppo"}
    path = module.export_policy(use_case, model, args.output, provenance)
    print(f"wrote {path} ({run.get('use_case')} policy, {run.get('agent') or 'ppo'}, {run.get('method')}, "
          f"{model.env_steps} environment steps; onnxruntime matches torch on "
          f"{getattr(module, 'EXPORT_CHECK', '1000 random observations')})")
    return 0


COMMANDS = (
    *(Command(("train", name), help=f"train a {name.upper()} policy (--agent ppo: udr, genet, cl1-cl3; "
                                    f"imitation agents for ABR and CC)",
              description=__doc__.split("\n\n", 1)[1].split("Use cases plug in")[0],
              arguments=_train_arguments(entry), run=run_train) for name, entry in TRAIN_USE_CASES.items()),
    Command(("export",), help="export a trained policy (a genet train run directory) to ONNX",
            description="Export the final model of a `genet train` run (or its latest "
                        "checkpoint) as an ONNX policy whose metadata carries the use case, "
                        "observation layout, action semantics and training provenance.",
            arguments=_export_arguments, run=run_export),
)
