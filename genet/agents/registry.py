"""The agent registry: the learning methods ``genet train`` knows, by name.

=========  ==========================================================================  ==========
name       agent                                                                         use cases
=========  ==========================================================================  ==========
ppo        PPO (Pensieve-PPO for ABR, Aurora's for CC; genet/agents/ppo.py)              every one
a3c        synchronous A3C with Pensieve's settings (genet/agents/a3c.py)                abr, cc
dqn        Double DQN: replay buffer, target network, ε-greedy (genet/agents/dqn.py)     abr
bc         behaviour cloning from a teacher policy (genet/agents/imitation.py)           abr, cc
dagger     DAgger: student rollouts labelled by a teacher (genet/agents/imitation.py)    abr, cc
dt         Decision Transformer from an experience pool (genet/agents/dt.py)          abr
=========  ==========================================================================  ==========

:data:`AGENTS` is a :class:`foundation.registry.Registry` filled by :func:`register_builtins` (the one place
agents are registered; importing an agent's module registers nothing). Factories are import paths, so reading
the registry (``genet train --help``) loads no torch. Each entry's attributes say

* ``trainers``: use case -> the module that trains this agent for it (what ``genet train <use case>
  --agent NAME`` runs: ``build_use_case``, ``train_config_dict``, ``export_policy``, as
  :data:`genet.train_cli.TRAIN_USE_CASES`' modules); None (ppo): every use case, with the use case's own
  training module (``TRAIN_USE_CASES``);
* ``teacher``: whether the agent learns from a teacher policy (``--teacher``).

* ``workers``: whether its rollouts can run on rollout workers (``--rollout-workers``, ``--ray-address``);
* ``curve_columns``: the learning-curve columns it adds to ``learning_curve.csv`` (none when absent).

An unknown name raises :class:`foundation.registry.UnknownNameError` listing the known ones.
"""

from __future__ import annotations

from foundation.registry import Registry, RegistryEntry

#: The default agent of ``genet train``.
DEFAULT_AGENT = "ppo"
#: Teachers of the imitation agents per use case (names of the use case's policy registry; ABR:
#: genet.abr.registry.POLICIES; CC: the simulator's BBR and Cubic, genet/cc/teacher.py) and the default ones
#: (CC: Cubic, whose DAgger and BC students beat BBR's on both Pantheon sets, README); DEFAULT_TEACHER is ABR's.
TEACHERS = {"abr": ("bba", "mpc", "optimal"), "cc": ("bbr", "cubic")}
DEFAULT_TEACHERS = {"abr": "mpc", "cc": "cubic"}
DEFAULT_TEACHER = DEFAULT_TEACHERS["abr"]
#: ``genet train``'s default --steps per agent (transitions): PPO Aurora's UDR budget (A3C the same); BC and
#: DAgger 300000: DAgger from RobustMPC steps ~4,400 transitions/s on a quiet 2-core machine (~70 s), ~2,800 with
#: other runs on the cores (~110 s), well within 5 minutes either way.
DEFAULT_STEPS = {"ppo": 720_000, "a3c": 720_000, "dqn": 720_000, "bc": 300_000, "dagger": 300_000}
#: The Decision Transformer's default --steps (decisions trained on, genet/abr/dt.py): 200 updates of 20 AdamW
#: steps on 64 windows of 10 decisions: ~160 s of CPU on one core (~14k decisions/s).
DEFAULT_STEPS["dt"] = 2_560_000


def register_builtins(registry: Registry) -> Registry:
    """Register the shipped agents in ``registry`` (the one place they are registered); returns it."""
    registry.register("ppo", "genet.agents.ppo:PpoAgent",
                      description="proximal policy optimisation (Pensieve-PPO for ABR, Aurora's PPO for CC)",
                      trainers=None, teacher=False, workers=True)
    registry.register("a3c", "genet.agents.a3c:A3cAgent",
                      description="synchronous advantage actor-critic with Pensieve's A3C settings (RMSProp, "
                                  "entropy weight 0.5; CC: Aurora's network and entropy weight 0.01)",
                      trainers={"abr": "genet.abr.a3c", "cc": "genet.cc.a3c"}, teacher=False, workers=False)
    registry.register("dqn", "genet.agents.dqn:DqnAgent",
                      description="Double DQN: experience replay, a target network, epsilon-greedy exploration "
                                  "decaying linearly, Huber loss; the exported policy is greedy (argmax Q)",
                      trainers={"abr": "genet.abr.dqn"}, teacher=False, workers=False,
                      curve_columns=("td_loss", "q_mean", "epsilon", "grad_steps", "replay_size", "rollout_entropy"))
    registry.register("bc", "genet.agents.imitation:BcAgent",
                      description="behaviour cloning: the student learns the teacher's actions on teacher rollouts",
                      trainers={"abr": "genet.abr.imitation", "cc": "genet.cc.imitation"}, teacher=True,
                      workers=False)
    registry.register("dagger", "genet.agents.imitation:DaggerAgent",
                      description="DAgger: student rollouts labelled by the teacher, aggregated and retrained",
                      trainers={"abr": "genet.abr.imitation", "cc": "genet.cc.imitation"}, teacher=True,
                      workers=False)
    registry.register("dt", "genet.agents.dt:DtAgent",
                      description="Decision Transformer: offline RL from an experience pool (--pool; `genet pool "
                                  "abr` writes one), conditioned on return-to-go (--target-return)",
                      trainers={"abr": "genet.abr.dt"}, teacher=False, workers=False,
                      curve_columns=("dt_loss", "action_accuracy", "learning_rate"))
    return registry


#: The agents: ppo, a3c, dqn, bc, dagger.
AGENTS: Registry = register_builtins(Registry("agent"))


def trains(entry: RegistryEntry, use_case: str) -> bool:
    """Whether the agent of ``entry`` trains ``use_case`` policies."""
    trainers = entry.attributes.get("trainers")
    return trainers is None or use_case in trainers


def trainer_module(agent: str, use_case: str, where: str = "--agent") -> str | None:
    """The module that trains ``agent`` for ``use_case`` (None: the use case's own training module, as for ppo); a
    one-line error when the name is unknown or the agent does not train that use case (naming the agents that
    do)."""
    entry: RegistryEntry = AGENTS.resolve(agent, where=where)[0]
    trainers = entry.attributes.get("trainers")
    if trainers is None:
        return None
    if use_case not in trainers:
        able = [e.name for e in AGENTS.entries() if trains(e, use_case)]
        from foundation.errors import BadInputError
        raise BadInputError(f"{where} {agent!r}: this agent does not train {use_case} policies; agents for "
                            f"{use_case}: {', '.join(able)}")
    return trainers[use_case]


def uses_teacher(agent: str) -> bool:
    """Whether ``agent`` learns from a teacher policy (``--teacher``)."""
    return bool(AGENTS.get(agent).attributes.get("teacher", False))


__all__ = ["AGENTS", "DEFAULT_AGENT", "DEFAULT_STEPS", "DEFAULT_TEACHER", "DEFAULT_TEACHERS", "TEACHERS",
           "register_builtins", "trainer_module", "trains", "uses_teacher"]
