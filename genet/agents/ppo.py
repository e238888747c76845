"""PPO behind the agent interface (:class:`genet.agents.base.TrainableAgent`), for ABR and CC alike.

:class:`PpoAgent` is a view over what a use case's PPO agent already holds (network, Adam, the entropy weight):
the use cases (``genet/abr/training.py`` :class:`~genet.abr.training.AbrAgent`, ``genet/cc/training.py``
:class:`~genet.cc.training.CcAgent`) keep their agent records and checkpoints, and go through this class for the
verbs (act, batch, train). The arithmetic is the PPO of :mod:`genet.ppo.algorithm`, unchanged:

* ``advantage="discounted"`` (Pensieve-PPO, ABR): γ-discounted returns without GAE, advantage R - V, the
  last state of the rollout bootstrapped with V(s_T); the adaptive entropy weight
  (:class:`~genet.ppo.algorithm.AdaptiveEntropy`) is stepped with the rollout policy's entropy after each batch;
* ``advantage="gae"`` (Aurora, CC): GAE(λ) over (T, N) with the values of the true next states, standardised
  advantages, a constant entropy coefficient.

Discrete actions are drawn with :func:`genet.agents.base.sample_actions`; continuous ones (Aurora's diagonal
Gaussian) with the caller's ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

import numpy as np
import torch

from foundation.errors import BadInputError
from genet.agents.base import ActionChoice, TrainableAgent, Trajectory, sample_actions
from genet.ppo.algorithm import AdaptiveEntropy, PPOConfig, discounted_returns, explained_variance, gae, ppo_update

ADVANTAGES = ("discounted", "gae")


class PpoAgent(TrainableAgent):
    """Proximal policy optimisation (clipped surrogate, optional dual clip) on an actor-critic network.

    network: an actor-critic with ``forward`` (probabilities or means), ``value`` and ``distribution``
    optimizer: its optimiser (Adam)
    ppo: the update's settings (:class:`~genet.ppo.algorithm.PPOConfig`)
    gamma: discount
    entropy: an :class:`~genet.ppo.algorithm.AdaptiveEntropy` (Pensieve-PPO) or a constant weight (Aurora)
    reward_scale: multiplier on rewards for training only (1.0)
    advantage: "discounted" (returns - values) or "gae"
    gae_lambda: λ of GAE (0.95)
    generator: torch Generator of the minibatch order (None: torch's global one)
    anchor: a frozen network whose action probabilities the update stays near (``ppo.anchor_coef`` > 0: the
        network a fine-tune started from; discrete actions only)
    """

    name = "ppo"

    def __init__(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer, ppo: PPOConfig, gamma: float,
                 entropy: AdaptiveEntropy | float, reward_scale: float = 1.0, advantage: str = "discounted",
                 gae_lambda: float = 0.95, generator: torch.Generator | None = None,
                 anchor: torch.nn.Module | None = None) -> None:
        if advantage not in ADVANTAGES:
            raise BadInputError(f"PPO advantage must be one of {', '.join(ADVANTAGES)}, got {advantage!r}")
        self.network = network
        self.optimizer = optimizer
        self.ppo = ppo
        self.gamma = float(gamma)
        self.entropy = entropy
        self.reward_scale = float(reward_scale)
        self.advantage = advantage
        self.gae_lambda = float(gae_lambda)
        self.generator = generator
        self.anchor = anchor
        if ppo.anchor_coef > 0 and anchor is None:
            raise BadInputError("PPO anchor_coef > 0 needs an anchor network (the network a fine-tune started from)")

    @property
    def entropy_weight(self) -> float:
        return self.entropy.weight if isinstance(self.entropy, AdaptiveEntropy) else float(self.entropy)

    # ------------------------------------------------------------------ act
    def act(self, observations: np.ndarray, rng: Any, deterministic: bool = False) -> ActionChoice:
        """Discrete: probabilities -> an action by inverse CDF from the numpy Generator ``rng``, with its log-probability
        and the distribution's entropy. Continuous: mean + std x N(0, 1) from the torch Generator ``rng``."""
        net = self.network
        net.eval()
        obs = torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))
        if hasattr(net, "log_std"):  # diagonal Gaussian (Aurora)
            log_std = net.log_std.detach()
            std = log_std.exp()
            log_norm = float(log_std.sum()) + 0.5 * log_std.numel() * float(np.log(2 * np.pi))
            with torch.no_grad():
                mean = net(obs)
                if deterministic:
                    return ActionChoice(mean.numpy())
                noise = torch.randn(mean.shape, generator=rng)
                a = mean + std * noise
                logp = -0.5 * (noise * noise).sum(-1) - log_norm  # (a - mean) / std = noise
            return ActionChoice(a.numpy(), logp.numpy())
        with torch.no_grad():
            probs = net(obs).numpy().astype(np.float64)
        n = probs.shape[0]
        a = np.argmax(probs, axis=1) if deterministic else sample_actions(probs, rng)
        return ActionChoice(a, np.log(probs[np.arange(n), a]).astype(np.float32),
                            (-(probs * np.log(probs)).sum(axis=1)).astype(np.float32))

    # ---------------------------------------------------------------- batch
    def make_batch(self, trajectory: Trajectory) -> dict[str, Any]:
        """Values, returns and advantages of one rollout, flattened to (T·N) tensors ``obs``, ``actions``,
        ``logp``, ``adv``, ``returns``; also ``values``/``ret``/``adv_np`` as (T, N) arrays and
        ``rollout_entropy`` (discounted mode), for the statistics."""
        T, N = trajectory.shape
        obs_np = trajectory.observations
        obs_shape = obs_np.shape[2:]
        net = self.network
        obs = torch.from_numpy(obs_np.reshape(T * N, *obs_shape))
        if self.advantage == "discounted":
            with torch.no_grad():
                values = net.value(obs).numpy().reshape(T, N)
                last_v = net.value(torch.from_numpy(trajectory.final_observations)).numpy()
            next_values = np.zeros((T, N))
            next_values[-1] = last_v
            truncated = trajectory.truncated if trajectory.truncated is not None else np.zeros((T, N), bool)
            ret = discounted_returns(trajectory.rewards * self.reward_scale, trajectory.terminated, truncated,
                                     next_values, self.gamma)
            adv = ret - values
        else:
            with torch.no_grad():
                values = net.value(obs).numpy().reshape(T, N)
                next_values = net.value(torch.from_numpy(
                    trajectory.next_observations.reshape(T * N, *obs_shape))).numpy().reshape(T, N)
            adv, ret = gae(trajectory.rewards * self.reward_scale, values, trajectory.terminated,
                           trajectory.truncated, next_values, self.gamma, self.gae_lambda)
        actions = trajectory.actions
        batch = {"obs": obs, "actions": torch.from_numpy(actions.reshape(T * N, *actions.shape[2:])),
                 "logp": torch.from_numpy(trajectory.log_probs.reshape(-1)),
                 "adv": torch.from_numpy(adv.reshape(-1).astype(np.float32)),
                 "returns": torch.from_numpy(ret.reshape(-1).astype(np.float32)),
                 "values": values, "ret": ret, "adv_np": adv}
        if trajectory.entropies is not None:
            batch["rollout_entropy"] = float(trajectory.entropies.mean())
        if self.ppo.anchor_coef > 0:
            with torch.no_grad():
                batch["anchor_probs"] = self.anchor.distribution(obs).probs  # as the policy's, normalised
        return batch

    # ---------------------------------------------------------------- train
    def train_on(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """``ppo.epochs`` passes of the PPO update; then (adaptive entropy) the weight steps towards its target
        (not during a critic warm-up: ``ppo.train_actor`` False)."""
        self.network.train()
        stats = ppo_update(self.network, self.optimizer, self.ppo, batch["obs"], batch["actions"], batch["logp"],
                           batch["adv"], batch["returns"], self.entropy_weight, generator=self.generator,
                           anchor_probs=batch.get("anchor_probs"))
        if isinstance(self.entropy, AdaptiveEntropy):
            rollout_entropy = batch["rollout_entropy"]
            stats["rollout_entropy"] = rollout_entropy
            stats["entropy_weight"] = self.entropy.weight
            if self.ppo.train_actor:  # a critic warm-up (PPOConfig.train_actor) leaves the weight as it is
                self.entropy.update(rollout_entropy)
        stats["explained_variance"] = explained_variance(batch["values"].reshape(-1), batch["ret"].reshape(-1))
        return stats

    # ------------------------------------------------------------ save/load
    def state_dict(self) -> dict[str, Any]:
        """``net``, ``optimizer`` and (adaptive) ``entropy``: the entries of the use cases' checkpoints."""
        state = {"net": self.network.state_dict(), "optimizer": self.optimizer.state_dict()}
        if isinstance(self.entropy, AdaptiveEntropy):
            state["entropy"] = asdict(self.entropy)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.network.load_state_dict(state["net"])
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if isinstance(self.entropy, AdaptiveEntropy) and state.get("entropy") is not None:
            for k, v in state["entropy"].items():
                setattr(self.entropy, k, v)


__all__ = ["PpoAgent", "ADVANTAGES"]
