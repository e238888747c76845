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

The network is the one the use case's PPO trains (ABR: :class:`genet.ppo.networks.PensieveActorCritic`; CC:
:class:`genet.ppo.networks.AuroraActorCritic`), so the student exports, evaluates and fine-tunes with PPO
(``--init-from``) like a PPO policy; only its actor is trained here (its critic, and a Gaussian actor's log-std,
stay as initialised). Loss, by the labels' type:

* discrete actions (int labels, ABR): cross-entropy of the actor's logits (``network.logits``; else the log of
  ``forward``'s probabilities) against the labels; ``agreement`` = the share of states whose most likely action
  is the label;
* continuous actions (float labels (n, d), CC's rate action): mean squared error of ``forward`` (the Gaussian's
  mean, the deterministic action the exported policy takes) against the labels, the Gaussian log-likelihood's
  gradient for a fixed std; ``agreement`` = the share of states whose action is within
  :data:`AGREEMENT_TOLERANCE` of the label in every dimension. The student acts with its mean (DAgger's
  rollouts visit the states the exported, deterministic policy visits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch

from foundation.errors import BadInputError
from genet.agents.base import ActionChoice, TrainableAgent, Trajectory, sample_actions

#: Continuous actions: a student action within this distance of the teacher's label (every dimension) agrees.
AGREEMENT_TOLERANCE = 0.1


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

    @property
    def continuous(self) -> bool:
        """Whether the student's actions are continuous (a Gaussian actor with ``log_std``: Aurora's)."""
        return hasattr(self.network, "log_std")

    def act(self, observations: np.ndarray, rng: np.random.Generator, deterministic: bool = False) -> ActionChoice:
        if self.continuous:  # the mean, always (module docstring)
            return ActionChoice(self.probabilities(observations).astype(np.float32))
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
        teacher = np.asarray(trajectory.teacher_actions)
        if np.issubdtype(teacher.dtype, np.floating):
            labels = torch.from_numpy(np.ascontiguousarray(teacher, np.float32).reshape(T * N, -1))
        else:
            labels = torch.from_numpy(teacher.astype(np.int64).reshape(-1))
        with torch.no_grad():
            self.network.eval()
            agreement = self._agreement(obs, labels)
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
        """The imitation loss of the student against the teacher's labels: mean cross-entropy (discrete labels) or
        mean squared error of the action mean (float labels)."""
        return self._loss_and_agreement(obs, labels)[0]

    def _loss_and_agreement(self, obs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        if labels.is_floating_point():
            mean = self.network(obs)
            close = ((mean.detach() - labels).abs() <= AGREEMENT_TOLERANCE).all(dim=1)
            return torch.nn.functional.mse_loss(mean, labels), float(close.float().mean())
        logits = self.logits(obs)
        agree = float((logits.detach().argmax(dim=1) == labels).float().mean())
        return torch.nn.functional.cross_entropy(logits, labels), agree

    def _agreement(self, obs: torch.Tensor, labels: torch.Tensor) -> float:
        return self._loss_and_agreement(obs, labels)[1]

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
            loss, agreement = self._loss_and_agreement(obs[idx], labels[idx])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss_sum += float(loss.detach())
            agree += agreement
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


def imitation_config_from_args(args: Any, batch_size: int) -> ImitationConfig:
    """The imitation settings of ``genet train USE_CASE --agent bc|dagger`` options (every use case alike):
    ``--lr``, ``--minibatch``, ``--grad-steps``, ``--beta-decay`` (not given: :class:`ImitationConfig`'s); the
    learning rate decays linearly over the run's ``--steps`` (to a tenth) in updates of ``batch_size``
    transitions."""
    d = ImitationConfig()
    steps = getattr(args, "steps", None)
    return ImitationConfig(learning_rate=float(getattr(args, "lr", None) or d.learning_rate),
                           decay_rollouts=max(1, -(-int(steps) // batch_size)) if steps else None,
                           minibatch=int(getattr(args, "minibatch", None) or d.minibatch),
                           steps=int(getattr(args, "grad_steps", None) or d.steps),
                           beta_decay=d.beta_decay if getattr(args, "beta_decay", None) is None
                           else float(args.beta_decay))


def argparse_without(args: Any, *names: str) -> Any:
    """A copy of an options namespace with ``names`` unset (PPO options the imitation learner reads itself)."""
    import argparse
    return argparse.Namespace(**{k: (None if k in names else v) for k, v in vars(args).items()})


class ImitationUseCaseMixin:
    """What ABR's and CC's imitation use cases share (genet/abr/imitation.py, genet/cc/imitation.py): the check of
    --agent and --teacher, and the student's checkpoint. A use case sets ``imitation_format`` (its checkpoint
    format), ``checkpoint_label`` ("ABR imitation"), ``config_type`` (its training config dataclass) and
    ``teacher_names``, and may override :meth:`_pack_rollout` / :meth:`_unpack_rollout` (a rollout holding
    something that does not pickle)."""

    imitation_format: str
    checkpoint_label: str
    config_type: type
    teacher_names: tuple[str, ...]

    def _check_imitation(self, agent: str, teacher: str, rollout_workers: int) -> None:
        """--agent must learn from a teacher, --teacher be one of the use case's, the rollout one process."""
        from genet.agents.registry import AGENTS, uses_teacher
        AGENTS.resolve(agent, where="--agent")
        if not uses_teacher(agent):
            raise BadInputError(f"--agent {agent!r} does not learn from a teacher; imitation agents: "
                                f"{', '.join(e.name for e in AGENTS.entries() if e.attributes.get('teacher'))}")
        if teacher not in self.teacher_names:
            use_case = self.checkpoint_label.split()[0]
            raise BadInputError(f"--teacher {teacher!r}: unknown {use_case} teacher; choose one of "
                                f"{', '.join(self.teacher_names)}")
        if rollout_workers != 1:
            raise BadInputError(f"--agent {agent} steps its sessions in this process: --rollout-workers must be 1, "
                                f"got {rollout_workers}")

    def _pack_rollout(self, rollout: Any) -> Any:
        return rollout

    def _unpack_rollout(self, rollout: Any) -> Any:
        return rollout

    def save_model(self, agent: Any, path: Any) -> None:
        """Write the student to ``path`` atomically: the network (``net``, as a PPO checkpoint holds it), the
        learner's optimiser and aggregate, counters, history and the rollout (environments, teacher, RNGs)."""
        import pickle
        from pathlib import Path
        from genet.ppo.checkpoint import save_checkpoint
        blob = {"format": self.imitation_format, "use_case": self.name, "agent": self.agent_name,
                "teacher": self.teacher, "config": asdict(agent.config), **agent.learner.state_dict(),
                **agent.progress_state(),
                "rollout": None if agent.rollout is None else pickle.dumps(self._pack_rollout(agent.rollout))}
        save_checkpoint(blob, Path(path))

    def load_model(self, path: Any) -> Any:
        import pickle
        from pathlib import Path
        from genet.ppo.checkpoint import load_checkpoint
        blob = load_checkpoint(Path(path), self.imitation_format, self.checkpoint_label)
        if blob["agent"] != self.agent_name or blob["teacher"] != self.teacher:
            raise BadInputError(f"{path}: a {blob['agent']} checkpoint with teacher {blob['teacher']}, not "
                                f"{self.agent_name} with teacher {self.teacher}")
        self.config = self.config_type(**blob["config"])
        self.imitation = ImitationConfig(**blob["imitation"])
        agent = self.new_model(blob["seed"])
        agent.learner.load_state_dict(blob)
        agent.restore_progress(blob)
        agent.rollout = None if blob["rollout"] is None else self._unpack_rollout(pickle.loads(blob["rollout"]))
        return agent


class BcAgent(ImitationAgent):
    """Behaviour cloning: the teacher drives every rollout."""

    name = "bc"
    student_drives = False


class DaggerAgent(ImitationAgent):
    """DAgger: the student drives (the teacher's action executed with probability β_i), the teacher labels."""

    name = "dagger"
    student_drives = True


__all__ = ["AGREEMENT_TOLERANCE", "ImitationConfig", "ImitationAgent", "ImitationUseCaseMixin", "BcAgent",
           "DaggerAgent", "argparse_without", "imitation_config_from_args"]
