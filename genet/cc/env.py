"""The Aurora congestion-control environment, Gymnasium id ``genet/Aurora-v0`` (registered by
:func:`register_envs`, explicitly: importing this module registers nothing).

One episode = one rate-based sender over one simulated link
(genet-simulators.md §4.4-§4.6, Genet's CC-new ``AuroraEnv``):

* **Environment source**: a list of traces (one picked per episode with
  ``np_random``, or ``reset(options={"trace": trace})``), or the CC config
  space (:func:`traces.config_space.load_space`): a range name ("rl3") or one
  fixed config dict, turned into a 30-s trace by
  :func:`traces.generators.generate_trace`. Properties a trace lacks take
  the link defaults (Pantheon traces: queue 10 packets, loss 0).
* **Controller**: :class:`genet.cc.aurora.AuroraController` — the one
  definition of the action -> rate mapping (rate (1 + delta a) for a >= 0,
  rate / (1 - delta a) otherwise, clamped to [5, 20000] packets/s; delta = 1
  in Genet), the interval-length rule, the observation and the reward that
  the real UDP sender (:mod:`sender`) uses too. Initial rate: 10 packets per
  min RTT. Start-up (``AuroraConfig.startup``): "aurora" (default) paces at
  that rate from the first packet; "window" keeps at most
  ``initial_window_packets`` in flight until the first ACK, then continues at
  min(rate, IW / first RTT) (:mod:`genet.cc.aurora`; the simulator's rate
  sender applies it, the controller's rate follows at the first ACK).
* **Monitor intervals**: the first (at reset, no action) lasts 0.01 s or until
  the first ACK; each next one lasts avg latency of the previous + mean
  per-packet serialisation time of its packets (``mi_rtt_proportion`` x
  latency), cut at the first send after that (:mod:`genet.cc.events`). The
  serialisation term is the link's true bandwidth at the sends (Genet's,
  ``interval_serialisation="link"``) or, with ``"measured"``, one packet at
  the interval's delivery rate, the real sender's rule (genet/cc/aurora.py).
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

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genet.cc.aurora import (MAX_RATE_PPS, MIN_RATE_PPS, REWARD_NORMALISERS, AuroraConfig, AuroraController,
                             apply_rate_action, initial_rate_pps)
from genet.cc.link import LinkConfig, mbps_to_pps, pps_to_mbps
from genet.cc.monitor import MonitorInterval, ObservationHistory
from genet.cc.senders import RateSender
from genet.cc.simulator import EV_ACKED, EventLog, Simulation
from foundation.errors import BadInputError, GenetRuntimeError
from traces import Trace

ENV_ID = "genet/Aurora-v0"
__all__ = ["AuroraEnv", "AuroraConfig", "apply_rate_action", "register_envs", "ENV_ID", "MIN_RATE_PPS",
           "MAX_RATE_PPS", "REWARD_NORMALISERS"]


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
        self.controller = AuroraController(a, initial_rate_pps(a, 2 * self.link.delay_ms / 1000.0))
        sim_seed = int(self.np_random.integers(2**63 - 1))
        self.sim = Simulation(self.link, RateSender(pps_to_mbps(self.rate_pps),
                                                    startup_window_packets=a.startup_window_packets,
                                                    min_rate_pps=a.min_rate_pps), seed=sim_seed)
        self._first_ack_seen = False
        self.intervals: list[MonitorInterval] = []
        self.episode_logs: list[EventLog] = []
        self._t_s, self._bw_pps, _ = self.link.arrays()
        mi = self._run_interval()
        return self.controller.observation, self._info(mi)

    @property
    def rate_pps(self) -> float:
        return self.controller.rate_pps

    @property
    def monitor(self):
        return self.controller.monitor

    @property
    def history(self) -> ObservationHistory:
        return self.controller.history

    @property
    def interval_s(self) -> float:
        return self.controller.interval_s

    def _run_interval(self) -> MonitorInterval:
        sim, ctl = self.sim, self.controller
        start = sim.now_s
        ctl.start(start)
        until = min(start + ctl.interval_s, self.link.duration_s)
        log = sim.run(until, cut_at_send=True)
        self.episode_logs.append(log)
        ctl.monitor.on_events(log.kind, log.time_s, log.rtt_s)
        if not getattr(self, "_first_ack_seen", True):  # (an environment pickled before start-ups: Aurora's)
            acks = np.flatnonzero(log.kind == EV_ACKED)
            if acks.size:  # the start-up's rate from the first ACK on (what the simulator's sender applied)
                self._first_ack_seen = True
                ctl.on_first_ack(float(log.rtt_s[acks[0]]))
        # serialisation part of the next interval: "link" (Genet's) = mean 1/bandwidth at this interval's sends (the
        # simulator knows it); "measured" = the interval's own delivery rate, as the real sender (None: that rule)
        extra = None
        if self.aurora.interval_serialisation == "link":
            sent_t = log.time_s[log.kind == 0]
            extra = float(np.mean(1.0 / self._bw_at(sent_t))) if sent_t.size else 0.0
        mi = ctl.finish_interval(sim.now_s, extra)
        self.intervals.append(mi)
        return mi

    def _bw_at(self, t: np.ndarray) -> np.ndarray:
        idx = np.clip(np.searchsorted(self._t_s, t, side="right") - 1, 0, self._t_s.size - 1)
        return self._bw_pps[idx]

    def _info(self, mi: MonitorInterval) -> dict:
        return {"throughput_mbps": pps_to_mbps(mi.throughput_pps), "latency_ms": 1000 * mi.avg_latency_s,
                "loss_rate": mi.loss_ratio, "rate_mbps": pps_to_mbps(self.rate_pps),
                "interval_start_s": mi.send_start_s, "interval_end_s": mi.send_end_s}

    def step(self, action):
        if self.sim is None:
            raise GenetRuntimeError("AuroraEnv.step called before reset")
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        cfg = self.aurora
        self.sim.set_rate_pps(self.controller.apply_action(a))
        mi = self._run_interval()
        if cfg.reward_form == "aurora":
            bw = None
        elif cfg.reward_normaliser == "interval":
            d = mi.send_duration_s
            bw = self.link.available_packets(mi.send_start_s, mi.send_end_s) / d if d > 0 else self.avg_bandwidth_pps
        elif cfg.reward_normaliser == "measured":
            bw = None  # the controller's running max of delivery rates, as on a real path
        else:
            bw = self.avg_bandwidth_pps
        reward = self.controller.reward(mi, bw)
        truncated = self.sim.done
        return self.controller.observation, float(reward), False, truncated, self._info(mi)

    def episode_log(self) -> EventLog:
        """Every event of the episode so far."""
        return EventLog.concatenate(self.episode_logs)


def register_envs() -> None:
    """Register ``genet/Aurora-v0`` with Gymnasium (idempotent); call it before
    ``gymnasium.make("genet/Aurora-v0")``: nothing registers it on import."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="genet.cc.env:AuroraEnv")
