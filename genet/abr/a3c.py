"""Synchronous A3C for ABR (agent ``a3c``, genet/agents/a3c.py): what ``genet train abr --agent a3c`` runs.

The PPO use case (:class:`genet.abr.training.AbrUseCase`: environments, lockstep rollouts on one batched
simulator, checkpoints, ``test``, export, the curriculum methods) with Pensieve's A3C update instead of PPO's: the
same :class:`~genet.ppo.networks.PensieveActorCritic`, RMSProp over its two towers (actor lr = ``--lr``, default
1e-4 as Pensieve; critic lr 10x), entropy weight 0.5. The rollouts run in this process (``rollout_workers`` 1).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from foundation.errors import BadInputError
from genet.abr.training import AbrAgent, AbrTrainConfig, AbrUseCase, train_config_from_args
from genet.abr.training import export_policy as _export_policy
from genet.abr.training import train_config_dict as _train_config_dict
from genet.agents.a3c import ENTROPY_WEIGHT, A3cAgent, a3c_optimizer
from genet.ppo.algorithm import AdaptiveEntropy
from genet.ppo.networks import PensieveActorCritic
from genet.ppo.threads import set_torch_threads
from traces.config_space import ConfigSpace
from traces.trace import Trace

#: critic learning rate / actor learning rate (Pensieve: 1e-3 / 1e-4)
CRITIC_LR_RATIO = 10.0


class AbrA3cAgent(AbrAgent):
    """An ABR agent trained with A3C (its ``entropy`` holds the constant weight, never stepped)."""

    @property
    def learner(self) -> A3cAgent:
        return A3cAgent(self.net, self.optimizer, self.config.gamma, self.entropy.weight, self.config.reward_scale)


class AbrA3cUseCase(AbrUseCase):
    """:class:`~genet.abr.training.AbrUseCase` with the A3C update (see the module docstring)."""

    def __init__(self, config: AbrTrainConfig | None = None, **kwargs: Any) -> None:
        config = config or AbrTrainConfig()
        if config.rollout_workers != 1:
            raise BadInputError(f"--agent a3c steps its sessions in this process: --rollout-workers must be 1, got "
                                f"{config.rollout_workers}")
        super().__init__(config, **kwargs)

    def new_model(self, seed: int) -> AbrA3cAgent:
        cfg = self.config
        set_torch_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        net = PensieveActorCritic(s_len=self.layout.shape[1], n_actions=self.layout.n_actions,
                                  row4_len=self.video.n_levels)
        opt = a3c_optimizer(net, cfg.learning_rate, cfg.learning_rate * CRITIC_LR_RATIO)
        entropy = AdaptiveEntropy(weight=ENTROPY_WEIGHT, target=0.0, lr=0.0, epochs=1, floor=ENTROPY_WEIGHT)
        return AbrA3cAgent(net, opt, entropy, cfg, seed=seed)


def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[AbrAgent, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> AbrA3cUseCase:
    """The A3C use case from ``genet train abr --agent a3c`` options (``--lr``: the actor's learning rate)."""
    return AbrA3cUseCase(train_config_from_args(args), real_traces=real_traces, on_update=on_update, space=space)


def train_config_dict(use_case: AbrA3cUseCase) -> dict:
    return {**_train_config_dict(use_case), "agent": "a3c", "critic_learning_rate":
            use_case.config.learning_rate * CRITIC_LR_RATIO, "entropy_weight": ENTROPY_WEIGHT}


def export_policy(use_case: AbrA3cUseCase, agent: AbrA3cAgent, path: Any, metadata: dict | None = None,
                  n_check: int = 1000) -> Any:
    return _export_policy(use_case, agent, path, {"agent": "a3c", **(metadata or {})}, n_check)


__all__ = ["AbrA3cAgent", "AbrA3cUseCase", "build_use_case", "export_policy", "train_config_dict"]
