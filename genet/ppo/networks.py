"""Actor-critic networks of the two use cases (genet-simulators.md §8.2, §8.3).

``PensieveActorCritic``: Pensieve-PPO's towers (separate actor and critic, no
weight sharing), each a :class:`genet.abr.pensieve_net.PensieveActor`. Per tower: FC(1->128) on rows 0, 1 and 5 (last column),
Linear(S_LEN->128) on rows 2 and 3 (whole history), Linear(row4_len->128) on
row 4 (first ``row4_len`` columns: next-chunk sizes of every level), all
ReLU, concatenated to 768 -> Linear(768->128) ReLU -> head. The actor head is
a softmax clamped to [1e-4, 1 - 1e-4]; the critic head is linear.

``AuroraActorCritic``: stable-baselines' ``net_arch=[{"pi": [32, 16], "vf": [32, 16]}]``:
separate tanh MLPs for policy and value, a diagonal-Gaussian action with a
state-independent log-std initialised at 0.
"""

from __future__ import annotations

import torch
from torch import nn

from genet.abr.pensieve_net import PensieveActor


class PensieveActorCritic(nn.Module):
    """Discrete actor-critic over a (6, s_len) ABR state. ``forward`` returns action probabilities."""

    PROB_CLAMP = 1e-4

    def __init__(self, s_len: int = 8, n_actions: int = 6, row4_len: int = 6):
        super().__init__()
        self.obs_shape = (6, s_len)
        self.n_actions = n_actions
        # the same tower as the imported paper models (one definition: genet/abr/pensieve_net.py)
        self.actor = PensieveActor(s_len=s_len, n_actions=n_actions, n_levels=row4_len)
        self.critic = PensieveActor(s_len=s_len, n_actions=1, n_levels=row4_len)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's unnormalised log-probabilities (imitation learning's cross-entropy reads these)."""
        return self.actor.logits(obs)

    def probabilities(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.actor.logits(obs), dim=-1).clamp(self.PROB_CLAMP, 1 - self.PROB_CLAMP)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.probabilities(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic.logits(obs).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        """The policy's parameters (what a critic warm-up leaves as they are: ``PPOConfig.train_actor``)."""
        return list(self.actor.parameters())

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Categorical(probs=self.probabilities(obs))


def _mlp(sizes: list[int], act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class AuroraActorCritic(nn.Module):
    """Gaussian actor-critic for Aurora. ``forward`` returns the action mean (the deterministic action)."""

    def __init__(self, obs_dim: int = 30, action_dim: int = 1, hidden: tuple[int, ...] = (32, 16)):
        super().__init__()
        self.obs_shape = (obs_dim,)
        self.n_actions = action_dim
        self.pi = _mlp([obs_dim, *hidden, action_dim], nn.Tanh)
        self.vf = _mlp([obs_dim, *hidden, 1], nn.Tanh)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.pi(obs)

    def actor_parameters(self) -> list[nn.Parameter]:
        """The policy's parameters, its log std included (``PPOConfig.train_actor``)."""
        return [*self.pi.parameters(), self.log_std]

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(obs).squeeze(-1)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        mean = self.pi(obs)
        return torch.distributions.Independent(torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean)), 1)
