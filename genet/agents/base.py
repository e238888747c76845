"""The one interface of trainable agents (PPO, behaviour cloning, DAgger, ...), for every use case.

A *trainable agent* owns a network and what trains it (optimiser, schedules, an aggregated data set), and
answers five verbs::

    choice = agent.act(observations, rng)        # select actions for a batch of sessions (ActionChoice)
    batch = agent.make_batch(trajectory)         # a rollout (Trajectory) -> training tensors
    stats = agent.train_on(batch)                # optimisation steps on one batch -> statistics (floats)
    state = agent.state_dict(); agent.load_state_dict(state)   # save / load (checkpoints hold the dict)
    agent.export_onnx(path, spec, ...)           # the policy network as a self-describing ONNX policy

Where trajectories come from (an environment, a teacher's labels, logged runs) is the use case's training
driver's business (``genet/abr/training.py`` for PPO, ``genet/abr/imitation.py`` for BC and DAgger), not the
agent's; the driver hands the agent :class:`Trajectory` records and counts steps. Agents are made by name
through :data:`genet.agents.registry.AGENTS`.

``network`` is a ``torch.nn.Module`` whose ``forward(observations)`` returns what the use case's
:class:`genet.policy.PolicySpec` says (ABR: action probabilities): export writes exactly that module, so an
agent's ONNX file runs through the same policy registry as any other (``genet eval abr --policy FILE.onnx``).
Agents that share a network class share checkpoints' ``net`` entry: a behaviour-cloned ABR actor can be loaded
into PPO (``genet train abr --agent ppo --init-from RUN/model.pt``).

Discrete actions are drawn with :func:`sample_actions` (inverse CDF from the caller's numpy Generator:
Pensieve-PPO's distribution; the same rule the ABR PPO rollouts have always used).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np


@dataclass
class ActionChoice:
    """What :meth:`TrainableAgent.act` chose for a batch of ``n`` sessions.

    actions: (n,) int64 discrete actions (or (n, d) floats for continuous ones)
    log_probs: (n,) log-probability of each chosen action under the agent's policy (float32; None: not computed)
    entropies: (n,) entropy of each session's action distribution (float32; None: not computed)
    """

    actions: np.ndarray
    log_probs: np.ndarray | None = None
    entropies: np.ndarray | None = None


@dataclass
class Trajectory:
    """A rollout of ``T`` decisions in each of ``N`` sessions (arrays (T, N, ...)), what agents learn from.

    observations: (T, N, *observation_shape) float32, the state each decision saw
    actions: (T, N) the actions taken (int64 for discrete actions)
    rewards: (T, N) rewards of those actions (float64)
    terminated: (T, N) the episode ended with this step (no bootstrap)
    truncated: (T, N) the episode was cut here (bootstrapped; None: never)
    final_observations: (N, *observation_shape) the state after the last decision (None: not kept)
    next_observations: (T, N, *observation_shape) the state after every decision (None: not kept)
    log_probs: (T, N) log-probability of each action when it was taken (None: not kept)
    entropies: (T, N) entropy of the acting distribution (None: not kept)
    teacher_actions: (T, N) a teacher's label for every state, in the agent's action semantics (None: none)
    episode_returns: returns of the episodes that ended during the rollout
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray | None = None
    final_observations: np.ndarray | None = None
    next_observations: np.ndarray | None = None
    log_probs: np.ndarray | None = None
    entropies: np.ndarray | None = None
    teacher_actions: np.ndarray | None = None
    episode_returns: list[float] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        """(T, N)."""
        return tuple(self.rewards.shape[:2])  # type: ignore[return-value]


def sample_actions(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``probabilities`` (n, k) by inverse CDF with ``rng.random(n)`` (the draw is scaled
    by each row's total, so rows need not sum to exactly 1); int64."""
    probs = np.asarray(probabilities, dtype=np.float64)
    u = rng.random(probs.shape[0])
    cum = np.cumsum(probs, axis=1)
    return np.minimum(np.argmax(cum > u[:, None] * cum[:, -1:], axis=1), probs.shape[1] - 1)


class TrainableAgent(ABC):
    """A learning method behind the one agent interface (see the module docstring).

    name: the registry name ("ppo", "bc", "dagger")
    network: the torch module export writes (forward: observations -> the spec's output)
    """

    name: str = "agent"
    network: Any

    @abstractmethod
    def act(self, observations: np.ndarray, rng: np.random.Generator, deterministic: bool = False) -> ActionChoice:
        """Actions for a batch of observations ((n, *observation_shape)): sampled from the policy with ``rng``,
        or its most likely action when ``deterministic``."""

    @abstractmethod
    def make_batch(self, trajectory: Trajectory) -> dict[str, Any]:
        """Turn one rollout into what :meth:`train_on` consumes (tensors, plus whatever statistics need)."""

    @abstractmethod
    def train_on(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """Optimisation steps on ``batch``; returns statistics for the learning curve (floats)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (network, optimiser, schedules, data), picklable."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        """The network's output for a batch of observations (numpy, no gradient)."""
        import torch
        self.network.eval()
        with torch.no_grad():
            out = self.network(torch.as_tensor(np.asarray(observations, np.float32)))
        return out.numpy()

    def export_onnx(self, path: str | Path, spec: Any, extra_metadata: Mapping[str, Any] | None = None,
                    check_observations: np.ndarray | None = None) -> Path:
        """Write :attr:`network` as an ONNX policy with ``spec`` (:class:`genet.policy.PolicySpec`) and metadata,
        checked against torch on ``check_observations`` (:func:`genet.policy.export_onnx`)."""
        from genet.policy import export_onnx
        return export_onnx(self.network, spec, path, extra_metadata=dict(extra_metadata or {}),
                           check_observations=check_observations)


__all__ = ["ActionChoice", "Trajectory", "TrainableAgent", "sample_actions"]


class LearnerPolicy:
    """For a use case's agent record that holds its trainable agent in ``learner``: the policy network
    (what export writes and ``test`` runs) and its action probabilities, delegated to the learner."""

    learner: "TrainableAgent"

    @property
    def net(self):
        return self.learner.network

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        return self.learner.probabilities(observations)
