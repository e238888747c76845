"""The Aurora rate controller, defined once: the simulator's environment
(:class:`genet.cc.env.AuroraEnv`) and the real UDP sender (:mod:`sender`)
both drive it. Imports only numpy and the numba-free :mod:`genet.cc.monitor`
/ :mod:`genet.cc.reward` (no numba, gymnasium, torch or matplotlib), so a
host that only sends packets loads it in milliseconds.

One decision cycle (genet-simulators.md §4.4-§4.6, testbeds.md §4.1)::

    ctl = AuroraController(AuroraConfig(), initial_rate_pps=...)
    ctl.start(now_s)                               # first monitor interval (MI)
    ... feed ctl.monitor per packet (on_packet_sent / _acked / _lost) or in batches (on_events)
    mi = ctl.finish_interval(now_s, serialisation_s)   # -> MonitorInterval, observation, next MI length
    rate_pps = ctl.apply_action(policy_action)     # Aurora's action -> rate mapping

* **Action -> rate** (:func:`apply_rate_action`): rate (1 + delta a) for
  a >= 0, rate / (1 - delta a) otherwise, clamped to [5, 20000] packets/s of
  1500 bytes (0.06-240 Mbit/s; delta = 1 in Genet). The base is the
  controller's current (target) rate, as in Genet's simulator.
* **Next MI length** (:func:`next_interval_s`): ``mi_rtt_proportion`` x the
  finished MI's mean RTT + the mean per-packet serialisation time at the
  bottleneck; unchanged while the MI has no RTT sample; the first MI lasts
  ``initial_interval_s`` (0.01 s). The simulator knows the serialisation
  time (1 / trace bandwidth at each send); a real path does not, so
  :func:`measured_serialisation_s` estimates it as one packet at the MI's
  delivery rate (its send rate when nothing was delivered).
* **Initial rate** (:func:`initial_rate_pps`): 10 packets per minimum RTT
  when the path's RTT is known (the simulator; ``genet emulate cc`` from the
  trace's delay), else Genet's UDT plugin's 1.2 Mbit/s.
* **Interval length** (:func:`next_interval_s`): the last MI's mean latency plus one packet's
  serialisation. A real sender takes the serialisation from the MI's delivery rate
  (:func:`measured_serialisation_s`); Genet's simulator from the link's true bandwidth at the MI's sends
  (an oracle; ``AuroraConfig.interval_serialisation = "link"``, the default and the shipped models').
  They agree when the sender fills the link and part ways when it does not: below the link's rate the
  measured rule is longer, and in a 0.5-s outage at 0.1 Mbit/s the oracle adds 120 ms to the next MI where
  the measured rule adds ~6 ms, so the simulator's policy sees one long MI where the real sender sees two
  short ones (docs/fidelity.md: on the Pantheon India trace that alone made the simulated
  Aurora models 20 % faster than the emulated ones). ``"measured"`` is the real sender's rule in the
  simulator, for models trained from now on.
* **Start-up** (``AuroraConfig.startup``, :data:`STARTUPS`): ``"aurora"``
  (default; Aurora's reference) paces at the initial rate from the first
  packet on, whatever the link. ``"window"`` (a deliberate difference from
  Aurora, for models trained with it) adds an initial window: until the
  first ACK, at most ``initial_window_packets`` (10: TCP's IW10) packets are
  in flight (:func:`startup_window_open`; a loss notice frees its slot, so a
  window lost whole does not stall the sender), and at the first ACK the rate
  becomes min(rate, IW / first RTT sample) (:func:`startup_rate_after_first_ack_pps`),
  then the policy's actions continue from it as with ``"aurora"``. Why
  IW / first RTT: it is the rate the window itself was delivered at, known
  at the first ACK (a delivery rate from ACK spacing needs a second ACK, one
  more packet time later: 120 ms on a 0.1-Mbit/s link). Where the first RTT
  is the minimum RTT (the window did not queue: every link where Aurora's
  start-up does not overshoot) it equals the initial rate (10 packets per
  min RTT), so the start-up changes nothing there; where the window queued
  (a slow link) the first RTT includes that queueing and the rate drops with
  it (0.1 Mbit/s, 2 ms: 2,500 -> 80 packets/s, instead of ~300 packets sent
  into a 10-packet queue before the first ACK). It never raises the rate.
  The simulator's rate sender (:mod:`genet.cc.senders.rate`, numba-compiled
  from these two functions) and the real UDP sender (:mod:`sender.udp_sender`)
  both apply it; the exported model records it (:func:`genet.cc.registry.load_aurora_policy`).
* **Reward normaliser** — the bandwidth ``bw`` of the genet-form reward
  ``500 tput / bw - 1000 latency_s - 2000 loss`` (:mod:`genet.cc.reward`):
  ``"trace"`` = the trace's mean bandwidth (simulator default, Genet CC-new);
  ``"interval"`` = the bandwidth available during the MI (CC-old); on a real
  path both are unknown, so ``"measured"`` uses **the path's measured
  capacity: the largest MI delivery rate seen so far in the run** (a running
  max of ``MonitorInterval.throughput_pps``; the first MI with deliveries
  normalises by itself). Whole-run rewards of emulated runs use the link's
  own capacity from its log instead (``#`` delivery opportunities over the
  run; equal to the trace mean over the run's span) — see
  :func:`run_reward_normaliser_pps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genet.cc.monitor import GENET_FEATURES, IntervalMonitor, MonitorInterval, ObservationHistory
from genet.cc.reward import REWARD_FORMS, interval_reward
from foundation.errors import BadInputError
from foundation.packets import PACKET_BITS

MIN_RATE_PPS = 5.0
MAX_RATE_PPS = 20000.0
#: Genet's UDT plugin's initial (reset) rate, used when the path's RTT is unknown.
DEFAULT_INITIAL_RATE_MBPS = 1.2
REWARD_NORMALISERS = ("trace", "interval", "measured")
#: How the next monitor interval's serialisation part is found (module docstring): "link" = the mean 1/bandwidth of
#: the link at the interval's sends (Genet's simulator: an oracle; the shipped models'), "measured" = one packet at
#: the interval's delivery rate (:func:`measured_serialisation_s`: what a real sender can know, the UDP sender's rule).
INTERVAL_SERIALISATIONS = ("link", "measured")
#: Start-ups (module docstring): "aurora" = Aurora's reference (the shipped models'), "window" = initial window.
STARTUPS = ("aurora", "window")
#: Default initial window of the "window" start-up, packets (TCP's IW10, RFC 6928).
DEFAULT_INITIAL_WINDOW_PACKETS = 10
#: Largest initial window accepted, packets (a window that large is no start-up limit).
MAX_INITIAL_WINDOW_PACKETS = 1000


@dataclass(frozen=True)
class AuroraConfig:
    """Settings of the Aurora controller and environment (defaults = Genet).

    history_length: monitor intervals in the observation (10)
    features: per-interval features (sent_latency_inflation, latency_ratio, recv_ratio)
    delta_scale: delta of the rate action mapping (1.0)
    min_rate_pps / max_rate_pps: sending-rate clamp in 1500-byte packets/s (5 / 20000)
    reward_form: "genet" (bandwidth-normalised) or "aurora" ("genet")
    reward_normaliser: "trace" (trace mean bandwidth), "interval" (CC-old) or
        "measured" (largest MI delivery rate so far: real paths) ("trace")
    mi_rtt_proportion: interval length in units of the last mean latency (1.0)
    initial_interval_s: length of the first interval before any ACK (0.01)
    clip_observation: clip features to their declared bounds (True)
    startup: "aurora" (pace at the initial rate from the first packet, Aurora's reference) or "window"
        (at most ``initial_window_packets`` in flight until the first ACK, then min(rate, IW / first RTT));
        see the module docstring ("aurora")
    initial_window_packets: the "window" start-up's initial window in 1500-byte packets, 1-1000 (10)
    interval_serialisation: the simulator's next-interval serialisation term, "link" (Genet's: the link's true
        bandwidth at the sends) or "measured" (the MI's delivery rate, as the real UDP sender must) ("link")
    queue_packets / loss_rate / delay_ms: simulator only: override every trace's own value
        (None: the trace's, then defaults)
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
    startup: str = "aurora"
    initial_window_packets: int = DEFAULT_INITIAL_WINDOW_PACKETS
    interval_serialisation: str = "link"
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
        if self.history_length < 1:
            raise BadInputError(f"history_length must be >= 1, got {self.history_length}")
        if self.interval_serialisation not in INTERVAL_SERIALISATIONS:
            raise BadInputError(f"interval_serialisation must be one of {', '.join(INTERVAL_SERIALISATIONS)}, got "
                                f"{self.interval_serialisation!r}")
        if self.startup not in STARTUPS:
            raise BadInputError(f"startup must be one of {', '.join(STARTUPS)}, got {self.startup!r}")
        iw = self.initial_window_packets
        if (isinstance(iw, bool) or not isinstance(iw, (int, float, np.integer, np.floating))
                or not 1 <= iw <= MAX_INITIAL_WINDOW_PACKETS or iw != int(iw)):
            raise BadInputError(f"initial_window_packets must be a whole number of packets in 1-"
                                f"{MAX_INITIAL_WINDOW_PACKETS}, got {self.initial_window_packets!r}")
        object.__setattr__(self, "initial_window_packets", int(self.initial_window_packets))
        object.__setattr__(self, "features", tuple(self.features))

    @property
    def observation_size(self) -> int:
        return self.history_length * len(self.features)

    @property
    def startup_window_packets(self) -> int:
        """The start-up's window limit before the first ACK, packets; 0 = none (``startup="aurora"``)."""
        return self.initial_window_packets if self.startup == "window" else 0


def apply_rate_action(rate_pps: float, action: float, delta_scale: float = 1.0,
                      min_rate_pps: float = MIN_RATE_PPS, max_rate_pps: float = MAX_RATE_PPS) -> float:
    """Aurora's action mapping: rate (1 + delta a) for a >= 0, rate / (1 - delta a) otherwise, clamped."""
    a = float(action)
    if not np.isfinite(a):
        raise BadInputError(f"rate action must be finite, got {action}")
    rate = rate_pps * (1.0 + delta_scale * a) if a >= 0 else rate_pps / (1.0 - delta_scale * a)
    return float(min(max(rate, min_rate_pps), max_rate_pps))


def initial_rate_pps(config: AuroraConfig, min_rtt_s: float | None = None) -> float:
    """10 packets per minimum RTT (floored at 1 ms) when known, else 1.2 Mbit/s; clamped to the rate range."""
    if min_rtt_s is None:
        rate = DEFAULT_INITIAL_RATE_MBPS * 1e6 / PACKET_BITS
    else:
        rate = 10.0 / max(float(min_rtt_s), 1e-3)
    return float(np.clip(rate, config.min_rate_pps, config.max_rate_pps))


def startup_window_open(window_packets: float, acked_packets: float, inflight_packets: float) -> bool:
    """The start-up's send gate (one definition; the simulator compiles this function with numba): True when
    the sender may send now. ``window_packets`` 0 (Aurora's start-up) never gates; otherwise, until the first
    ACK (``acked_packets`` 0), only while fewer than ``window_packets`` packets are in flight (sent, neither
    acknowledged nor declared lost)."""
    return window_packets <= 0 or acked_packets > 0 or inflight_packets < window_packets


def startup_rate_after_first_ack_pps(rate_pps: float, window_packets: float, first_rtt_s: float,
                                     min_rate_pps: float) -> float:
    """The rate from the first ACK on (one definition; the simulator compiles it with numba): unchanged for
    Aurora's start-up (``window_packets`` 0), else min(rate, window / first RTT sample (floored at 1 ms)),
    not below ``min_rate_pps`` (the module docstring says why)."""
    if window_packets <= 0:
        return rate_pps
    window_rate = window_packets / max(first_rtt_s, 1e-3)
    return max(min(rate_pps, window_rate), min_rate_pps)


def next_interval_s(mi: MonitorInterval, current_s: float, config: AuroraConfig, serialisation_s: float) -> float:
    """Length of the next MI: proportion x the MI's mean RTT + serialisation time (unchanged without RTTs)."""
    if mi.avg_latency_s > 0:
        return config.mi_rtt_proportion * mi.avg_latency_s + serialisation_s
    return current_s


def measured_serialisation_s(mi: MonitorInterval) -> float:
    """A real path's per-packet serialisation estimate: one packet at the MI's delivery rate (else its send rate)."""
    pps = mi.throughput_pps
    if not pps > 0:
        d = mi.send_duration_s
        pps = mi.packets_sent / d if d > 0 else 0.0
    return 1.0 / pps if pps > 0 else 0.0


def run_reward_normaliser_pps(link_capacity_mbps: float | None, max_interval_delivery_pps: float) -> float:
    """Normaliser of a whole real run's genet-form reward: the link log's measured capacity when there is
    one (emulation), else the largest MI delivery rate the sender measured (real paths)."""
    if link_capacity_mbps is not None and np.isfinite(link_capacity_mbps) and link_capacity_mbps > 0:
        return float(link_capacity_mbps) * 1e6 / PACKET_BITS
    return float(max_interval_delivery_pps)


_initial_rate_pps = initial_rate_pps  # (the constructor's argument shadows the name)


class AuroraController:
    """Events -> :class:`~genet.cc.monitor.IntervalMonitor` -> observation history -> new rate.

    config: :class:`AuroraConfig`
    initial_rate_pps: starting rate (see :func:`initial_rate_pps`)

    Attributes after :meth:`finish_interval`: ``observation`` (float32, clipped to the
    feature bounds when ``config.clip_observation``), ``interval_s`` (next MI's length),
    ``max_delivery_pps`` (largest MI delivery rate so far, the "measured" normaliser).
    """

    def __init__(self, config: AuroraConfig | None = None, initial_rate_pps: float | None = None):
        self.config = config or AuroraConfig()
        self.rate_pps = float(initial_rate_pps if initial_rate_pps is not None else
                              _initial_rate_pps(self.config, None))
        self.monitor = IntervalMonitor()
        self.history = ObservationHistory(self.config.features, self.config.history_length)
        self.obs_low, self.obs_high = self.history.bounds()
        self.interval_s = self.config.initial_interval_s
        self.max_delivery_pps = 0.0
        self.observation = self.history.observation()
        self.intervals = 0

    def start(self, now_s: float) -> None:
        """Begin a monitor interval at ``now_s``."""
        self.monitor.start(now_s)

    def finish_interval(self, now_s: float, serialisation_s: float | None = None) -> MonitorInterval:
        """Close the MI at ``now_s``: record, observation, next MI length (``serialisation_s`` None:
        :func:`measured_serialisation_s`). The next MI starts at ``now_s``."""
        mi = self.monitor.finish(now_s)
        if serialisation_s is None:
            serialisation_s = measured_serialisation_s(mi)
        self.interval_s = next_interval_s(mi, self.interval_s, self.config, serialisation_s)
        if mi.throughput_pps > self.max_delivery_pps:
            self.max_delivery_pps = mi.throughput_pps
        obs = self.history.push(mi)  # a fresh float32 array
        if self.config.clip_observation:
            np.clip(obs, self.obs_low, self.obs_high, out=obs)
        self.observation = obs
        self.intervals += 1
        return mi

    def rehearse(self, now_s: float) -> np.ndarray:
        """The work of :meth:`finish_interval` at ``now_s`` with nothing changed (a real sender runs it, and
        the policy on its result, while it waits, so that the decision path's caches stay warm); returns
        the current observation (clipped and float32, as :meth:`finish_interval` makes it)."""
        mi = self.monitor.peek(now_s)
        next_interval_s(mi, self.interval_s, self.config, measured_serialisation_s(mi))
        self.history.row(mi)
        obs = self.history.observation()
        if self.config.clip_observation:
            np.clip(obs, self.obs_low, self.obs_high, out=obs)
        return obs

    def may_send(self, acked_packets: int, inflight_packets: int) -> bool:
        """The start-up's send gate for this config (:func:`startup_window_open`)."""
        return startup_window_open(self.config.startup_window_packets, acked_packets, inflight_packets)

    def on_first_ack(self, rtt_s: float) -> float:
        """The first ACK came with RTT sample ``rtt_s``: the start-up's rate from now on
        (:func:`startup_rate_after_first_ack_pps`; unchanged for Aurora's start-up); returns it."""
        c = self.config
        self.rate_pps = startup_rate_after_first_ack_pps(self.rate_pps, c.startup_window_packets, rtt_s,
                                                         c.min_rate_pps)
        return self.rate_pps

    def apply_action(self, action: float) -> float:
        """Aurora's action -> new rate (packets/s); returns it."""
        c = self.config
        self.rate_pps = apply_rate_action(self.rate_pps, action, c.delta_scale, c.min_rate_pps, c.max_rate_pps)
        return self.rate_pps

    def reward(self, mi: MonitorInterval, bandwidth_pps: float | None = None) -> float:
        """The MI's reward. ``bandwidth_pps`` is the normaliser for "trace"/"interval" (the simulator
        passes it); "measured" uses :attr:`max_delivery_pps` (falls back to it when not given)."""
        c = self.config
        if c.reward_form == "aurora":
            return interval_reward(mi, "aurora")
        if c.reward_normaliser == "measured" or bandwidth_pps is None:
            bandwidth_pps = self.max_delivery_pps
            if not bandwidth_pps > 0:  # nothing delivered yet: the throughput term is 0
                return -1000.0 * mi.avg_latency_s - 2000.0 * mi.loss_ratio
        return interval_reward(mi, "genet", bandwidth_pps)
