"""Imitation learning behind the agent interface: behaviour cloning (``bc``) and DAgger (``dagger``).

Both train a policy network to pick the action a *teacher* picks in the same state (cross-entropy on the
teacher's label; the teacher is a policy of the use case's registry: ABR's ``bba``, ``mpc``, ``optimal``). They
differ only in who drives the rollouts the labels come from (:meth:`ImitationAgent.teacher_share`):

* **BC**: the teacher drives every rollout; the student learns the states the teacher visits.
* **DAgger** (Ross, Gordon & Bagnell 2011): the first rollout is the teacher's, later ones are driven by the
  student, with the teacher's action executed instead with probability β_i = ``beta_decay`` ** i (i = the
  rollout's index); every visited state is labelled by the teacher whoever drove, and aggregated.

Every rollout's labelled states join one aggregated data set (at most ``max_samples``: the oldest leave first),
and each :meth:`~ImitationAgent.train_on` takes ``steps`` Adam steps on minibatches drawn uniformly from the whole
aggregate (warm-started, so the cost of an update does not grow with the data set; Ross et al. retrain from
scratch, which over a few hundred rollouts would be quadratic).

The network is the one the use case's PPO trains (ABR: :class:`genet.ppo.networks.PensieveActorCritic`), so the
student exports, evaluates and fine-tunes with PPO (``--init-from``) like a PPO policy; only its actor is trained
here (its critic stays as initialised). Loss: cross-entropy of the actor's logits (``network.logits``; else the
log of ``forward``'s probabilities) against the labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch

from foundation.errors import BadInputError
from genet.agents.base import ActionChoice, TrainableAgent, Trajectory, sample_actions


@dataclass
class ImitationConfig:
    """Settings of BC and DAgger.

    learning_rate: Adam step size over the actor (1e-3)
    steps: Adam steps per update (rollout), each on a minibatch drawn from the whole aggregate (count, 40)
    minibatch: labelled states per Adam step (count, 256)
    max_samples: largest aggregated data set; the oldest states leave first (count, 300000)
    beta_decay: DAgger's probability of executing the teacher's action in rollout i is beta_decay ** i
        (rollout 0 is the teacher's; 0 = pure DAgger after it) (0.5)
    decay_rollouts: the learning rate falls linearly from ``learning_rate`` at rollout 0 to
        ``final_lr_fraction`` x it at this rollout and stays there (None: constant; ``genet train`` sets the run's
        number of updates, so the student settles instead of drifting at the last update)
    final_lr_fraction: see decay_rollouts (0.1)
    """

    learning_rate: float = 1e-3
    steps: int = 40
    minibatch: int = 256
    max_samples: int = 300_000
    beta_decay: float = 0.5
    decay_rollouts: int | None = None
    final_lr_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise BadInputError(f"imitation learning_rate must be > 0, got {self.learning_rate}")
        if self.steps < 1 or self.minibatch < 1 or self.max_samples < 1:
            raise BadInputError(f"imitation steps, minibatch and max_samples must be >= 1, got {self.steps}, "
                                f"{self.minibatch}, {self.max_samples}")
        if not 0 <= self.beta_decay <= 1:
            raise BadInputError(f"imitation beta_decay must be in [0, 1], got {self.beta_decay}")
        if self.decay_rollouts is not None and self.decay_rollouts < 1:
            raise BadInputError(f"imitation decay_rollouts must be None or >= 1, got {self.decay_rollouts}")
        if not 0 < self.final_lr_fraction <= 1:
            raise BadInputError(f"imitation final_lr_fraction must be in (0, 1], got {self.final_lr_fraction}")

    def learning_rate_at(self, rollout: int) -> float:
        """The learning rate of the update on rollout ``rollout`` (0-based; see decay_rollouts)."""
        if self.decay_rollouts is None:
            return self.learning_rate
        frac = min(rollout / self.decay_rollouts, 1.0)
        return self.learning_rate * (1.0 - frac * (1.0 - self.final_lr_fraction))


class ImitationAgent(TrainableAgent):
    """A student trained on a teacher's labels (see the module docstring); :class:`BcAgent` and
    :class:`DaggerAgent` set who drives the rollouts.

    network: the student (forward: observations -> action probabilities; ``logits`` when it has one)
    config: :class:`ImitationConfig`
    seed: seed of the minibatch draws (torch Generator)
    parameters: what Adam trains (None: ``network.actor``'s parameters when it has an actor, else all)
    """

    name = "imitation"
    #: the student drives the rollouts after the first (DAgger) or never (BC)
    student_drives = False

    def __init__(self, network: torch.nn.Module, config: ImitationConfig | None = None, seed: int = 0,
                 parameters: Any = None) -> None:
        self.network = network
        self.config = config or ImitationConfig()
        if parameters is None:
            actor = getattr(network, "actor", None)
            parameters = (actor if isinstance(actor, torch.nn.Module) else network).parameters()
        self.optimizer = torch.optim.Adam(parameters, lr=self.config.learning_rate)
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        self.observations: torch.Tensor | None = None  # the aggregate (oldest first)
        self.labels: torch.Tensor | None = None
        self.rollouts = 0  # rollouts aggregated so far

    # ------------------------------------------------------------------ act
    def teacher_share(self, rollout_index: int | None = None) -> float:
        """Probability that rollout ``rollout_index`` (default: the next) executes the teacher's action."""
        i = self.rollouts if rollout_index is None else rollout_index
        if not self.student_drives or i == 0:
            return 1.0
        return float(self.config.beta_decay ** i)

    def act(self, observations: np.ndarray, rng: np.random.Generator, deterministic: bool = False) -> ActionChoice:
        probs = self.probabilities(observations).astype(np.float64)
        a = np.argmax(probs, axis=1) if deterministic else sample_actions(probs, rng)
        return ActionChoice(a, np.log(probs[np.arange(len(a)), a]).astype(np.float32))

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        if hasattr(self.network, "logits"):
            return self.network.logits(obs)
        return torch.log(self.network(obs))

    # ---------------------------------------------------------------- batch
    def make_batch(self, trajectory: Trajectory) -> dict[str, Any]:
        """Aggregate the rollout's states with their teacher labels; the batch is the whole aggregate (plus the
        student's agreement with the teacher on this rollout's states, before training on them)."""
        if trajectory.teacher_actions is None:
            raise BadInputError(f"{self.name}: the trajectory carries no teacher labels (teacher_actions)")
        T, N = trajectory.shape
        obs = torch.from_numpy(np.ascontiguousarray(trajectory.observations, np.float32).reshape(
            T * N, *trajectory.observations.shape[2:]))
        labels = torch.from_numpy(np.asarray(trajectory.teacher_actions, np.int64).reshape(-1))
        with torch.no_grad():
            self.network.eval()
            agreement = float((self.logits(obs).argmax(dim=1) == labels).float().mean())
        if self.observations is None:
            self.observations, self.labels = obs.clone(), labels.clone()
        else:
            self.observations = torch.cat([self.observations, obs])[-self.config.max_samples:]
            self.labels = torch.cat([self.labels, labels])[-self.config.max_samples:]
        self.rollouts += 1
        return {"obs": self.observations, "labels": self.labels, "agreement_before": agreement,
                "teacher_share": self.teacher_share(self.rollouts - 1)}

    # ---------------------------------------------------------------- train
    def loss(self, obs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the student's action distribution against the teacher's labels."""
        return torch.nn.functional.cross_entropy(self.logits(obs), labels)

    def train_on(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """``steps`` Adam steps on minibatches drawn uniformly (with replacement) from ``batch``; returns the mean
        imitation loss and the agreement with the teacher over the minibatches."""
        obs, labels = batch["obs"], batch["labels"]
        n = int(labels.shape[0])
        lr = self.config.learning_rate_at(max(self.rollouts - 1, 0))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.network.train()
        loss_sum = agree = 0.0
        for _ in range(self.config.steps):
            idx = torch.randint(0, n, (min(self.config.minibatch, n),), generator=self.generator)
            logits = self.logits(obs[idx])
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss_sum += float(loss.detach())
            agree += float((logits.detach().argmax(dim=1) == labels[idx]).float().mean())
        steps = self.config.steps
        return {"imitation_loss": loss_sum / steps, "agreement": agree / steps,
                "agreement_before": float(batch.get("agreement_before", float("nan"))),
                "teacher_share": float(batch.get("teacher_share", float("nan"))), "samples": float(n),
                "learning_rate": lr}

    # ------------------------------------------------------------ save/load
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "imitation": asdict(self.config), "generator": self.generator.get_state(),
                "observations": self.observations, "labels": self.labels, "rollouts": self.rollouts}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.observations, self.labels = state["observations"], state["labels"]
        self.rollouts = int(state["rollouts"])


class BcAgent(ImitationAgent):
    """Behaviour cloning: the teacher drives every rollout."""

    name = "bc"
    student_drives = False


class DaggerAgent(ImitationAgent):
    """DAgger: the student drives (the teacher's action executed with probability β_i), the teacher labels."""

    name = "dagger"
    student_drives = True


__all__ = ["ImitationConfig", "ImitationAgent", "BcAgent", "DaggerAgent"]
