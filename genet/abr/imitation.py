"""Imitation learning of ABR policies (agents ``bc`` and ``dagger``, genet/agents/imitation.py) on the batched
simulator: what ``genet train abr --agent bc|dagger --teacher NAME`` runs.

:class:`AbrImitationUseCase` is the PPO use case (:class:`genet.abr.training.AbrUseCase`: the same environments
drawn from the config space or real traces, the same lockstep rollouts of ``n_envs`` sessions x
``rollout_steps`` decisions on one :class:`~genet.abr.core.BatchedAbrSim`, the same ``test``, checkpoints every
``--checkpoint-every`` updates, the same export) with another learner: every decision of every session is
labelled by a **teacher** from the ABR policy registry (:data:`genet.abr.registry.POLICIES`), who sees the
session's ``abr.raw`` measurements after every chunk exactly as in ``genet eval abr`` (RobustMPC's throughput
predictor follows the session's chunks, whoever chose them); the student (the Pensieve actor-critic PPO uses,
so the result exports and evaluates as any trained policy) sees the ``abr.pensieve-6x8`` state. One update =
one rollout (BC: the teacher drives; DAgger: the student drives, the teacher's action executed with probability
β_i) -> aggregate the labelled states -> Adam steps on the aggregate.

Teachers:

* ``bba``, ``mpc`` (causal): labels every state the rollout visits;
* ``optimal``: the offline optimum (genet/abr/optimal.py), which knows each session's whole trace. Its plan is
  made when a video starts, from the trace's first sample without delay noise, so with this teacher the training
  environments play from the trace start without delay noise (Pensieve training's random start and noise are
  turned off). Its label for a state is the plan's quality for the next chunk: the optimum of the teacher's own
  trajectory, exact for BC; in DAgger's student-driven states it is the plan's choice for that chunk, not a
  re-planned optimum from the state the student reached (re-planning every state would cost a dynamic
  programme per decision).

Labels are in the student's action semantics (``abr.direct6``: the teacher's quality; ``abr.jump3``: the
teacher's quality relative to the last one, clamped to one step).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from genet.abr.observations import RAW_FIELDS, StateBuilder, raw_observation, to_quality
from genet.abr.training import (IMITATION_FORMAT, AbrRollout, AbrTrainConfig, AbrUseCase, train_config_from_args)
from genet.abr.training import export_policy as export_ppo_policy
from genet.abr.video import SessionVideos, Video
from genet.agents.base import LearnerPolicy, Trajectory
from genet.agents.imitation import (ImitationAgent, ImitationConfig, ImitationUseCaseMixin, argparse_without,
                                    imitation_config_from_args)
from genet.agents.registry import DEFAULT_TEACHER
from genet.agents.registry import TEACHERS as _TEACHERS
from genet.ppo.networks import PensieveActorCritic
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads
from traces.config_space import ConfigSpace
from traces.trace import Trace

#: torch threads of ``genet train abr --agent bc|dagger`` when --torch-threads is not given: a minibatch of 256
#: states gains nothing from a second thread, and loses ~10x when another process holds the other core.
IMITATION_TORCH_THREADS = 1
#: Teachers a student can learn from (names of genet.abr.registry.POLICIES).
TEACHERS = _TEACHERS["abr"]


@dataclass
class ImitationRollout(AbrRollout):
    """:class:`~genet.abr.training.AbrRollout` plus the teacher's view of the sessions.

    teacher: the teacher policy (stateful: RobustMPC's predictor per session)
    last_raw: (n_envs, 9) the ``abr.raw`` measurements of every session's last chunk (the teacher's next input)
    """

    teacher: Any = None
    last_raw: np.ndarray | None = None


class _PlanTeacher:
    """The offline optimum as a teacher: plans each session's video when it starts (:func:`optimal_plan` of its
    trace and EnvParams) and labels a state with the plan's quality for the next chunk."""

    name = "optimal"

    def __init__(self, video: Video, conv: Any) -> None:
        from genet.abr.observations import RAW
        self.spec = RAW.policy_spec()
        self.video, self.conv = video, conv
        self.plans: list[np.ndarray] = []

    def bind(self, videos: Any) -> None:
        return None

    def reset(self, mask: np.ndarray | None = None) -> None:
        return None

    def start(self, sim: Any, params: Sequence[Any], mask: np.ndarray) -> None:
        from genet.abr.optimal import optimal_plan
        if len(self.plans) != sim.n_envs:
            self.plans = [np.zeros(1, np.int64)] * sim.n_envs
        for i in np.flatnonzero(mask).tolist():
            k = int(sim.tr_id[i])
            self.plans[i] = optimal_plan(sim.traces[k], self.video, self.conv, params[k])[0]

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        nxt = np.asarray(observations)[:, 5].astype(np.int64)
        return np.array([p[min(c, len(p) - 1)] for p, c in zip(self.plans, nxt.tolist())], np.int64)


def teacher_labels(qualities: np.ndarray, last_quality: np.ndarray, semantics: str) -> np.ndarray:
    """The teacher's chosen qualities as actions of the student's ``semantics`` (abr.direct6 / abr.jump3)."""
    q = np.asarray(qualities, np.int64)
    if semantics == "abr.direct6":
        return q
    return np.clip(q - np.asarray(last_quality, np.int64) + 1, 0, 2)


@dataclass
class AbrImitationAgent(LearnerPolicy, TrainingProgress):
    """A student in training: the learner (:class:`genet.agents.imitation.ImitationAgent`), the training config,
    the teacher's name, the rollout, and the counters of :class:`~genet.ppo.progress.TrainingProgress`."""

    learner: ImitationAgent
    config: AbrTrainConfig
    teacher: str
    rollout: ImitationRollout | None = None


class AbrImitationUseCase(ImitationUseCaseMixin, AbrUseCase):
    """ABR imitation training (see the module docstring).

    agent: "bc" or "dagger" (a name of :data:`genet.agents.registry.AGENTS` whose learner imitates)
    teacher: "bba", "mpc" or "optimal"
    config: environment and rollout settings (:class:`~genet.abr.training.AbrTrainConfig`; the PPO fields are
        not used; ``rollout_workers`` must be 1)
    imitation: :class:`~genet.agents.imitation.ImitationConfig`
    video, real_traces, on_update, space: as :class:`~genet.abr.training.AbrUseCase`
    """

    imitation_format = IMITATION_FORMAT
    checkpoint_label = "ABR imitation"
    config_type = AbrTrainConfig
    teacher_names = TEACHERS

    def __init__(self, agent: str = "dagger", teacher: str = DEFAULT_TEACHER, config: AbrTrainConfig | None = None,
                 imitation: ImitationConfig | None = None, video: Video | None = None,
                 real_traces: Sequence[Trace] | None = None, on_update: Callable[[Any, dict], None] | None = None,
                 space: ConfigSpace | None = None) -> None:
        config = config or AbrTrainConfig()
        self._check_imitation(agent, teacher, config.rollout_workers)
        if teacher == "optimal":  # the plan is made from the trace start without noise (module docstring)
            config = replace(config, delay_noise=False, random_start=False)
        self.agent_name = agent
        self.teacher = teacher
        self.imitation = imitation or ImitationConfig()
        super().__init__(config, video=video, real_traces=real_traces, on_update=on_update, space=space)

    # ---------------------------------------------------------------- models
    def new_model(self, seed: int) -> AbrImitationAgent:
        from genet.agents.registry import AGENTS
        set_torch_threads(self.config.torch_threads)
        torch.manual_seed(seed)
        net = PensieveActorCritic(s_len=self.layout.shape[1], n_actions=self.layout.n_actions,
                                  row4_len=self.video.n_levels)
        learner = AGENTS.make(self.agent_name, network=net, config=self.imitation, seed=seed)
        return AbrImitationAgent(learner, self.config, self.teacher, seed=seed)

    # --------------------------------------------------------------- teacher
    def _make_teacher(self) -> Any:
        from genet.abr.registry import make_policy
        conv = self.config.train_conventions()
        if self.teacher == "optimal":
            return _PlanTeacher(self.video, conv)
        return make_policy(self.teacher, rebuffer_penalty=conv.rebuffer_penalty, smooth_penalty=conv.smooth_penalty)

    def _bind_teacher(self, roll: ImitationRollout) -> None:
        sim = roll.sim
        roll.teacher.bind(SessionVideos(sim.bitrates_kbps, sim.sizes, sim.n_chunks, sim.chunk_ms / 1000.0,
                                        self.video.chunk_sizes_bytes))

    def _videos_started(self, roll: AbrRollout, mask: np.ndarray, first: Any) -> None:
        self._bind_teacher(roll)
        roll.teacher.reset(mask)
        if isinstance(roll.teacher, _PlanTeacher):
            roll.teacher.start(roll.sim, roll.params, mask)
        roll.last_raw[mask] = raw_observation(first)[mask]

    def _start_rollout(self, distribution: Any, seed: int) -> ImitationRollout:
        """As PPO's first rollout (the same draws), with the teacher following every session from its first chunk."""
        n = self.config.n_envs
        rng = np.random.default_rng(seed)
        sim, params = self._build_sim(None, distribution, rng)
        builder = StateBuilder(self.layout, n, float(np.max(sim.bitrates_kbps)))
        roll = ImitationRollout(sim, params, builder, rng, 0, 0, np.zeros(n), teacher=self._make_teacher(),
                                last_raw=np.zeros((n, len(RAW_FIELDS))))
        self._start_videos(roll, np.ones(n, bool))
        return roll

    def _before_collect(self, agent: Any, distribution: Any) -> None:
        super()._before_collect(agent, distribution)  # a new simulator over the running sessions + fresh traces
        self._bind_teacher(agent.rollout)

    # -------------------------------------------------------------- training
    def collect(self, agent: AbrImitationAgent, distribution: Any) -> dict[str, Any]:
        """One rollout of ``rollout_steps`` decisions in every session, every state labelled by the teacher; who
        drives is the learner's :meth:`~genet.agents.imitation.ImitationAgent.teacher_share`."""
        cfg, roll, learner = agent.config, agent.rollout, agent.learner
        T, N = cfg.rollout_steps, cfg.n_envs
        sim = roll.sim
        semantics = self.layout.action_semantics
        obs_buf = np.zeros((T, N, *self.layout.shape), np.float32)
        act_buf = np.zeros((T, N), np.int64)
        label_buf = np.zeros((T, N), np.int64)
        rew = np.zeros((T, N))
        term = np.zeros((T, N), bool)
        episodes: list[float] = []
        beta = learner.teacher_share()
        for t in range(T):
            obs = roll.builder.observation()
            label = teacher_labels(roll.teacher.act(roll.last_raw, None), sim.last_quality, semantics)
            if beta >= 1.0:
                a = label
            else:
                a = learner.act(obs, roll.rng).actions
                if beta > 0.0:
                    a = np.where(roll.rng.random(N) < beta, label, a)
            obs_buf[t], act_buf[t], label_buf[t] = obs, a, label
            r = sim.step(to_quality(a, sim.last_quality, semantics, sim.n_levels))
            roll.builder.update(r, sim.bitrates_kbps)
            roll.last_raw = raw_observation(r)
            rew[t] = r.reward
            term[t] = r.end_of_video
            roll.episode_return += r.reward
            if r.end_of_video.any():
                ended = r.end_of_video.copy()
                episodes.extend(roll.episode_return[ended].tolist())
                sim.done[:] = False  # autoreset off: restart the ended sessions ourselves
                self._start_videos(roll, ended)
        return {"obs": obs_buf, "actions": act_buf, "teacher_actions": label_buf, "rewards": rew,
                "terminated": term, "episode_returns": episodes}

    def update(self, agent: AbrImitationAgent, batch: dict[str, Any]) -> dict[str, float]:
        """Aggregate the rollout's labelled states and train the student on the aggregate."""
        traj = Trajectory(batch["obs"], batch["actions"], batch["rewards"], batch["terminated"],
                          teacher_actions=batch["teacher_actions"], episode_returns=batch["episode_returns"])
        learner = agent.learner
        return learner.train_on(learner.make_batch(traj))

    def policy_object(self, policy: Any, deterministic: bool = True, seed: int | None = None) -> Any:
        from genet.policy import TorchPolicy
        if isinstance(policy, AbrImitationAgent):
            return TorchPolicy(policy.net, self.layout.policy_spec(), deterministic, seed, name=self.agent_name)
        return super().policy_object(policy, deterministic, seed)


# ------------------------------------------------------------- CLI hooks
def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[Any, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> AbrImitationUseCase:
    """The imitation use case from ``genet train abr --agent bc|dagger`` options: the environment and rollout
    options of PPO (``--n-envs``, ``--steps-per-update``, ...), ``--teacher``, and the imitation settings
    ``--lr``, ``--minibatch``, ``--grad-steps``, ``--beta-decay`` (not given: :class:`ImitationConfig`'s); the
    learning rate decays linearly over the run's ``--steps`` (to a tenth)."""
    cfg = train_config_from_args(argparse_without(args, "lr", "minibatch", "epochs"))
    imitation = imitation_config_from_args(args, cfg.batch_size)
    if getattr(args, "torch_threads", None) is None:  # small minibatches: one thread (several lose to contention)
        cfg = replace(cfg, torch_threads=IMITATION_TORCH_THREADS)
    return AbrImitationUseCase(getattr(args, "agent", "dagger"), getattr(args, "teacher", None) or DEFAULT_TEACHER,
                               cfg, imitation, real_traces=real_traces, on_update=on_update, space=space)


def train_config_dict(use_case: AbrImitationUseCase) -> dict:
    return {**asdict(use_case.config), "video": use_case.video.source, "agent": use_case.agent_name,
            "teacher": use_case.teacher, "imitation": asdict(use_case.imitation)}


def export_policy(use_case: AbrImitationUseCase, agent: AbrImitationAgent, path: str | Path,
                  metadata: dict[str, Any] | None = None, n_check: int = 1000) -> Path:
    """The student's actor as an ONNX policy (as a PPO policy: :func:`genet.abr.training.export_policy`), its
    metadata naming the agent and the teacher."""
    extra = {"agent": use_case.agent_name, "teacher": use_case.teacher, **(metadata or {})}
    return export_ppo_policy(use_case, agent, path, extra, n_check)


__all__ = ["AbrImitationAgent", "AbrImitationUseCase", "ImitationRollout", "TEACHERS", "DEFAULT_TEACHER",
           "build_use_case", "export_policy", "teacher_labels", "train_config_dict"]
