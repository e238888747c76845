"""Synchronous advantage actor-critic (A3C as Pensieve trains it, its workers stepped in lockstep) behind the agent
interface.

Pensieve's A3C (genet-simulators.md §8.1): n-step discounted returns ``R_t = r_t + γ R_{t+1}`` (γ = 0.99; the last
state of a batch bootstrapped with V(s_T), none at a video end), advantage ``R - V``; actor loss
``Σ log π(a)·(−adv) + w_ent·Σ π log(π + 1e-6)`` (sums over the batch, entropy weight 0.5 fixed), critic loss
``MSE(R, V)``; RMSProp (TF defaults: decay 0.9, no momentum, ε 1e-10) with actor lr 1e-4 and critic lr 1e-3. One
gradient step per batch.

Synchronous, as Pensieve-PPO's A3C agent: the ``N`` sessions' rollouts of ``T`` decisions form one batch and one
step (Pensieve applies each of its 16 workers' batches one after another, asynchronously). Returns and advantages
are PPO's discounted ones (:meth:`genet.agents.ppo.PpoAgent.make_batch`), so the two differ only in the update.

Continuous actions (a Gaussian actor with ``log_std``: Aurora's, CC): the same losses with the Gaussian's
log-density and entropy (``network.distribution``); the actor tower is the mean network ``pi`` with ``log_std``,
the critic ``vf``; the use case passes ``advantage="gae"`` with λ = 1, which is the same n-step return
``R_t = r_t + γ R_{t+1}`` but bootstrapped with V of the true next state where an episode is cut by its time limit
(CC's episodes end at the trace's end, truncated) as well as at the batch's end.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from genet.agents.ppo import PpoAgent
from genet.ppo.algorithm import PPOConfig

#: Pensieve's A3C constants (genet-simulators.md §8.1).
ENTROPY_WEIGHT = 0.5
ACTOR_LR = 1e-4
CRITIC_LR = 1e-3
RMSPROP_ALPHA = 0.9
RMSPROP_EPS = 1e-10
ENTROPY_EPS = 1e-6


def towers(network: torch.nn.Module) -> tuple[list, list]:
    """An actor-critic's (actor parameters, critic parameters): ``network.actor`` / ``network.critic`` (Pensieve),
    else ``pi`` and ``log_std`` / ``vf`` (Aurora's Gaussian actor-critic)."""
    if hasattr(network, "actor") and hasattr(network, "critic"):
        return list(network.actor.parameters()), list(network.critic.parameters())
    return [*network.pi.parameters(), network.log_std], list(network.vf.parameters())


def a3c_optimizer(network: torch.nn.Module, actor_lr: float = ACTOR_LR, critic_lr: float = CRITIC_LR
                  ) -> torch.optim.Optimizer:
    """RMSProp with TF's defaults over an actor-critic's two towers (:func:`towers`), each with its own learning
    rate."""
    actor, critic = towers(network)
    return torch.optim.RMSprop([{"params": actor, "lr": actor_lr}, {"params": critic, "lr": critic_lr}],
                               lr=actor_lr, alpha=RMSPROP_ALPHA, eps=RMSPROP_EPS)


class A3cAgent(PpoAgent):
    """Advantage actor-critic on a discrete actor-critic network (see the module docstring).

    network: an actor-critic with ``probabilities`` (or ``forward``), ``value`` and ``distribution``
    optimizer: :func:`a3c_optimizer`'s RMSProp (or any optimiser over both towers)
    gamma: discount (0.99)
    entropy_weight: w_ent (0.5)
    reward_scale: multiplier on rewards for training only (1.0)
    advantage: "discounted" (Pensieve's; ABR) or "gae" with ``gae_lambda`` 1 (CC; module docstring)
    generator: torch Generator of a Gaussian actor's action noise (None: torch's global one)
    """

    name = "a3c"

    def __init__(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, gamma: float = 0.99,
                 entropy_weight: float = ENTROPY_WEIGHT, reward_scale: float = 1.0, advantage: str = "discounted",
                 gae_lambda: float = 1.0, generator: torch.Generator | None = None, **_: Any) -> None:
        super().__init__(network, optimizer if optimizer is not None else a3c_optimizer(network),
                         PPOConfig(epochs=1), gamma, float(entropy_weight), reward_scale, advantage=advantage,
                         gae_lambda=gae_lambda, generator=generator)

    def train_on(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One RMSProp step on the batch's actor and critic losses."""
        net = self.network
        net.train()
        obs, actions, adv, returns = batch["obs"], batch["actions"], batch["adv"], batch["returns"]
        if hasattr(net, "log_std"):  # Gaussian actor (Aurora)
            dist = net.distribution(obs)
            logp = dist.log_prob(actions)
            neg_entropy = -dist.entropy().sum()
        else:
            probs = net(obs)
            logp = torch.log(probs.gather(1, actions.view(-1, 1)).squeeze(1))
            neg_entropy = (probs * torch.log(probs + ENTROPY_EPS)).sum()
        policy_loss = (logp * -adv).sum()
        value_loss = torch.mean((net.value(obs) - returns) ** 2)
        loss = policy_loss + self.entropy_weight * neg_entropy + value_loss
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        from genet.ppo.algorithm import explained_variance
        n = max(int(actions.shape[0]), 1)
        return {"policy_loss": float(policy_loss.detach()) / n, "value_loss": float(value_loss.detach()),
                "entropy": float(-neg_entropy.detach()) / n, "entropy_weight": self.entropy_weight,
                "rollout_entropy": float(batch.get("rollout_entropy", float("nan"))),
                "explained_variance": explained_variance(batch["values"].reshape(-1), batch["ret"].reshape(-1))}


__all__ = ["A3cAgent", "a3c_optimizer", "towers", "ENTROPY_WEIGHT", "ACTOR_LR", "CRITIC_LR"]
