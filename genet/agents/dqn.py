"""Double DQN behind the agent interface (:class:`genet.agents.base.TrainableAgent`), for any discrete use case.

Double DQN (van Hasselt, Guez & Silver 2016) with experience replay and a target network:

* **acting**: ε-greedy over the Q-network's values: with probability ε a uniformly random action, else
  argmax Q; ε falls linearly from ``epsilon_start`` to ``epsilon_end`` over the first ``epsilon_decay_steps``
  transitions the agent has learned from (:meth:`DqnConfig.epsilon_at`; it changes between rollouts, not within
  one). Both draws come from the caller's numpy Generator, every step (the stream does not depend on ε). The
  log-probability and entropy :meth:`DqnAgent.act` reports are those of the ε-greedy distribution.
* **replay**: :meth:`DqnAgent.make_batch` puts a rollout's transitions (s, a, r, s', terminated) into a ring
  buffer of ``buffer_size`` transitions (the oldest leave first); s' is the trajectory's
  ``next_observations``, else the next row of ``observations`` and ``final_observations`` after the last one.
  A terminated transition is not bootstrapped; a truncated one (the rollout cut mid-episode) is.
* **learning**: once ``learning_starts`` transitions have been collected, one gradient step per ``train_every``
  transitions collected after that (so the number of steps does not depend on how the rollouts are cut), each on
  ``minibatch`` transitions drawn uniformly (with replacement) from the buffer with the agent's own seeded
  Generator: target ``y = reward_scale·r + γ (1 − terminated) Q_target(s', argmax_a Q(s', a))`` (the online
  network picks the action, the target network values it: Double DQN), Huber loss (δ = ``huber_delta``) between
  Q(s, a) and y, Adam, gradients clipped to norm ``max_grad_norm``; the target network is a copy of the online one,
  refreshed every ``target_every`` gradient steps.

The trained module is :attr:`DqnAgent.q_network` (``forward(observations)`` -> Q-values (n, n_actions)). What
export writes (:attr:`DqnAgent.network`, a :class:`GreedyQPolicy` over it) acts greedily: its first output is the
one-hot of argmax Q (the action probabilities of a discrete policy spec, so the file runs through the policy
registry like a PPO policy and picks argmax Q whether the caller samples or not), its second output
(``q_values``) the Q-values themselves. Seeded: the same seed, rollouts and config give the same network.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch

from foundation.errors import BadInputError
from genet.agents.base import ActionChoice, TrainableAgent, Trajectory

#: Name of the Q-values output of an exported DQN policy (its second graph output).
Q_VALUES_OUTPUT = "q_values"


@dataclass
class DqnConfig:
    """Settings of Double DQN (see the module docstring).

    learning_rate: Adam step size (1e-4)
    gamma: discount (0.99)
    buffer_size: replay buffer capacity; the oldest transitions leave first (transitions, 100000)
    minibatch: transitions per gradient step (count, 128)
    train_every: transitions collected per gradient step (count, 16: each transition is replayed
        minibatch / train_every = 8 times on average)
    learning_starts: transitions collected before the first gradient step (count, 2000)
    target_every: gradient steps between copies of the online network into the target network (count, 250)
    epsilon_start: exploration probability at the start (1.0)
    epsilon_end: exploration probability after the decay (0.02)
    epsilon_decay_steps: transitions over which ε falls linearly from start to end (transitions, 100000)
    huber_delta: where the Huber loss turns from quadratic to linear (1.0)
    max_grad_norm: gradient norm clip (10.0)
    reward_scale: multiplier on rewards for training only (1.0)
    """

    learning_rate: float = 1e-4
    gamma: float = 0.99
    buffer_size: int = 100_000
    minibatch: int = 128
    train_every: int = 16
    learning_starts: int = 2_000
    target_every: int = 250
    epsilon_start: float = 1.0
    epsilon_end: float = 0.02
    epsilon_decay_steps: int = 100_000
    huber_delta: float = 1.0
    max_grad_norm: float = 10.0
    reward_scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise BadInputError(f"dqn learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.gamma <= 1:
            raise BadInputError(f"dqn gamma must be in (0, 1], got {self.gamma}")
        for k in ("buffer_size", "minibatch", "train_every", "target_every", "epsilon_decay_steps"):
            if int(getattr(self, k)) < 1:
                raise BadInputError(f"dqn {k} must be >= 1, got {getattr(self, k)}")
        if self.learning_starts < 0:
            raise BadInputError(f"dqn learning_starts must be >= 0, got {self.learning_starts}")
        if not (0 <= self.epsilon_end <= 1 and 0 <= self.epsilon_start <= 1):
            raise BadInputError(f"dqn epsilon_start and epsilon_end must be in [0, 1], got {self.epsilon_start}, "
                                f"{self.epsilon_end}")
        if not (self.huber_delta > 0 and self.max_grad_norm > 0 and self.reward_scale > 0):
            raise BadInputError(f"dqn huber_delta, max_grad_norm and reward_scale must be > 0, got "
                                f"{self.huber_delta}, {self.max_grad_norm}, {self.reward_scale}")

    def epsilon_at(self, transitions: int) -> float:
        """ε after ``transitions`` collected transitions (linear from epsilon_start to epsilon_end)."""
        frac = min(max(transitions, 0) / self.epsilon_decay_steps, 1.0)
        return float(self.epsilon_start + frac * (self.epsilon_end - self.epsilon_start))


class GreedyQPolicy(torch.nn.Module):
    """The greedy policy of a Q-network, as export writes it: ``forward(obs)`` -> (one-hot of argmax Q (float32),
    Q-values). Holds no parameters of its own (its state is the Q-network's)."""

    #: the ONNX names of the outputs after the first (:func:`genet.policy.export_onnx`)
    more_outputs = (Q_VALUES_OUTPUT,)

    def __init__(self, q_network: torch.nn.Module) -> None:
        super().__init__()
        self.q_network = q_network

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q_network(obs)
        greedy = torch.nn.functional.one_hot(q.argmax(dim=1), q.shape[1]).to(q.dtype)
        return greedy, q


class ReplayBuffer:
    """A ring buffer of transitions (s, a, r, s', terminated) in numpy arrays, allocated on first use.

    capacity: transitions kept (the oldest leave first)
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.size = 0  # transitions held
        self.pos = 0  # where the next one goes
        self.arrays: dict[str, np.ndarray] | None = None

    def _allocate(self, obs: np.ndarray, actions: np.ndarray) -> None:
        c = self.capacity
        self.arrays = {"obs": np.zeros((c, *obs.shape[1:]), np.float32),
                       "actions": np.zeros((c, *actions.shape[1:]), actions.dtype),
                       "rewards": np.zeros(c, np.float32), "next_obs": np.zeros((c, *obs.shape[1:]), np.float32),
                       "terminated": np.zeros(c, np.float32)}

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """Append ``n`` transitions (arrays with a leading axis of n)."""
        n = int(obs.shape[0])
        if self.arrays is None:
            self._allocate(obs, actions)
        if n > self.capacity:  # only the newest fit
            obs, actions, rewards, next_obs, terminated = (x[-self.capacity:] for x in
                                                           (obs, actions, rewards, next_obs, terminated))
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        for k, v in zip(self.FIELDS, (obs, actions, rewards, next_obs, terminated)):
            self.arrays[k][idx] = v
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def get(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """The transitions at ``idx`` as tensors."""
        return {k: torch.from_numpy(self.arrays[k][idx]) for k in self.FIELDS}

    def state_dict(self) -> dict[str, Any]:
        """The held transitions (only the filled part) and the ring position."""
        return {"capacity": self.capacity, "size": self.size, "pos": self.pos,
                "arrays": None if self.arrays is None else {k: v[:self.size].copy() for k, v in self.arrays.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.capacity, self.size, self.pos = int(state["capacity"]), int(state["size"]), int(state["pos"])
        self.arrays = None
        if state["arrays"] is not None:
            held = state["arrays"]
            self._allocate(held["obs"], held["actions"])
            for k, v in held.items():
                self.arrays[k][:self.size] = v


class DqnAgent(TrainableAgent):
    """Double DQN over a Q-network (see the module docstring).

    network: the Q-network (forward: observations -> Q-values (n, n_actions)); the agent's :attr:`network` is
        the greedy policy over it (:class:`GreedyQPolicy`), :attr:`q_network` the Q-network itself
    config: :class:`DqnConfig`
    seed: seed of the replay draws (numpy Generator)
    """

    name = "dqn"

    def __init__(self, network: torch.nn.Module, config: DqnConfig | None = None, seed: int = 0, **_: Any) -> None:
        self.config = config or DqnConfig()
        self.q_network = network
        self.network = GreedyQPolicy(network)
        self.target = copy.deepcopy(network)
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(network.parameters(), lr=self.config.learning_rate)
        self.replay = ReplayBuffer(self.config.buffer_size)
        self.rng = np.random.default_rng(seed)
        self.transitions = 0  # transitions collected (given to make_batch)
        self.grad_steps = 0

    @property
    def epsilon(self) -> float:
        """ε of the next rollout."""
        return self.config.epsilon_at(self.transitions)

    # ------------------------------------------------------------------ act
    def q_values(self, observations: np.ndarray) -> np.ndarray:
        """Q-values of a batch of observations (numpy, no gradient)."""
        self.q_network.eval()
        with torch.no_grad():
            return self.q_network(torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))).numpy()

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        """The greedy policy's action probabilities: the one-hot of argmax Q (what the exported file outputs)."""
        q = self.q_values(observations)
        return np.eye(q.shape[1], dtype=np.float32)[np.argmax(q, axis=1)]

    def act(self, observations: np.ndarray, rng: np.random.Generator | None, deterministic: bool = False
            ) -> ActionChoice:
        """ε-greedy actions (argmax Q when ``deterministic``), with the ε-greedy distribution's log-probability of
        each and its entropy."""
        q = self.q_values(observations)
        n, k = q.shape
        greedy = np.argmax(q, axis=1).astype(np.int64)
        eps = 0.0 if deterministic else self.epsilon
        if deterministic:
            a = greedy
        else:
            explore = rng.random(n) < eps
            a = np.where(explore, rng.integers(0, k, size=n), greedy).astype(np.int64)
        p_other = eps / k
        p_greedy = 1.0 - eps + p_other
        logp = np.log(np.where(a == greedy, p_greedy, max(p_other, 1e-300)))
        entropy = -(p_greedy * np.log(p_greedy) + ((k - 1) * p_other * np.log(p_other) if p_other > 0 else 0.0))
        return ActionChoice(a, logp.astype(np.float32), np.full(n, entropy, np.float32))

    # ---------------------------------------------------------------- batch
    def make_batch(self, trajectory: Trajectory) -> dict[str, Any]:
        """Put the rollout's transitions into the replay buffer; the batch says how many came and the
        rollout's mean reward and entropy (the gradient steps sample the buffer)."""
        T, N = trajectory.shape
        obs = np.asarray(trajectory.observations, np.float32)
        if trajectory.next_observations is not None:
            nxt = np.asarray(trajectory.next_observations, np.float32)
        elif trajectory.final_observations is not None:
            nxt = np.concatenate([obs[1:], np.asarray(trajectory.final_observations, np.float32)[None]])
        else:
            raise BadInputError(f"{self.name}: the trajectory carries neither next_observations nor "
                                f"final_observations (Q-learning needs the state after every decision)")
        shape = obs.shape[2:]
        actions = np.asarray(trajectory.actions)
        self.replay.add(obs.reshape(T * N, *shape), actions.reshape(T * N, *actions.shape[2:]),
                        np.asarray(trajectory.rewards, np.float32).reshape(-1), nxt.reshape(T * N, *shape),
                        np.asarray(trajectory.terminated, np.float32).reshape(-1))
        epsilon = self.epsilon  # the rollout's
        self.transitions += T * N
        batch = {"added": T * N, "epsilon": epsilon}
        if trajectory.entropies is not None:
            batch["rollout_entropy"] = float(np.mean(trajectory.entropies))
        return batch

    # ---------------------------------------------------------------- train
    def owed_steps(self) -> int:
        """Gradient steps due for the transitions collected so far (see the module docstring)."""
        cfg = self.config
        if self.transitions < max(cfg.learning_starts, 1) or self.replay.size == 0:
            return 0
        return max(0, (self.transitions - cfg.learning_starts) // cfg.train_every + 1 - self.grad_steps)

    def td_loss(self, sample: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The Huber loss of Q(s, a) against the Double-DQN target on one sample of transitions, and Q(s, a)."""
        cfg = self.config
        with torch.no_grad():
            best = self.q_network(sample["next_obs"]).argmax(dim=1, keepdim=True)
            q_next = self.target(sample["next_obs"]).gather(1, best).squeeze(1)
            y = cfg.reward_scale * sample["rewards"] + cfg.gamma * (1.0 - sample["terminated"]) * q_next
        q = self.q_network(sample["obs"]).gather(1, sample["actions"].view(-1, 1).long()).squeeze(1)
        return torch.nn.functional.huber_loss(q, y, delta=cfg.huber_delta), q

    def train_on(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """The gradient steps owed (:meth:`owed_steps`); statistics of the learning curve."""
        cfg = self.config
        steps = self.owed_steps()
        self.q_network.train()
        loss_sum = q_sum = 0.0
        for _ in range(steps):
            idx = self.rng.integers(0, self.replay.size, size=cfg.minibatch)
            loss, q = self.td_loss(self.replay.get(idx))
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.q_network.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.grad_steps += 1
            if self.grad_steps % cfg.target_every == 0:
                self.target.load_state_dict(self.q_network.state_dict())
            loss_sum += float(loss.detach())
            q_sum += float(q.detach().mean())
        nan = float("nan")
        return {"td_loss": loss_sum / steps if steps else nan, "q_mean": q_sum / steps if steps else nan,
                "epsilon": float(batch.get("epsilon", self.epsilon)), "grad_steps": float(self.grad_steps),
                "replay_size": float(self.replay.size),
                "rollout_entropy": float(batch.get("rollout_entropy", nan))}

    # ------------------------------------------------------------ save/load
    def state_dict(self) -> dict[str, Any]:
        """``net`` (the Q-network), ``target``, ``optimizer``, ``dqn`` (the config), ``replay``, the replay
        Generator's state and the counters: training continues exactly after :meth:`load_state_dict`."""
        return {"net": self.q_network.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "dqn": asdict(self.config),
                "replay": self.replay.state_dict(), "replay_rng": self.rng.bit_generator.state,
                "transitions": self.transitions, "grad_steps": self.grad_steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.q_network.load_state_dict(state["net"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["replay_rng"]
        self.transitions, self.grad_steps = int(state["transitions"]), int(state["grad_steps"])


__all__ = ["DqnAgent", "DqnConfig", "GreedyQPolicy", "ReplayBuffer", "Q_VALUES_OUTPUT"]
