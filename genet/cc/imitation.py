"""Imitation learning of Aurora policies (agents ``bc`` and ``dagger``, genet/agents/imitation.py) from the
simulator's BBR or Cubic: what ``genet train cc --agent bc|dagger --teacher bbr|cubic`` runs.

:class:`CcImitationUseCase` is the PPO use case (:class:`genet.cc.training.CcUseCase`: the same environments
drawn from the config space or real traces, ``n_envs`` :class:`~genet.cc.env.AuroraEnv` sessions stepped in
lockstep, ``steps_per_update`` transitions per update, the same ``test``, checkpoints and export) with another
learner. Every session has a **teacher** running shadow-wise on its packet stream
(:class:`genet.cc.teacher.ShadowTeacher`: BBR's or Cubic's state updated by the simulator's own callbacks from
every send, ACK and loss notice of the session's sender); at every monitor interval the state the student sees
(the 30-value Aurora observation) is labelled with the action that moves the session's sender from its current
rate to the rate the teacher would send at over the next interval (:func:`genet.cc.teacher.rate_action`:
Aurora's rate mapping inverted, clipped to +-2). One update = one rollout (BC: the teacher's labels are executed;
DAgger: the student's action, the mean of its Gaussian, is executed, the teacher's instead with probability β_i)
-> aggregate the labelled states -> Adam steps of mean squared error on the aggregate
(:class:`genet.agents.imitation.ImitationAgent`). genet/cc/teacher.py says what the shadow approximates.

The student is :class:`~genet.ppo.networks.AuroraActorCritic` (only its mean network ``pi`` is trained), so it
exports (``genet export``, the same metadata as a PPO model: history length, start-up, interval rule, delta),
evaluates (``genet eval cc --policy x.onnx``) and fine-tunes with PPO (``genet train cc --agent ppo --init-from
RUN/model.pt``) like any CC model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from genet.agents.base import LearnerPolicy, Trajectory
from genet.agents.imitation import (ImitationAgent, ImitationConfig, ImitationUseCaseMixin, argparse_without,
                                    imitation_config_from_args)
from genet.agents.registry import DEFAULT_TEACHERS
from genet.agents.registry import TEACHERS as _TEACHERS
from genet.cc.env import AuroraEnv
from genet.cc.teacher import ShadowTeacher, rate_action
from genet.cc.training import (IMITATION_FORMAT, CcTrainConfig, CcUseCase, RolloutState, train_config_from_args)
from genet.cc.training import export_policy as export_ppo_policy
from genet.ppo.networks import AuroraActorCritic
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads
from traces.config_space import ConfigSpace
from traces.trace import Trace

#: Teachers a CC student can learn from (genet/cc/teacher.py) and the default one.
TEACHERS = _TEACHERS["cc"]
DEFAULT_TEACHER = DEFAULT_TEACHERS["cc"]


@dataclass
class CcImitationRollout(RolloutState):
    """:class:`~genet.cc.training.RolloutState` plus each session's shadow teacher."""

    teachers: list[ShadowTeacher] = field(default_factory=list)


@dataclass
class CcImitationAgent(LearnerPolicy, TrainingProgress):
    """A CC student in training: the learner (:class:`genet.agents.imitation.ImitationAgent`), the training
    config, the teacher's name, the rollout, and the counters of :class:`~genet.ppo.progress.TrainingProgress`."""

    learner: ImitationAgent
    config: CcTrainConfig
    teacher: str
    rollout: CcImitationRollout | None = None


class CcImitationUseCase(ImitationUseCaseMixin, CcUseCase):
    """CC imitation training (see the module docstring).

    agent: "bc" or "dagger" (a name of :data:`genet.agents.registry.AGENTS` whose learner imitates)
    teacher: "bbr" or "cubic"
    config: environment and rollout settings (:class:`~genet.cc.training.CcTrainConfig`; the PPO fields are not
        used; ``rollout_workers`` must be 1)
    imitation: :class:`~genet.agents.imitation.ImitationConfig`
    real_traces, on_update, space: as :class:`~genet.cc.training.CcUseCase`
    """

    imitation_format = IMITATION_FORMAT
    checkpoint_label = "CC imitation"
    config_type = CcTrainConfig
    teacher_names = TEACHERS

    def __init__(self, agent: str = "dagger", teacher: str = DEFAULT_TEACHER, config: CcTrainConfig | None = None,
                 imitation: ImitationConfig | None = None, real_traces: Sequence[Trace] | None = None,
                 on_update: Callable[[Any, dict], None] | None = None, space: ConfigSpace | None = None) -> None:
        config = config or CcTrainConfig()
        self._check_imitation(agent, teacher, config.rollout_workers)
        self.agent_name = agent
        self.teacher = teacher
        self.imitation = imitation or ImitationConfig()
        super().__init__(config, real_traces=real_traces, on_update=on_update, space=space)

    # ---------------------------------------------------------------- models
    def new_model(self, seed: int) -> CcImitationAgent:
        from genet.agents.registry import AGENTS
        cfg = self.config
        set_torch_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        net = AuroraActorCritic(obs_dim=cfg.aurora().observation_size)
        learner = AGENTS.make(self.agent_name, network=net, config=self.imitation, seed=seed,
                              parameters=net.pi.parameters())
        return CcImitationAgent(learner, cfg, self.teacher, seed=seed)

    def _pack_rollout(self, rollout: CcImitationRollout) -> CcImitationRollout:
        return _picklable(rollout)

    def _unpack_rollout(self, r: CcImitationRollout) -> CcImitationRollout:
        gen = torch.Generator()
        gen.set_state(r.torch_gen)
        return replace(r, torch_gen=gen)

    # --------------------------------------------------------------- sessions
    def _reset_session(self, roll: CcImitationRollout, i: int, distribution: Any) -> np.ndarray:
        """A new episode in session ``i`` with a fresh teacher that has seen its first interval."""
        env = roll.envs[i]
        trace = self._episode_trace(distribution, roll.rng)
        obs, _ = env.reset(seed=int(roll.rng.integers(2**31 - 1)), options={"trace": trace})
        teacher = ShadowTeacher(self.teacher, 2.0 * env.link.delay_ms / 1000.0, seed=int(roll.rng.integers(2**31 - 1)))
        if i < len(roll.teachers):
            roll.teachers[i] = teacher
        else:
            roll.teachers.append(teacher)
        self._feed(teacher, env)
        return obs

    @staticmethod
    def _feed(teacher: ShadowTeacher, env: AuroraEnv) -> None:
        """The session's events since the last call (one interval, sent at the rate now in force), to its teacher,
        Cubic's window first set to the student's (:meth:`~genet.cc.teacher.ShadowTeacher.sync_window`)."""
        teacher.sync_window(env.rate_pps)
        for log in env.episode_logs:
            teacher.observe_log(log)
        env.episode_logs.clear()

    def _start_rollout(self, distribution: Any, seed: int) -> CcImitationRollout:
        cfg = self.config
        gen = torch.Generator()
        gen.manual_seed(seed)
        roll = CcImitationRollout([AuroraEnv(env_config=self.space.default(), aurora=cfg.aurora())
                                   for _ in range(cfg.n_envs)], np.zeros((cfg.n_envs, cfg.aurora().observation_size)),
                                  np.zeros(cfg.n_envs), np.zeros(cfg.n_envs, np.int64), np.random.default_rng(seed),
                                  gen)
        for i in range(cfg.n_envs):
            roll.obs[i] = self._reset_session(roll, i, distribution)
        return roll

    def teacher_labels(self, roll: CcImitationRollout) -> np.ndarray:
        """(n_envs, 1) float32: every session's teacher label for its current state (module docstring)."""
        aurora = self.config.aurora()
        rates = np.array([env.rate_pps for env in roll.envs])
        targets = np.array([t.rate_pps() for t in roll.teachers])
        return rate_action(rates, targets, aurora.delta_scale, aurora.min_rate_pps,
                           aurora.max_rate_pps)[:, None].astype(np.float32)

    # -------------------------------------------------------------- training
    def collect(self, agent: CcImitationAgent, distribution: Any) -> dict[str, Any]:
        """One rollout of ``steps_per_env`` monitor intervals in every session, every state labelled by its
        teacher; who drives is the learner's :meth:`~genet.agents.imitation.ImitationAgent.teacher_share`."""
        cfg, roll, learner = agent.config, agent.rollout, agent.learner
        T, N = cfg.steps_per_env, cfg.n_envs
        D = roll.obs.shape[1]
        obs_buf = np.zeros((T, N, D), np.float32)
        act_buf = np.zeros((T, N, 1), np.float32)
        label_buf = np.zeros((T, N, 1), np.float32)
        rew = np.zeros((T, N))
        term = np.zeros((T, N), bool)
        trunc = np.zeros((T, N), bool)
        episodes: list[float] = []
        beta = learner.teacher_share()
        for t in range(T):
            obs = roll.obs.astype(np.float32)
            label = self.teacher_labels(roll)
            if beta >= 1.0:
                a = label
            else:
                a = np.asarray(learner.act(obs, roll.rng, deterministic=True).actions, np.float32).reshape(N, 1)
                if beta > 0.0:
                    a = np.where((roll.rng.random(N) < beta)[:, None], label, a)
            obs_buf[t], act_buf[t], label_buf[t] = obs, a, label
            for i, env in enumerate(roll.envs):
                o2, r, te, tr, _ = env.step(act_buf[t, i])
                self._feed(roll.teachers[i], env)
                rew[t, i], term[t, i], trunc[t, i] = r, te, tr
                roll.episode_return[i] += r
                roll.episode_steps[i] += 1
                if te or tr:
                    episodes.append(float(roll.episode_return[i]))
                    roll.episode_return[i], roll.episode_steps[i] = 0.0, 0
                    o2 = self._reset_session(roll, i, distribution)
                roll.obs[i] = o2
        return {"obs": obs_buf, "actions": act_buf, "teacher_actions": label_buf, "rewards": rew,
                "terminated": term, "truncated": trunc, "episode_returns": episodes}

    def update(self, agent: CcImitationAgent, batch: dict[str, Any]) -> dict[str, float]:
        """Aggregate the rollout's labelled states and train the student on the aggregate."""
        traj = Trajectory(batch["obs"], batch["actions"], batch["rewards"], batch["terminated"],
                          truncated=batch["truncated"], teacher_actions=batch["teacher_actions"],
                          episode_returns=batch["episode_returns"])
        learner = agent.learner
        return learner.train_on(learner.make_batch(traj))

    def test(self, policy: Any, configs: list[dict], seed: int) -> np.ndarray:
        """:meth:`CcUseCase.test`; a student runs as its network (the Gaussian mean)."""
        return super().test(policy.net if isinstance(policy, CcImitationAgent) else policy, configs, seed)


def _picklable(roll: CcImitationRollout) -> CcImitationRollout:
    """The rollout with its torch Generator as its state (a Generator does not pickle)."""
    return replace(roll, torch_gen=roll.torch_gen.get_state())


# ------------------------------------------------------------- CLI hooks
def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[Any, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> CcImitationUseCase:
    """The imitation use case from ``genet train cc --agent bc|dagger`` options: the environment and rollout
    options of PPO (``--n-envs``, ``--steps-per-update``, ``--history-length``, ``--startup``, ...),
    ``--teacher``, and the imitation settings ``--lr``, ``--minibatch``, ``--grad-steps``, ``--beta-decay``
    (:func:`genet.agents.imitation.imitation_config_from_args`)."""
    cfg = train_config_from_args(argparse_without(args, "lr", "minibatch", "epochs"))
    return CcImitationUseCase(getattr(args, "agent", "dagger"), getattr(args, "teacher", None) or DEFAULT_TEACHER,
                              cfg, imitation_config_from_args(args, cfg.batch_size), real_traces=real_traces,
                              on_update=on_update, space=space)


def train_config_dict(use_case: CcImitationUseCase) -> dict:
    return {**asdict(use_case.config), "agent": use_case.agent_name, "teacher": use_case.teacher,
            "imitation": asdict(use_case.imitation)}


def export_policy(use_case: CcImitationUseCase, agent: CcImitationAgent, path: str | Path,
                  metadata: dict[str, Any] | None = None, n_check: int = 1000) -> Path:
    """The student's mean network as an ONNX policy (as a PPO policy: :func:`genet.cc.training.export_policy`,
    the same metadata), naming the agent and the teacher."""
    extra = {"agent": use_case.agent_name, "teacher": use_case.teacher, **(metadata or {})}
    return export_ppo_policy(use_case, agent, path, extra, n_check)


__all__ = ["CcImitationAgent", "CcImitationRollout", "CcImitationUseCase", "DEFAULT_TEACHER", "TEACHERS",
           "build_use_case", "export_policy", "train_config_dict"]
