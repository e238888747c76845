"""The load-balancing environment, Gymnasium id ``genet/LoadBalance-v0`` (registered by :func:`register_envs`,
explicitly: importing this module registers nothing).

One episode = one workload dispatched job by job over the workers of an :class:`~genet.lb.simulator.LbSetting`
(the semantics are ``genet/lb/simulator.py``'s; this is its batched core with one episode):

* **Workloads**: a list of :class:`traces.workload.Workload` (one drawn per episode with ``np_random``, or
  ``reset(options={"workload": w})``), else generated per episode from the setting's workload config, or, with
  ``config_range`` (``"rl1"``.. ``"rl3"``) or ``env_config``, from a point of ``traces/spaces/lb.json``
  (:func:`~genet.lb.simulator.setting_from_config`: that point's rates, sizes, gaps, jobs and shuffle).
* **Observation**: the setting's layout (``lb.genet-3w`` for Genet's; ``layout=`` picks another,
  genet/lb/observations.py), a ``Box`` with the layout's bounds. **Action**: ``Discrete(W)``, the worker index.
* **Reward**: ``-sum(dt x jobs in the system)`` (ms x jobs) since the last decision, times ``reward_scale``
  (Genet trains with 1e-4, ``param.py`` ``reward_scale`` 1e4).
* **End**: every job done (``terminated``), or, with ``reset_prob > 0``, the geometric training horizon
  (``truncated``: a time limit).

Seeding: ``reset(seed=...)`` seeds ``np_random``, which draws the workload (when generated), the config point,
the shuffle stream and the horizon, so the same seed gives the same episode.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from foundation.errors import BadInputError
from genet.lb.observations import (GENET_QUEUE_CAP, GENET_SIZE_CAP, PARK_OBS_HIGH, observation_size, observe,
                                   parse_layout)
from genet.lb.simulator import GENET, LbBatch, LbSetting, named_setting, setting_from_config
from traces.workload import Workload

ENV_ID = "genet/LoadBalance-v0"
__all__ = ["LoadBalanceEnv", "register_envs", "ENV_ID", "observation_box"]


def observation_box(layout: str) -> spaces.Box:
    """The Box of a layout's observations."""
    kind, w = parse_layout(layout)
    n = observation_size(layout)
    low = np.zeros(n, dtype=np.float32)
    if kind == "genet":
        high = np.array([GENET_QUEUE_CAP] * w + [GENET_SIZE_CAP], dtype=np.float32)
    elif kind == "park":
        high = np.full(n, PARK_OBS_HIGH, dtype=np.float32)
    else:
        high = np.full(n, np.inf, dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


class LoadBalanceEnv(gym.Env):
    """Dispatch jobs to workers (see the module docstring).

    setting: an :class:`LbSetting` or a setting name ("genet", "park"); default Genet's
    workloads: workloads to draw episodes from (None: generate them)
    config_range: draw each episode's setting from this range of traces/spaces/lb.json (None: the setting's)
    env_config: one fixed point of the space instead (None)
    reset_prob: the training horizon's per-ms probability (None: the setting's; 0: drain every job)
    layout: the observation layout (None: the setting's)
    reward_scale: factor on every reward (1.0)
    """

    metadata = {"render_modes": []}

    def __init__(self, setting: LbSetting | str = GENET, workloads: Sequence[Workload] | None = None,
                 config_range: str | None = None, env_config: dict | None = None, reset_prob: float | None = None,
                 layout: str | None = None, reward_scale: float = 1.0):
        super().__init__()
        self.setting = named_setting(setting) if isinstance(setting, str) else setting
        self.workloads = list(workloads) if workloads is not None else None
        if self.workloads is not None and not self.workloads:
            raise BadInputError("LoadBalanceEnv: the workload list is empty")
        self._space = None
        if config_range is not None or env_config is not None:
            from traces.config_space import check_range_name, load_space
            self._space = load_space("lb")
            if env_config is not None:
                self._space.validate(env_config)
            else:
                check_range_name(config_range)
        self.config_range, self.env_config = config_range, env_config
        self.reset_prob = self.setting.reset_prob if reset_prob is None else float(reset_prob)
        self.layout = layout or self.setting.layout
        kind, w = parse_layout(self.layout)
        if w != self.setting.n_workers:
            raise BadInputError(f"LoadBalanceEnv: layout {self.layout} is for {w} workers, the setting has "
                                f"{self.setting.n_workers}")
        self.reward_scale = float(reward_scale)
        self._genet_layout = kind == "genet"
        self.observation_space = observation_box(self.layout)
        self.action_space = spaces.Discrete(self.setting.n_workers)
        self.batch: LbBatch | None = None
        self.workload: Workload | None = None
        self.episode_setting = self.setting

    def _episode(self, options: dict | None) -> tuple[LbSetting, Workload]:
        setting = self.setting
        if self._space is not None:
            cfg = self.env_config if self.env_config is not None else self._space.sample(self.np_random,
                                                                                          self.config_range)
            setting = setting_from_config({k: v for k, v in cfg.items() if k in self._space.names},
                                          name="episode", base=self.setting)
        if options and options.get("workload") is not None:
            return setting, options["workload"]
        if self.workloads is not None:
            return setting, self.workloads[int(self.np_random.integers(len(self.workloads)))]
        return setting, setting.workload_for(self.np_random, name="episode")

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        setting, workload = self._episode(options)
        self.episode_setting, self.workload = setting, workload
        if self.batch is None or self.batch.max_jobs < workload.n_jobs:
            self.batch = LbBatch(1, setting.n_workers, max(workload.n_jobs, 2048), setting.event_order)
        self.batch.load(0, workload, setting.service_rates, setting.queue_shuffle_prob, self.np_random,
                        self.reset_prob)
        return self._obs(), self._info()

    def _obs(self) -> np.ndarray:
        if self._genet_layout:
            obs = self.batch.genet_observation(0)
        else:
            obs = observe(self.batch.state(), self.layout)[0]
        return np.minimum(np.maximum(obs, self.observation_space.low), self.observation_space.high)

    def _info(self) -> dict[str, Any]:
        b = self.batch
        return {"time_ms": float(b.now[0]), "jobs_dispatched": int(b.next_job[0]) - int(b.incoming[0] >= 0),
                "jobs_finished": int(b.n_finished[0])}

    def step(self, action):
        if self.batch is None:
            raise BadInputError("LoadBalanceEnv: call reset() before step()")
        if self.batch.done[0]:
            raise BadInputError("LoadBalanceEnv: the episode is over; call reset()")
        a = int(np.asarray(action).reshape(-1)[0])
        if not 0 <= a < self.setting.n_workers:
            raise BadInputError(f"LoadBalanceEnv: action {a} is not a worker index 0..{self.setting.n_workers - 1}")
        reward = float(self.batch.step(np.array([a]))[0]) * self.reward_scale
        truncated = self.batch.truncated(0)
        terminated = bool(self.batch.done[0]) and not truncated
        return self._obs(), reward, terminated, truncated, self._info()

    def episode_result(self):
        """The :class:`~genet.lb.simulator.EpisodeResult` of the episode so far (rewards not included: 0)."""
        from genet.lb.simulator import _result
        return _result(self.batch, 0, self.workload, 0.0, 0)


def register_envs() -> None:
    """Register ``genet/LoadBalance-v0`` with Gymnasium (idempotent); call it before
    ``gymnasium.make("genet/LoadBalance-v0")``: nothing registers it on import."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="genet.lb.env:LoadBalanceEnv")
