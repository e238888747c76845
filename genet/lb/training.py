"""PPO training of LB policies: the LB use case of the Genet curriculum.

:class:`LbUseCase` implements :class:`genet.curriculum.usecase.UseCase` (the paper's Train/Test interface, §4.3):

* ``new_model(seed)`` -> an :class:`LbAgent`: :class:`LbActorCritic` (Genet's LB actor: an MLP of
  ``[200, 128]`` leaky-ReLU units from the ``lb.genet-Ww`` observation to a softmax over the ``W`` workers, and a
  critic of the same shape), its Adam optimiser and the rollout state;
* ``train(agent, distribution, iterations, seed)``: ``iterations`` PPO updates, each on ``steps_per_update``
  decisions collected from ``n_envs`` episodes stepped in lockstep in the batched core
  (:class:`genet.lb.simulator.LbBatch`, one ``act`` per step for all of them). Every new episode draws a config
  from the :class:`~genet.curriculum.distribution.ConfigDistribution` (``setting_from_config`` on the base
  setting) and a workload from it; training episodes end at Genet's geometric horizon (``reset_prob``, per ms)
  or when every job is done;
* ``test(policy, configs, seed)``: the episode return (``-`` total completion time, ms x jobs; every job run to
  completion) of the model (sampling its worker, seeded, as Genet's LB test does) or of a baseline (``"least_work"``, ``"sed"``, ... any name of
  genet/lb/registry.py) on one episode per config; episode ``i``'s workload and shuffles come from
  ``default_rng([seed, i])``, so the model and the baselines meet the same jobs;
  ``"optimal"`` is LB's stand-in for an optimum, which Genet's LB code does not have: the *no-wait bound*
  (:func:`genet.lb.simulator.no_wait_return`: every job served on arrival by the fastest worker, ``-sum(floor(size
  / max rate))``), an upper bound on every policy's return computed from the episode's jobs. CL2 (``--method cl2``)
  then ranks environments by bound - baseline and CL3 (``--method cl3``) by bound - RL: the total waiting and
  slower-service time a perfect dispatcher could at most remove;
* ``save_model``/``load_model``: one file with the network, the optimiser, the counters, the learning curve and
  the rollout state (the batch of episodes mid-way and the RNG states), so a resumed run continues exactly.

Training choices (Genet's LB trainer is A2C with 16 agents, ``gamma`` 1 and a differential-reward baseline,
``reward_scale`` 1e4 and a decaying entropy weight; we train with the PPO of genet/ppo like the other use cases):
GAE(λ 0.95) with γ 0.99, clip 0.2, 4 epochs, minibatches of 512, Adam 1e-3, entropy 0.05 (at 0.01 the policy
collapses onto one worker within 400k decisions on Genet's setting; at 0.05 it keeps splitting the load and reaches
Genet's reported return there, ~-3.0e9, in ~370k decisions, seed 0), standardised advantages, reward x ``reward_scale`` (1e-5) for training only, ``reset_prob`` 1e-5 per ms held constant (Genet
decays it to 1e-6). The horizon ends an episode as *truncated* (bootstrapped); draining every job *terminates* it.
The rollout runs in this process (``rollout_workers`` must be 1).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from foundation.errors import BadInputError
from genet.agents.base import Trajectory
from genet.agents.ppo import PpoAgent
from genet.curriculum.distribution import ConfigDistribution
from genet.lb.observations import observe, policy_spec
from genet.lb.simulator import (GENET, LbBatch, LbSetting, named_setting, no_wait_return, setting_from_config,
                                 simulate)
from genet.ppo.algorithm import PPOConfig
from genet.ppo.checkpoint import load_checkpoint, save_checkpoint
from genet.ppo.progress import TrainingProgress
from genet.ppo.threads import set_torch_threads, torch_thread_count
from traces.config_space import ConfigSpace, load_space

CHECKPOINT_FORMAT = "genet-lb-agent-v1"
#: The name the curriculum asks ``test`` for the optimum by (CL2: optimum - baseline, CL3: optimum - RL). LB has no
#: computable optimum; its stand-in is the no-wait bound (:func:`genet.lb.simulator.no_wait_return`).
OPTIMUM = "optimal"
#: Most jobs of one training episode (the space's ``num_jobs`` bound).
MAX_TRAIN_JOBS = 10_000


@dataclass
class LbTrainConfig:
    """LB PPO settings (see the module docstring).

    setting: the base setting, a name ("genet", "park") or an :class:`LbSetting`: workers, observation, event
        order, and the dimensions the config space does not set
    n_envs: episodes stepped in lockstep (16)
    steps_per_update: decisions per PPO update, all episodes together (4096)
    epochs / minibatch: PPO passes over each batch and decisions per gradient step (4, 512)
    learning_rate / adam_eps: Adam (1e-3, 1e-5)
    gamma / gae_lambda / clip / entropy_coef / value_coef: PPO (0.99, 0.95, 0.2, 0.05, 0.5)
    reward_scale: multiplier on rewards for training only (1e-5)
    reset_prob: per-ms probability of the geometric training horizon (1e-5; Genet's starting value)
    hidden: hidden layer sizes of actor and critic ((200, 128): Genet's)
    torch_threads: torch intra-op threads (1)
    rollout_workers: must be 1 (in-process rollouts)
    """

    setting: str | LbSetting = "genet"
    n_envs: int = 16
    steps_per_update: int = 4096
    epochs: int = 4
    minibatch: int = 512
    learning_rate: float = 1e-3
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy_coef: float = 0.05
    value_coef: float = 0.5
    reward_scale: float = 1e-5
    reset_prob: float = 1e-5
    hidden: tuple[int, ...] = (200, 128)
    torch_threads: int = 1
    rollout_workers: int = 1

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.n_envs < 1 or self.steps_per_update < self.n_envs:
            raise BadInputError(f"need n_envs >= 1 and steps_per_update >= n_envs, got {self.n_envs}, "
                                f"{self.steps_per_update}")
        if self.epochs < 1 or self.minibatch < 1:
            raise BadInputError(f"epochs and minibatch must be >= 1, got {self.epochs}, {self.minibatch}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1 and self.clip > 0 and self.learning_rate > 0):
            raise BadInputError("need 0 < gamma <= 1, 0 <= gae_lambda <= 1, clip > 0, learning_rate > 0")
        if not 0 <= self.reset_prob < 1:
            raise BadInputError(f"reset_prob must be in [0, 1), got {self.reset_prob}")
        if self.rollout_workers != 1:
            raise BadInputError("LB training runs its rollouts in this process: --rollout-workers must be 1 "
                                "(the batched core steps every episode at once)")
        torch_thread_count(self.torch_threads)
        if isinstance(self.setting, dict):  # from a checkpoint's asdict
            from traces.workload import WorkloadConfig
            d = dict(self.setting)
            self.setting = LbSetting(**{**d, "workload": WorkloadConfig(**d["workload"]),
                                        "service_rates": tuple(d["service_rates"])})
        self.base_setting()

    @property
    def steps_per_env(self) -> int:
        return self.steps_per_update // self.n_envs

    @property
    def batch_size(self) -> int:
        return self.steps_per_env * self.n_envs

    def base_setting(self) -> LbSetting:
        return self.setting if isinstance(self.setting, LbSetting) else named_setting(self.setting)


class LbActorCritic(nn.Module):
    """Genet's LB actor (MLP, leaky ReLU, softmax over the workers) and a critic of the same shape.
    ``forward`` returns the action probabilities (clamped to [1e-4, 1 - 1e-4], as the ABR network)."""

    PROB_CLAMP = 1e-4

    def __init__(self, obs_dim: int = 4, n_actions: int = 3, hidden: Sequence[int] = (200, 128)):
        super().__init__()
        self.obs_shape = (obs_dim,)
        self.n_actions = n_actions

        def mlp(out: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            prev = obs_dim
            for h in hidden:
                layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2)]
                prev = h
            layers.append(nn.Linear(prev, out))
            return nn.Sequential(*layers)
        self.actor = mlp(n_actions)
        self.critic = mlp(1)

    def probabilities(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.actor(obs), dim=-1).clamp(self.PROB_CLAMP, 1 - self.PROB_CLAMP)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.probabilities(obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        """The policy's parameters (``PPOConfig.train_actor``)."""
        return list(self.actor.parameters())

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Categorical(probs=self.probabilities(obs))


class _Probabilities(nn.Module):
    """The actor alone, for ONNX export (observations -> probabilities)."""

    def __init__(self, net: LbActorCritic):
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net.probabilities(obs)


@dataclass
class LbRollout:
    """What a rollout leaves behind for the next one (all of it is checkpointed)."""

    batch: LbBatch
    settings: list[LbSetting]
    episode_return: np.ndarray
    rng: np.random.Generator  # configs, workloads, episode streams
    action_rng: np.random.Generator  # action sampling
    torch_gen: torch.Generator  # minibatch order


@dataclass
class LbAgent(TrainingProgress):
    """An LB policy in training: network, optimiser, rollout state, and :class:`TrainingProgress`'s counters."""

    net: LbActorCritic
    optimizer: torch.optim.Optimizer
    config: LbTrainConfig
    rollout: LbRollout | None = None

    @property
    def layout(self) -> str:
        return self.config.base_setting().layout

    @property
    def learner(self) -> PpoAgent:
        cfg = self.config
        ppo = PPOConfig(clip=cfg.clip, epochs=cfg.epochs, minibatch=cfg.minibatch, value_coef=cfg.value_coef,
                        normalize_adv=True)
        return PpoAgent(self.net, self.optimizer, ppo, cfg.gamma, cfg.entropy_coef, cfg.reward_scale,
                        advantage="gae", gae_lambda=cfg.gae_lambda,
                        generator=None if self.rollout is None else self.rollout.torch_gen)

    def policy(self, deterministic: bool = False, seed: int | None = None):
        """This agent's actor as a :class:`genet.policy.TorchPolicy` (sampling, seeded, by default)."""
        from genet.policy import TorchPolicy
        return TorchPolicy(self.net, policy_spec(self.layout), deterministic=deterministic, seed=seed, name="rl")


class LbUseCase:
    """The LB use case for :func:`genet.curriculum.loop.run_curriculum` (see the module docstring).

    config: PPO settings (:class:`LbTrainConfig`)
    on_update: called as ``on_update(agent, record)`` after every PPO update
    space: the config space episodes are drawn from (None: traces/spaces/lb.json)
    """

    name = "lb"
    baselines = ("least_work", "sed", "jsq", "power_of_two", "round_robin", "random")

    def __init__(self, config: LbTrainConfig | None = None, on_update: Callable[[LbAgent, dict], None] | None = None,
                 space: ConfigSpace | None = None):
        self.config = config or LbTrainConfig()
        self.space = space if space is not None else load_space("lb")
        self.on_update = on_update

    def close(self) -> None:
        """Nothing to release (no worker processes); for the training command's ``finally``."""

    # ---------------------------------------------------------------- models
    def new_model(self, seed: int) -> LbAgent:
        cfg = self.config
        set_torch_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        base = cfg.base_setting()
        net = LbActorCritic(obs_dim=base.n_workers + 1, n_actions=base.n_workers, hidden=cfg.hidden)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)
        return LbAgent(net, opt, cfg, seed=seed)

    def save_model(self, agent: LbAgent, path: Path) -> None:
        roll = agent.rollout
        rollout = None
        if roll is not None:
            rollout = {"batch": pickle.dumps(roll.batch), "settings": pickle.dumps(roll.settings),
                       "episode_return": roll.episode_return, "rng": roll.rng.bit_generator.state,
                       "action_rng": roll.action_rng.bit_generator.state, "torch_gen": roll.torch_gen.get_state()}
        cfg = asdict(agent.config)
        cfg["hidden"] = list(cfg["hidden"])
        blob = {"format": CHECKPOINT_FORMAT, "use_case": self.name, "config": cfg,
                "net": agent.net.state_dict(), "optimizer": agent.optimizer.state_dict(),
                **agent.progress_state(), "rollout": rollout}
        save_checkpoint(blob, Path(path))

    def load_model(self, path: Path) -> LbAgent:
        blob = load_checkpoint(Path(path), CHECKPOINT_FORMAT, "LB")
        self.config = LbTrainConfig(**blob["config"])
        agent = self.new_model(blob["seed"])
        agent.net.load_state_dict(blob["net"])
        agent.optimizer.load_state_dict(blob["optimizer"])
        agent.restore_progress(blob)
        r = blob["rollout"]
        if r is not None:
            rng, action_rng = np.random.default_rng(), np.random.default_rng()
            rng.bit_generator.state = r["rng"]
            action_rng.bit_generator.state = r["action_rng"]
            gen = torch.Generator()
            gen.set_state(r["torch_gen"])
            agent.rollout = LbRollout(pickle.loads(r["batch"]), pickle.loads(r["settings"]), r["episode_return"],
                                      rng, action_rng, gen)
        return agent

    # -------------------------------------------------------------- training
    def _episode_setting(self, distribution: ConfigDistribution, rng: np.random.Generator) -> LbSetting:
        cfg = distribution.sample(rng)
        if "real_trace_index" in cfg:
            raise BadInputError("LB training has no real traces to mix in (--real-traces is for ABR and CC)")
        return setting_from_config({k: v for k, v in cfg.items() if k in self.space.names}, name="train",
                                   base=self.config.base_setting())

    def _start_episode(self, roll: LbRollout, i: int, distribution: ConfigDistribution) -> None:
        setting = self._episode_setting(distribution, roll.rng)
        workload = setting.workload_for(roll.rng, name="train")
        roll.settings[i] = setting
        roll.batch.load(i, workload, setting.service_rates, setting.queue_shuffle_prob, roll.rng,
                        self.config.reset_prob)

    def _start_rollout(self, distribution: ConfigDistribution, seed: int) -> LbRollout:
        cfg = self.config
        base = cfg.base_setting()
        rng = np.random.default_rng([seed, 0])
        gen = torch.Generator()
        gen.manual_seed(seed)
        max_jobs = max(MAX_TRAIN_JOBS, base.workload.num_jobs)
        roll = LbRollout(LbBatch(cfg.n_envs, base.n_workers, max_jobs, base.event_order), [base] * cfg.n_envs,
                         np.zeros(cfg.n_envs), rng, np.random.default_rng([seed, 1]), gen)
        for i in range(cfg.n_envs):
            self._start_episode(roll, i, distribution)
        return roll

    def collect(self, agent: LbAgent, distribution: ConfigDistribution) -> dict[str, Any]:
        """One rollout of ``steps_per_env`` decisions in every episode of the batch."""
        cfg, roll = agent.config, agent.rollout
        layout = agent.layout
        T, N = cfg.steps_per_env, cfg.n_envs
        batch = roll.batch
        obs = observe(batch.state(), layout)
        D = obs.shape[1]
        obs_buf = np.zeros((T, N, D), np.float32)
        next_obs = np.zeros((T, N, D), np.float32)
        act_buf = np.zeros((T, N), np.int64)
        logp_buf = np.zeros((T, N), np.float32)
        rew = np.zeros((T, N))
        term = np.zeros((T, N), bool)
        trunc = np.zeros((T, N), bool)
        episodes: list[float] = []
        learner = agent.learner
        for t in range(T):
            choice = learner.act(obs, roll.action_rng)
            obs_buf[t] = obs
            act_buf[t] = choice.actions
            logp_buf[t] = choice.log_probs
            rew[t] = batch.step(choice.actions)
            roll.episode_return += rew[t]
            after = observe(batch.state(), layout)
            next_obs[t] = after
            for i in np.flatnonzero(batch.done):
                trunc[t, i] = batch.truncated(i)
                term[t, i] = not trunc[t, i]
                episodes.append(float(roll.episode_return[i]))
                roll.episode_return[i] = 0.0
                self._start_episode(roll, int(i), distribution)
            obs = observe(batch.state(), layout) if (term[t] | trunc[t]).any() else after
        return {"obs": obs_buf, "next_obs": next_obs, "actions": act_buf, "logp": logp_buf, "rewards": rew,
                "terminated": term, "truncated": trunc, "episode_returns": episodes}

    def update(self, agent: LbAgent, batch: dict[str, Any]) -> dict[str, float]:
        learner = agent.learner
        traj = Trajectory(batch["obs"], batch["actions"], batch["rewards"], batch["terminated"],
                          truncated=batch["truncated"], next_observations=batch["next_obs"], log_probs=batch["logp"],
                          episode_returns=batch["episode_returns"])
        return learner.train_on(learner.make_batch(traj))

    def train(self, agent: LbAgent, distribution: ConfigDistribution, iterations: int, seed: int) -> LbAgent:
        """``iterations`` PPO updates on episodes drawn from ``distribution``."""
        if distribution.space.use_case != "lb":
            raise BadInputError(f"LbUseCase.train: distribution is for use case {distribution.space.use_case!r}")
        set_torch_threads(agent.config.torch_threads)
        if agent.rollout is None:
            agent.rollout = self._start_rollout(distribution, seed)
        for _ in range(int(iterations)):
            t0 = time.perf_counter()
            batch = self.collect(agent, distribution)
            t1 = time.perf_counter()
            stats = self.update(agent, batch)
            t2 = time.perf_counter()
            record = agent.record_update(batch["rewards"], batch["episode_returns"], t1 - t0, t2 - t1, **stats)
            if self.on_update is not None:
                self.on_update(agent, record)
        return agent

    # ------------------------------------------------------------------ test
    def test(self, policy: Any, configs: list[dict], seed: int) -> np.ndarray:
        """Episode return (ms x jobs, every job run to completion) of ``policy`` (an :class:`LbAgent`, a torch
        module returning probabilities, a :class:`genet.policy.Policy`, or a registry name) per config;
        ``"optimal"`` (:data:`OPTIMUM`): the no-wait bound of each episode's jobs
        (:func:`genet.lb.simulator.no_wait_return`), LB's stand-in for the optimum of CL2 and CL3."""
        from genet.lb.registry import make_policy
        from genet.policy import TorchPolicy
        base = self.config.base_setting()
        if isinstance(policy, str) and policy == OPTIMUM:
            return np.array([no_wait_return(workload, setting.service_rates)
                             for setting, workload, _ in trial_episodes(configs, seed, base, self.space)], float)
        if isinstance(policy, str):
            pol = make_policy(policy, n_workers=base.n_workers, seed=seed)
        elif isinstance(policy, LbAgent):
            pol = policy.policy(deterministic=False, seed=seed)
        elif isinstance(policy, nn.Module):
            pol = TorchPolicy(policy, policy_spec(base.layout), deterministic=False, seed=seed, name="rl")
        else:
            pol = policy
        out = []
        for setting, workload, rng in trial_episodes(configs, seed, base, self.space):
            out.append(simulate(pol, [workload], replace(setting, reset_prob=0.0), seeds=[rng])[0].reward)
        return np.array(out, float)


def trial_episodes(configs: Sequence[dict], seed: int, base: LbSetting = GENET, space: ConfigSpace | None = None):
    """(setting, workload, episode Generator) per config, as the curriculum's test (BO trial) runs them: config
    ``i``'s workload and shuffle stream come from ``default_rng([seed, i])``."""
    names = set(space.names) if space is not None else None
    for i, config in enumerate(configs):
        rng = np.random.default_rng([int(seed), i])
        cfg = {k: v for k, v in config.items() if names is None or k in names}
        setting = setting_from_config(cfg, name=f"test-{i}", base=base)
        yield setting, setting.workload_for(rng, name=f"test-{i}"), rng


# ------------------------------------------------------------- CLI hooks
def build_use_case(args: Any, real_traces: Sequence[Any] | None = None,
                   on_update: Callable[[LbAgent, dict], None] | None = None,
                   space: ConfigSpace | None = None) -> LbUseCase:
    """The LB use case from ``genet train lb`` options (see :mod:`genet.train_cli`)."""
    if real_traces:
        raise BadInputError("--real-traces: LB training has no real traces to mix in")
    d = LbTrainConfig()

    def opt(name, default):
        v = getattr(args, name, None)
        return default if v is None else v
    cfg = LbTrainConfig(setting=opt("lb_setting", d.setting), n_envs=opt("n_envs", d.n_envs),
                        steps_per_update=opt("steps_per_update", d.steps_per_update), epochs=opt("epochs", d.epochs),
                        minibatch=opt("minibatch", d.minibatch), learning_rate=opt("lr", d.learning_rate),
                        torch_threads=opt("torch_threads", d.torch_threads),
                        rollout_workers=opt("rollout_workers", d.rollout_workers))
    return LbUseCase(cfg, on_update=on_update, space=space)


def train_config_dict(use_case: LbUseCase) -> dict:
    d = asdict(use_case.config)
    d["hidden"] = list(d["hidden"])
    return d


def export_policy(use_case: LbUseCase, agent: LbAgent, path: str | Path, metadata: dict[str, Any] | None = None,
                  n_check: int = 1000) -> Path:
    """Export the actor (probabilities over workers) as a self-describing ONNX policy (layout ``lb.genet-Ww``),
    checked against torch on ``n_check`` random observations inside the layout's bounds."""
    from genet.lb.env import observation_box
    from genet.policy import export_onnx
    layout = agent.layout
    box = observation_box(layout)
    rng = np.random.default_rng(0)
    obs = rng.uniform(box.low, np.minimum(box.high, 1e6), size=(n_check, box.shape[0])).astype(np.float32)
    extra = {"train_config": train_config_dict(use_case), "setting": agent.config.base_setting().to_dict(),
             "updates": agent.updates, "env_steps": agent.env_steps, "train_wall_s": agent.wall_s,
             "seed": agent.seed, **(metadata or {})}
    return export_onnx(_Probabilities(agent.net), policy_spec(layout), path, extra_metadata=extra,
                       check_observations=obs)


__all__ = ["LbTrainConfig", "LbActorCritic", "LbAgent", "LbUseCase", "LbRollout", "trial_episodes",
           "build_use_case", "train_config_dict", "export_policy", "CHECKPOINT_FORMAT", "OPTIMUM"]
