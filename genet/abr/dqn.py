"""Double DQN for ABR (agent ``dqn``, genet/agents/dqn.py): what ``genet train abr --agent dqn`` runs.

The PPO use case (:class:`genet.abr.training.AbrUseCase`: environments drawn from the config space or real traces,
lockstep rollouts of ``n_envs`` sessions x ``rollout_steps`` decisions on one batched simulator, checkpoints,
``test``, export, the curriculum methods) with another learner: the sessions act ε-greedily on a Q-network
(:class:`PensieveQNetwork`: the Pensieve tower over the same ``abr.pensieve-6x8`` state, one Q-value per
bitrate), every rollout's transitions go into the replay buffer, and each update takes the gradient steps they
are owed (one per ``train_every`` transitions; Double-DQN targets from a target network, Huber loss). The rollouts
run in this process (``rollout_workers`` 1).

``genet train abr --agent dqn`` reads ``--lr`` (Adam, default 1e-4) and ``--minibatch`` (default 128) for the
learner, the environment options as PPO; ε decays over the first ``EXPLORATION_FRACTION`` of ``--steps`` (at
most :class:`~genet.agents.dqn.DqnConfig`'s 100,000 transitions), and learning starts after 2,000 transitions or
a tenth of ``--steps``, whichever comes first. The exported policy acts greedily (its output
is the one-hot of argmax Q; the Q-values are a second output, ``q_values``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from foundation.errors import BadInputError
from genet.abr.pensieve_net import PensieveActor
from genet.abr.training import AbrRollout, AbrTrainConfig, AbrUseCase, train_config_from_args
from genet.abr.training import export_policy as _export_policy
from genet.agents.base import LearnerPolicy
from genet.agents.dqn import DqnAgent, DqnConfig
from genet.ppo.checkpoint import load_checkpoint, save_checkpoint
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads
from traces.config_space import ConfigSpace
from traces.trace import Trace

#: Checkpoints of ``--agent dqn`` (the Q-network under ``net``: not an actor-critic, so PPO cannot start from one).
DQN_FORMAT = "genet-abr-dqn-v1"
#: ε falls over this share of the run's --steps (capped by DqnConfig.epsilon_decay_steps).
EXPLORATION_FRACTION = 0.25
#: torch threads when --torch-threads is not given: a 128-transition gradient step gains nothing from a second
#: thread and loses much when another process holds the other core (as bc/dagger).
DQN_TORCH_THREADS = 1


class PensieveQNetwork(nn.Module):
    """Q-values over a (6, s_len) ABR state: the Pensieve tower (:class:`genet.abr.pensieve_net.PensieveActor`, one
    definition with the actor PPO trains) whose linear head gives one value per action (no softmax)."""

    def __init__(self, s_len: int = 8, n_actions: int = 6, row4_len: int = 6) -> None:
        super().__init__()
        self.obs_shape = (6, s_len)
        self.n_actions = n_actions
        self.tower = PensieveActor(s_len=s_len, n_actions=n_actions, n_levels=row4_len)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.tower.logits(obs)


@dataclass
class AbrDqnAgent(LearnerPolicy, TrainingProgress):
    """A DQN ABR policy in training: the learner (:class:`genet.agents.dqn.DqnAgent`), the environment config,
    the rollout, and the counters of :class:`~genet.ppo.progress.TrainingProgress`."""

    learner: DqnAgent
    config: AbrTrainConfig
    rollout: AbrRollout | None = None


class AbrDqnUseCase(AbrUseCase):
    """:class:`~genet.abr.training.AbrUseCase` with the Double-DQN learner (see the module docstring).

    config: environment and rollout settings (the PPO fields are not used; ``rollout_workers`` must be 1)
    dqn: :class:`~genet.agents.dqn.DqnConfig`
    video, real_traces, on_update, space: as :class:`~genet.abr.training.AbrUseCase`
    """

    def __init__(self, config: AbrTrainConfig | None = None, dqn: DqnConfig | None = None, **kwargs: Any) -> None:
        config = config or AbrTrainConfig()
        if config.rollout_workers != 1:
            raise BadInputError(f"--agent dqn steps its sessions in this process: --rollout-workers must be 1, got "
                                f"{config.rollout_workers}")
        self.dqn = dqn or DqnConfig()
        super().__init__(config, **kwargs)

    # ---------------------------------------------------------------- models
    def new_model(self, seed: int) -> AbrDqnAgent:
        set_torch_threads(self.config.torch_threads)
        torch.manual_seed(seed)
        net = PensieveQNetwork(s_len=self.layout.shape[1], n_actions=self.layout.n_actions,
                               row4_len=self.video.n_levels)
        return AbrDqnAgent(DqnAgent(net, self.dqn, seed=seed), self.config, seed=seed)

    def save_model(self, agent: AbrDqnAgent, path: Path) -> None:
        """Write the agent atomically: Q-network, target network, optimiser, replay buffer and its Generator,
        counters, history and the rollout (simulator, state matrices, RNG)."""
        import pickle
        blob = {"format": DQN_FORMAT, "use_case": self.name, "agent": "dqn", "config": asdict(agent.config),
                **agent.learner.state_dict(), **agent.progress_state(),
                "rollout": None if agent.rollout is None else pickle.dumps(agent.rollout)}
        save_checkpoint(blob, Path(path))

    def load_model(self, path: Path) -> AbrDqnAgent:
        import pickle
        blob = load_checkpoint(Path(path), DQN_FORMAT, "ABR dqn")
        self.config = AbrTrainConfig(**blob["config"])
        self.dqn = DqnConfig(**blob["dqn"])
        agent = self.new_model(blob["seed"])
        agent.learner.load_state_dict(blob)
        agent.restore_progress(blob)
        agent.rollout = None if blob["rollout"] is None else pickle.loads(blob["rollout"])
        return agent

    def model_from(self, path: Path, seed: int) -> AbrDqnAgent:
        """A new DQN agent (empty replay, fresh optimiser and ε) whose Q-network (and target) start from a DQN
        checkpoint's (``--init-from``); an actor-critic checkpoint (ppo, a3c, bc, dagger) is refused."""
        blob = load_checkpoint(Path(path), DQN_FORMAT, "ABR dqn")
        agent = self.new_model(seed)
        try:
            agent.learner.q_network.load_state_dict(blob["net"])
        except RuntimeError as exc:  # another layout or ladder
            raise BadInputError(f"{path}: its Q-network does not fit layout {self.layout.name} with "
                                f"{self.video.n_levels} levels ({str(exc).splitlines()[0]})") from None
        agent.learner.target.load_state_dict(blob["net"])
        return agent

    # ------------------------------------------------------------------ test
    def policy_object(self, policy: Any, deterministic: bool = True, seed: int | None = None) -> Any:
        from genet.policy import TorchPolicy
        if isinstance(policy, AbrDqnAgent):
            return TorchPolicy(policy.net, self.layout.policy_spec(), deterministic, seed, name="dqn")
        return super().policy_object(policy, deterministic, seed)


# ------------------------------------------------------------- CLI hooks
def dqn_config_from_args(args: Any) -> DqnConfig:
    """The :class:`DqnConfig` of ``genet train abr --agent dqn`` options (``--lr``, ``--minibatch``,
    ``--train-every``; from
    ``--steps``, ε's decay (see the module docstring) and the first gradient step: after a tenth of the run at
    most)."""
    d = DqnConfig()
    steps = getattr(args, "steps", None)
    decay = min(d.epsilon_decay_steps, max(1, int(EXPLORATION_FRACTION * int(steps)))) if steps else \
        d.epsilon_decay_steps
    starts = min(d.learning_starts, int(steps) // 10) if steps else d.learning_starts
    return DqnConfig(learning_rate=float(getattr(args, "lr", None) or d.learning_rate),
                     minibatch=int(getattr(args, "minibatch", None) or d.minibatch),
                     train_every=int(getattr(args, "train_every", None) or d.train_every), epsilon_decay_steps=decay,
                     learning_starts=starts)


def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[Any, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> AbrDqnUseCase:
    """The DQN use case from ``genet train abr --agent dqn`` options (see the module docstring)."""
    from genet.abr.imitation import argparse_without
    cfg = train_config_from_args(argparse_without(args, "lr", "minibatch", "epochs"))
    if getattr(args, "torch_threads", None) is None:
        cfg = replace(cfg, torch_threads=DQN_TORCH_THREADS)
    return AbrDqnUseCase(cfg, dqn_config_from_args(args), real_traces=real_traces, on_update=on_update, space=space)


def train_config_dict(use_case: AbrDqnUseCase) -> dict:
    return {**asdict(use_case.config), "video": use_case.video.source, "agent": "dqn", "dqn": asdict(use_case.dqn)}


def export_policy(use_case: AbrDqnUseCase, agent: AbrDqnAgent, path: Any, metadata: dict | None = None,
                  n_check: int = 1000) -> Any:
    """The greedy policy as an ONNX policy (as a PPO policy: :func:`genet.abr.training.export_policy`; its first
    output the one-hot of argmax Q, its second the Q-values), the metadata naming the agent and its settings."""
    return _export_policy(use_case, agent, path, {"agent": "dqn", "dqn": asdict(agent.learner.config),
                                                  "grad_steps": agent.learner.grad_steps, **(metadata or {})}, n_check)


__all__ = ["AbrDqnAgent", "AbrDqnUseCase", "PensieveQNetwork", "DQN_FORMAT", "build_use_case",
           "dqn_config_from_args", "export_policy", "train_config_dict"]
