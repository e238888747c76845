"""Actor-critic networks of the two use cases (genet-simulators.md §8.2, §8.3).

``PensieveActorCritic``: Pensieve-PPO's towers (separate actor and critic, no
weight sharing). Per tower: FC(1->128) on rows 0, 1 and 5 (last column),
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


class _PensieveTower(nn.Module):
    def __init__(self, s_info: int, s_len: int, row4_len: int, out_dim: int, hidden: int = 128):
        super().__init__()
        if s_info != 6:
            raise ValueError(f"Pensieve towers expect 6 state rows, got {s_info}")
        self.s_len, self.row4_len = s_len, row4_len
        self.fc0 = nn.Linear(1, hidden)
        self.fc1 = nn.Linear(1, hidden)
        self.fc2 = nn.Linear(s_len, hidden)
        self.fc3 = nn.Linear(s_len, hidden)
        self.fc4 = nn.Linear(row4_len, hidden)
        self.fc5 = nn.Linear(1, hidden)
        self.merge = nn.Linear(6 * hidden, hidden)
        self.head = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu
        h = torch.cat([
            r(self.fc0(x[:, 0, -1:])), r(self.fc1(x[:, 1, -1:])), r(self.fc2(x[:, 2, :])),
            r(self.fc3(x[:, 3, :])), r(self.fc4(x[:, 4, : self.row4_len])), r(self.fc5(x[:, 5, -1:])),
        ], dim=1)
        return self.head(r(self.merge(h)))


class PensieveActorCritic(nn.Module):
    """Discrete actor-critic over a (6, s_len) ABR state. ``forward`` returns action probabilities."""

    PROB_CLAMP = 1e-4

    def __init__(self, s_len: int = 8, n_actions: int = 6, row4_len: int = 6):
        super().__init__()
        self.obs_shape = (6, s_len)
        self.n_actions = n_actions
        self.actor = _PensieveTower(6, s_len, row4_len, n_actions)
        self.critic = _PensieveTower(6, s_len, row4_len, 1)

    def probabilities(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.actor(obs), dim=-1).clamp(self.PROB_CLAMP, 1 - self.PROB_CLAMP)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.probabilities(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

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

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.vf(obs).squeeze(-1)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        mean = self.pi(obs)
        return torch.distributions.Independent(torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean)), 1)
