"""The Aurora congestion-control environment, Gymnasium id ``genet/Aurora-v0``.

One episode = one rate-based sender over one simulated link
(genet-simulators.md §4.4-§4.6, Genet's CC-new ``AuroraEnv``):

* **Environment source**: a list of traces (one picked per episode with
  ``np_random``, or ``reset(options={"trace": trace})``), or the CC config
  space (:func:`traces.config_space.load_space`): a range name ("rl3") or one
  fixed config dict, turned into a 30-s trace by
  :func:`traces.generators.generate_trace`. Properties a trace lacks take
  the link defaults (Pantheon traces: queue 10 packets, loss 0).
* **Action**: one float a; rate <- rate (1 + delta a) for a >= 0, rate /
  (1 - delta a) otherwise, clamped to [5, 20000] packets/s (delta = 1 in
  Genet). Initial rate: 10 packets per min RTT.
* **Monitor intervals**: the first (at reset, no action) lasts 0.01 s or until
  the first ACK; each next one lasts avg latency of the previous + mean
  per-packet serialisation time of its packets (``mi_rtt_proportion`` x
  latency), cut at the first send after that (:mod:`genet.cc.events`).
* **Observation**: :class:`~genet.cc.monitor.ObservationHistory`, 10 x 3 = 30
  values. Deviation: values are clipped to Genet's declared feature bounds
  (Genet declares them but does not clip) so observations always lie in the
  observation space; ``clip_observation=False`` turns this off.
* **Reward**: :func:`~genet.cc.reward.interval_reward`, form "genet"
  (normalised by the trace mean bandwidth; ``reward_normaliser="interval"``
  uses the bandwidth available during the interval, as CC-old did) or
  "aurora".
* **End**: when simulated time reaches the end of the trace (30 s for
  synthetic traces). That is a time limit, so the step returns
  ``truncated=True`` and ``terminated=False``.

``info`` of each step holds the interval's throughput_mbps, latency_ms,
loss_rate, sending rate_mbps and the interval bounds.
"""

from __future__ import annotations

from genet.errors import BadInputError

from dataclasses import dataclass, field
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genet.cc.link import LinkConfig, mbps_to_pps, pps_to_mbps
from genet.cc.monitor import GENET_FEATURES, IntervalMonitor, MonitorInterval, ObservationHistory
from genet.cc.reward import REWARD_FORMS, interval_reward
from genet.cc.senders import RateSender
from genet.cc.simulator import EventLog, Simulation
from traces import Trace

ENV_ID = "genet/Aurora-v0"
MIN_RATE_PPS = 5.0
MAX_RATE_PPS = 20000.0
REWARD_NORMALISERS = ("trace", "interval")


@dataclass(frozen=True)
class AuroraConfig:
    """Settings of the Aurora environment (defaults = Genet).

    history_length: monitor intervals in the observation (10)
    features: per-interval features (sent_latency_inflation, latency_ratio, recv_ratio)
    delta_scale: delta of the rate action mapping (1.0)
    min_rate_pps / max_rate_pps: sending-rate clamp in packets/s (5 / 20000)
    reward_form: "genet" (bandwidth-normalised) or "aurora" ("genet")
    reward_normaliser: "trace" (trace mean bandwidth) or "interval" (CC-old) ("trace")
    mi_rtt_proportion: interval length in units of the last mean latency (1.0)
    initial_interval_s: length of the first interval before any ACK (0.01)
    clip_observation: clip features to their declared bounds (True)
    queue_packets / loss_rate / delay_ms: override every trace's own value (None: the trace's, then defaults)
    """

    history_length: int = 10
    features: tuple[str, ...] = GENET_FEATURES
    delta_scale: float = 1.0
    min_rate_pps: float = MIN_RATE_PPS
    max_rate_pps: float = MAX_RATE_PPS
    reward_form: str = "genet"
    reward_normaliser: str = "trace"
    mi_rtt_proportion: float = 1.0
    initial_interval_s: float = 0.01
    clip_observation: bool = True
    queue_packets: float | None = None
    loss_rate: float | None = None
    delay_ms: float | None = None

    def __post_init__(self):
        if self.reward_form not in REWARD_FORMS:
            raise BadInputError(f"reward_form must be one of {REWARD_FORMS}, got {self.reward_form!r}")
        if self.reward_normaliser not in REWARD_NORMALISERS:
            raise BadInputError(f"reward_normaliser must be one of {REWARD_NORMALISERS}, got {self.reward_normaliser!r}")
        if not self.delta_scale > 0:
            raise BadInputError(f"delta_scale must be > 0, got {self.delta_scale}")
        if not 0 < self.min_rate_pps <= self.max_rate_pps:
            raise BadInputError(f"need 0 < min_rate_pps <= max_rate_pps, got {self.min_rate_pps}, {self.max_rate_pps}")
        object.__setattr__(self, "features", tuple(self.features))

    @property
    def observation_size(self) -> int:
        return self.history_length * len(self.features)


def apply_rate_action(rate_pps: float, action: float, delta_scale: float = 1.0,
                      min_rate_pps: float = MIN_RATE_PPS, max_rate_pps: float = MAX_RATE_PPS) -> float:
    """Aurora's action mapping: rate (1 + delta a) for a >= 0, rate / (1 - delta a) otherwise, clamped."""
    a = float(action)
    if not np.isfinite(a):
        raise BadInputError(f"rate action must be finite, got {action}")
    rate = rate_pps * (1.0 + delta_scale * a) if a >= 0 else rate_pps / (1.0 - delta_scale * a)
    return float(min(max(rate, min_rate_pps), max_rate_pps))


class AuroraEnv(gym.Env):
    """Aurora rate control over the packet-level simulator (see the module docstring).

    traces: traces to draw episodes from (None: generate from the config space)
    config_range: CC config-space range to sample configs from ("rl3"), when no traces
    env_config: one fixed CC config dict instead of a range (None)
    aurora: :class:`AuroraConfig` (Genet defaults)
    """

    metadata = {"render_modes": []}

    def __init__(self, traces: Sequence[Trace] | None = None, config_range: str = "rl3",
                 env_config: dict | None = None, aurora: AuroraConfig | None = None, **aurora_kwargs: Any):
        super().__init__()
        self.aurora = aurora or AuroraConfig(**aurora_kwargs)
        self.traces = list(traces) if traces is not None else None
        if self.traces is not None and not self.traces:
            raise BadInputError("AuroraEnv: the trace list is empty")
        self.config_range = config_range
        self.env_config = env_config
        self._space = None
        if self.traces is None:
            from traces.config_space import load_space
            self._space = load_space("cc")
            if env_config is not None:
                self._space.validate(env_config)
            elif config_range not in self._space.dimensions[0].ranges:
                raise BadInputError(f"unknown cc config range {config_range!r}")
        lo, hi = ObservationHistory(self.aurora.features, self.aurora.history_length).bounds()
        self.observation_space = spaces.Box(lo, hi, dtype=np.float32)
        self.action_space = spaces.Box(-1e12, 1e12, shape=(1,), dtype=np.float32)
        self.sim: Simulation | None = None
        self.trace: Trace | None = None

    # -------------------------------------------------------------- episode
    def _pick_trace(self, options: dict | None) -> Trace:
        if options and options.get("trace") is not None:
            return options["trace"]
        if self.traces is not None:
            return self.traces[int(self.np_random.integers(len(self.traces)))]
        from traces.generators import generate_trace
        cfg = self.env_config if self.env_config is not None else self._space.sample(self.np_random,
                                                                                      self.config_range)
        return generate_trace("cc", cfg, self.np_random, name="aurora-episode", space=self._space)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        a = self.aurora
        self.trace = self._pick_trace(options)
        self.link = LinkConfig.from_trace(self.trace, delay_ms=a.delay_ms, queue_packets=a.queue_packets,
                                          loss_rate=a.loss_rate)
        self.avg_bandwidth_pps = float(mbps_to_pps(self.link.mean_bandwidth_mbps))
        min_rtt_s = max(2 * self.link.delay_ms / 1000.0, 1e-3)
        self.rate_pps = float(np.clip(10.0 / min_rtt_s, a.min_rate_pps, a.max_rate_pps))
        sim_seed = int(self.np_random.integers(2**63 - 1))
        self.sim = Simulation(self.link, RateSender(pps_to_mbps(self.rate_pps)), seed=sim_seed)
        self.monitor = IntervalMonitor()
        self.history = ObservationHistory(a.features, a.history_length)
        self.interval_s = a.initial_interval_s
        self.intervals: list[MonitorInterval] = []
        self.episode_logs: list[EventLog] = []
        self._t_s, self._bw_pps, _ = self.link.arrays()
        mi = self._run_interval()
        return self._observation(mi), self._info(mi)

    def _run_interval(self) -> MonitorInterval:
        sim = self.sim
        start = sim.now_s
        self.monitor.start(start)
        until = min(start + self.interval_s, self.link.duration_s)
        log = sim.run(until, cut_at_send=True)
        self.episode_logs.append(log)
        self.monitor.on_events(log.kind, log.time_s, log.rtt_s)
        mi = self.monitor.finish(sim.now_s)
        self.intervals.append(mi)
        # next interval: mean latency + mean serialisation time of this interval's packets
        sent_t = log.time_s[log.kind == 0]
        if mi.avg_latency_s > 0:
            extra = float(np.mean(1.0 / self._bw_at(sent_t))) if sent_t.size else 0.0
            self.interval_s = self.aurora.mi_rtt_proportion * mi.avg_latency_s + extra
        return mi

    def _bw_at(self, t: np.ndarray) -> np.ndarray:
        idx = np.clip(np.searchsorted(self._t_s, t, side="right") - 1, 0, self._t_s.size - 1)
        return self._bw_pps[idx]

    def _observation(self, mi: MonitorInterval) -> np.ndarray:
        obs = self.history.push(mi)
        if self.aurora.clip_observation:
            obs = np.clip(obs, self.observation_space.low, self.observation_space.high)
        return obs.astype(np.float32)

    def _info(self, mi: MonitorInterval) -> dict:
        return {"throughput_mbps": pps_to_mbps(mi.throughput_pps), "latency_ms": 1000 * mi.avg_latency_s,
                "loss_rate": mi.loss_ratio, "rate_mbps": pps_to_mbps(self.rate_pps),
                "interval_start_s": mi.send_start_s, "interval_end_s": mi.send_end_s}

    def step(self, action):
        if self.sim is None:
            raise RuntimeError("AuroraEnv.step called before reset")
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        cfg = self.aurora
        self.rate_pps = apply_rate_action(self.rate_pps, a, cfg.delta_scale, cfg.min_rate_pps, cfg.max_rate_pps)
        self.sim.set_rate_pps(self.rate_pps)
        mi = self._run_interval()
        if cfg.reward_form == "aurora":
            bw = None
        elif cfg.reward_normaliser == "interval":
            d = mi.send_duration_s
            bw = self.link.available_packets(mi.send_start_s, mi.send_end_s) / d if d > 0 else self.avg_bandwidth_pps
        else:
            bw = self.avg_bandwidth_pps
        reward = interval_reward(mi, cfg.reward_form, bw)
        truncated = self.sim.done
        return self._observation(mi), float(reward), False, truncated, self._info(mi)

    def episode_log(self) -> EventLog:
        """Every event of the episode so far."""
        return EventLog.concatenate(self.episode_logs)


def register_env() -> None:
    """Register ``genet/Aurora-v0`` with Gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="genet.cc.env:AuroraEnv")


register_env()
