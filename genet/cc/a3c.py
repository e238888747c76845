"""Synchronous A3C for CC (agent ``a3c``, genet/agents/a3c.py): what ``genet train cc --agent a3c`` runs.

The PPO use case (:class:`genet.cc.training.CcUseCase`: environments, lockstep rollouts of ``n_envs``
:class:`~genet.cc.env.AuroraEnv` sessions, checkpoints, ``test``, export, the curriculum methods) with the A3C
update instead of PPO's, on the same network (:class:`~genet.ppo.networks.AuroraActorCritic`, Aurora's [32, 16]
tanh MLPs with a Gaussian action): one RMSProp step (TF's defaults) per batch of ``steps_per_update``
transitions, actor (the mean network and ``log_std``) at ``--lr`` (default Aurora's 1e-3), critic at 10x it
(Pensieve's ratio); n-step discounted returns (γ 0.99) bootstrapped with V of the next state at the batch's end and
where an episode is truncated at the trace's end (:class:`~genet.agents.a3c.A3cAgent` with ``advantage="gae"``,
λ = 1); entropy weight Aurora's 0.01 (``CcTrainConfig.entropy_coef``; Pensieve's 0.5 is a weight on a 6-way
softmax's entropy, not on a Gaussian's). Rewards are not scaled and advantages not standardised (Pensieve's A3C
does neither). The rollouts run in this process (``rollout_workers`` 1).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Sequence

import torch

from foundation.errors import BadInputError
from genet.agents.a3c import A3cAgent, a3c_optimizer
from genet.cc.training import CcAgent, CcTrainConfig, CcUseCase, train_config_from_args
from genet.cc.training import export_policy as _export_policy
from genet.ppo.networks import AuroraActorCritic
from genet.ppo.threads import set_torch_threads
from traces.config_space import ConfigSpace
from traces.trace import Trace

#: critic learning rate / actor learning rate (Pensieve: 1e-3 / 1e-4)
CRITIC_LR_RATIO = 10.0


class CcA3cAgent(CcAgent):
    """A CC agent trained with A3C (its optimiser :func:`~genet.agents.a3c.a3c_optimizer`'s RMSProp)."""

    @property
    def learner(self) -> A3cAgent:
        cfg = self.config
        return A3cAgent(self.net, self.optimizer, cfg.gamma, cfg.entropy_coef, cfg.reward_scale, advantage="gae",
                        gae_lambda=1.0, generator=None if self.rollout is None else getattr(self.rollout, "torch_gen",
                                                                                             None))


class CcA3cUseCase(CcUseCase):
    """:class:`~genet.cc.training.CcUseCase` with the A3C update (see the module docstring)."""

    def __init__(self, config: CcTrainConfig | None = None, **kwargs: Any) -> None:
        config = config or CcTrainConfig()
        if config.rollout_workers != 1:
            raise BadInputError(f"--agent a3c steps its sessions in this process: --rollout-workers must be 1, got "
                                f"{config.rollout_workers}")
        super().__init__(config, **kwargs)

    def new_model(self, seed: int) -> CcA3cAgent:
        cfg = self.config
        set_torch_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        net = AuroraActorCritic(obs_dim=cfg.aurora().observation_size)
        opt = a3c_optimizer(net, cfg.learning_rate, cfg.learning_rate * CRITIC_LR_RATIO)
        return CcA3cAgent(net, opt, cfg, seed=seed)


def build_use_case(args: Any, real_traces: Sequence[Trace] | None = None,
                   on_update: Callable[[CcAgent, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> CcA3cUseCase:
    """The A3C use case from ``genet train cc --agent a3c`` options (``--lr``: the actor's learning rate)."""
    return CcA3cUseCase(train_config_from_args(args), real_traces=real_traces, on_update=on_update, space=space)


def train_config_dict(use_case: CcA3cUseCase) -> dict:
    cfg = use_case.config
    return {**asdict(cfg), "agent": "a3c", "critic_learning_rate": cfg.learning_rate * CRITIC_LR_RATIO,
            "entropy_weight": cfg.entropy_coef}


def export_policy(use_case: CcA3cUseCase, agent: CcA3cAgent, path: Any, metadata: dict | None = None,
                  n_check: int = 1000) -> Any:
    return _export_policy(use_case, agent, path, {"agent": "a3c", **(metadata or {})}, n_check)


__all__ = ["CcA3cAgent", "CcA3cUseCase", "CRITIC_LR_RATIO", "build_use_case", "export_policy", "train_config_dict"]
