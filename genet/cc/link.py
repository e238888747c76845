"""The bottleneck link: its configuration and the numba functions that model it.

Semantics (genet-simulators.md §4.1-§4.3), one clean model:

* **Bandwidth** follows the trace as a step function (sample i holds on
  [t[i], t[i+1]); after the last timestamp the last value holds). Values below
  :data:`MIN_BANDWIDTH_MBPS` (0.1 Mbps) are raised to it, as Genet's ``Trace``
  does (§4.1), so a backlog always drains; a trace whose bandwidth is zero
  for its whole length is rejected.
* **Queue**: a fluid FIFO drained at the trace bandwidth. A packet arriving at
  the link is dropped at random with probability ``loss_rate``, else
  tail-dropped if ``backlog + 1 > queue`` (backlog in packets), else enqueued.
* **One drain instant.** The link keeps, besides the fluid backlog, the
  time the last accepted packet leaves the queue (``tail_departure_s``, the
  number its ACK is scheduled from). The queue counts as empty exactly when
  ``now >= tail_departure_s``, and a dropped packet's notice never arrives
  before that instant (the drain of the queue ahead of it). The fluid drain
  of the same instant, computed along the bandwidth integral, can differ by
  a rounding residue (1e-15 packets): with zero propagation delay a window
  sender acting on an ACK at a departure instant then saw "1 packet + 1e-15"
  in a 1-packet queue, was tail-dropped, got the loss notice at the same
  instant, re-sent, and looped there forever (and a drop notice could even
  land 1e-16 s *before* its send). Every scheduled time is now >= the time
  it is computed at, so event times never decrease.
* **Order of operations** (where Genet's two simulators disagree, Appendix A.8):
  we *drain first, then enqueue, and the packet's queueing delay includes its
  own serialisation time*. CC-old drains but excludes the packet's own
  serialisation; CC-new includes it but tests the tail drop against a backlog
  that has not been drained since the previous packet. Ours is the physical
  FIFO: delay = time to serve everything ahead of the packet plus itself.
* **Delay**: one-way propagation ``delay_ms`` on the data path and on the ACK
  path (the ACK path has no queue and no loss), plus optional delay noise on
  the data path as in CC-old: with probability ``delay_noise_probability``
  (0.1) add U(0, ``delay_noise_ms``) ms. Genet's shipped configs use 0.
* Packets are 1500 bytes (:data:`PACKET_BYTES`).

All randomness comes from a splitmix64 generator whose 64-bit state lives in
the link state record, so a simulation is reproducible from its seed and can
be paused and resumed (the Aurora environment runs it one monitor interval at
a time).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import math
from dataclasses import dataclass

import numpy as np
from genet.cc.kernels import kernel

from traces import Trace, TraceFormatError

from foundation.packets import PACKET_BITS, PACKET_BYTES  # noqa: E402,F401  (defined once)
#: Genet clamps every trace bandwidth below this to it (§4.1).
MIN_BANDWIDTH_MBPS = 0.1
#: Defaults for link properties a trace does not specify (Pantheon traces:
#: §7.3 placeholders queue 10 packets, loss 0).
DEFAULT_QUEUE_PACKETS = 10
DEFAULT_LOSS_RATE = 0.0
DEFAULT_DELAY_MS = 25.0


def mbps_to_pps(bandwidth_mbps):
    """Mbit/s -> 1500-byte packets per second."""
    return np.asarray(bandwidth_mbps, float) * 1e6 / PACKET_BITS if np.ndim(bandwidth_mbps) else \
        float(bandwidth_mbps) * 1e6 / PACKET_BITS


def pps_to_mbps(rate_pps):
    """1500-byte packets per second -> Mbit/s."""
    return rate_pps * PACKET_BITS / 1e6


@dataclass(frozen=True, eq=False)
class LinkConfig:
    """A simulated bottleneck link: a bandwidth trace plus its properties.

    timestamps_s: trace sample times, starting at 0 (e.g. [0, 30])
    bandwidth_mbps: bandwidth holding from each timestamp to the next (e.g. [5, 5])
    delay_ms: one-way propagation delay, each direction (e.g. 50; min RTT = 2 x delay_ms)
    queue_packets: bottleneck queue in 1500-byte packets, >= 1 (e.g. 10)
    loss_rate: random loss probability of each data packet, in [0, 1) (0)
    delay_noise_ms: max extra data-path delay added with probability 0.1 (0)
    name: label for results ("")
    """

    timestamps_s: np.ndarray
    bandwidth_mbps: np.ndarray
    delay_ms: float
    queue_packets: float
    loss_rate: float = 0.0
    delay_noise_ms: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        t = np.asarray(self.timestamps_s, float).reshape(-1)
        bw = np.asarray(self.bandwidth_mbps, float).reshape(-1)
        where = f"link {self.name!r}" if self.name else "link"
        if t.size == 0 or t.shape != bw.shape:
            raise BadInputError(f"{where}: need equally many timestamps and bandwidths (got {t.size} and {bw.size})")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(bw))):
            raise BadInputError(f"{where}: non-finite timestamp or bandwidth")
        if np.any(np.diff(t) < 0):
            raise BadInputError(f"{where}: timestamps_s must be non-decreasing")
        if t[-1] - t[0] <= 0:
            raise BadInputError(f"{where}: trace lasts {t[-1] - t[0]} s; expected a duration > 0 s")
        if np.any(bw < 0):
            raise BadInputError(f"{where}: negative bandwidth_mbps {bw.min()}")
        if np.all(bw[:-1] <= 0) if bw.size > 1 else bw[0] <= 0:
            raise BadInputError(f"{where}: bandwidth is zero for the whole trace; expected some sample > 0 Mbps")
        if not (math.isfinite(self.delay_ms) and self.delay_ms >= 0):
            raise BadInputError(f"{where}: delay_ms must be >= 0 (one-way propagation delay), got {self.delay_ms}")
        if not (math.isfinite(self.queue_packets) and self.queue_packets >= 1):
            raise BadInputError(f"{where}: queue_packets must be >= 1 packet, got {self.queue_packets}")
        if not (0 <= self.loss_rate < 1):
            raise BadInputError(f"{where}: loss_rate must be in [0, 1), got {self.loss_rate}")
        if not (math.isfinite(self.delay_noise_ms) and self.delay_noise_ms >= 0):
            raise BadInputError(f"{where}: delay_noise_ms must be >= 0, got {self.delay_noise_ms}")
        object.__setattr__(self, "timestamps_s", t - t[0])
        object.__setattr__(self, "bandwidth_mbps", bw)

    # --------------------------------------------------------------- builders
    @classmethod
    def from_trace(cls, trace: Trace, *, delay_ms: float | None = None, queue_packets: float | None = None,
                   loss_rate: float | None = None, delay_noise_ms: float | None = None) -> "LinkConfig":
        """The link a trace describes; explicit arguments override the trace's
        own properties, and properties neither gives take the documented
        defaults (delay 25 ms, queue 10 packets, loss 0, noise from
        ``trace.meta["delay_noise"]`` or 0)."""
        where = trace.meta.get("path") or trace.name or "<trace>"

        def pick(explicit, own, default):
            return explicit if explicit is not None else (own if own is not None else default)

        if delay_noise_ms is None:
            delay_noise_ms = float(trace.meta.get("delay_noise", 0) or 0)
        bw = trace.bandwidth_mbps
        if (np.all(bw[:-1] <= 0) if bw.size > 1 else bw[0] <= 0):
            raise TraceFormatError("bandwidth is zero for the whole trace; a CC link needs some capacity", where,
                                   field="bandwidth_mbps")
        if trace.duration_s <= 0:
            raise TraceFormatError(f"trace lasts {trace.duration_s} s; a CC link needs a duration > 0 s", where)
        try:
            return cls(trace.timestamps_s, bw, delay_ms=float(pick(delay_ms, trace.delay_ms, DEFAULT_DELAY_MS)),
                       queue_packets=float(pick(queue_packets, trace.queue_packets, DEFAULT_QUEUE_PACKETS)),
                       loss_rate=float(pick(loss_rate, trace.loss_rate, DEFAULT_LOSS_RATE)),
                       delay_noise_ms=float(delay_noise_ms), name=trace.name)
        except ValueError as exc:
            raise BadInputError(f"{where}: {exc}") from None

    @classmethod
    def constant(cls, bandwidth_mbps: float, delay_ms: float, queue_packets: float, duration_s: float = 30.0,
                 loss_rate: float = 0.0, name: str = "") -> "LinkConfig":
        """A constant-bandwidth link lasting ``duration_s`` seconds (30)."""
        return cls(np.array([0.0, duration_s]), np.array([bandwidth_mbps, bandwidth_mbps], float), delay_ms=delay_ms,
                   queue_packets=queue_packets, loss_rate=loss_rate,
                   name=name or f"const-{bandwidth_mbps:g}mbps-{delay_ms:g}ms-q{queue_packets:g}")

    # ------------------------------------------------------------ properties
    @property
    def duration_s(self) -> float:
        return float(self.timestamps_s[-1])

    @property
    def effective_bandwidth_mbps(self) -> np.ndarray:
        """The bandwidth the simulator uses (raised to at least 0.1 Mbps)."""
        return np.maximum(self.bandwidth_mbps, MIN_BANDWIDTH_MBPS)

    @property
    def mean_bandwidth_mbps(self) -> float:
        """Time-weighted mean of the effective bandwidth over the trace (Genet
        averages the samples; on its regular grids the two agree to within the
        end marker)."""
        d = np.diff(self.timestamps_s)
        return float(np.sum(self.effective_bandwidth_mbps[:-1] * d) / self.duration_s)

    @property
    def bdp_packets(self) -> float:
        """Bandwidth-delay product at the max bandwidth and min RTT, in packets."""
        return float(mbps_to_pps(self.effective_bandwidth_mbps.max()) * 2 * self.delay_ms / 1000.0)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t_s, bandwidth_pps, cumulative_packets) for the numba kernel."""
        t = np.ascontiguousarray(self.timestamps_s, dtype=np.float64)
        bw_pps = np.ascontiguousarray(mbps_to_pps(self.effective_bandwidth_mbps), dtype=np.float64)
        cum = np.concatenate([[0.0], np.cumsum(bw_pps[:-1] * np.diff(t))])
        return t, bw_pps, np.ascontiguousarray(cum)

    def available_packets(self, start_s: float, end_s: float) -> float:
        """Packets the link can serve between two times (fluid)."""
        t, bw, cum = self.arrays()

        def c(x):
            i = max(0, int(np.searchsorted(t, x, side="right")) - 1)
            return cum[i] + bw[i] * (x - t[i])
        return float(c(end_s) - c(start_s))


# ---------------------------------------------------------------- numba side
#: Link state record (one row): parameters and the fluid queue.
LINK_STATE = np.dtype([
    ("delay_s", np.float64),            # one-way propagation delay
    ("loss_rate", np.float64),          # random loss probability
    ("queue_packets", np.float64),      # tail-drop threshold
    ("delay_noise_s", np.float64),      # max extra data-path delay
    ("delay_noise_probability", np.float64),
    ("backlog_packets", np.float64),    # fluid queue content after the last update
    ("served_at_update", np.float64),   # cumulative packets servable at the last update
    ("tail_departure_s", np.float64),   # when the last accepted packet leaves (queue empty from then on)
    ("sample_index", np.int64),         # trace sample in force at the last update (monotone)
    ("rng_state", np.uint64),           # splitmix64 state
])


def new_link_state(link: LinkConfig, seed: int) -> np.ndarray:
    state = np.zeros(1, LINK_STATE)
    s = state[0]
    s["delay_s"] = link.delay_ms / 1000.0
    s["loss_rate"] = link.loss_rate
    s["queue_packets"] = link.queue_packets
    s["delay_noise_s"] = link.delay_noise_ms / 1000.0
    s["delay_noise_probability"] = 0.1
    s["rng_state"] = np.uint64(int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]))
    return state


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@kernel
def uniform01(state):
    """Next U[0, 1) draw from the splitmix64 generator in ``state.rng_state``."""
    state.rng_state = state.rng_state + _GOLDEN
    z = state.rng_state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return float(z >> _S11) * (1.0 / 9007199254740992.0)


@kernel
def _sample_at(t_s, i, now):
    """Advance the monotone sample index so that t_s[i] <= now < t_s[i+1]."""
    n = t_s.size
    while i + 1 < n and t_s[i + 1] <= now:
        i += 1
    return i


@kernel
def serve_time_s(t_s, bw_pps, cum, i, now, served_now, packets):
    """Seconds from ``now`` until ``packets`` more packets have been served
    (``cum[i] <= served_now``; binary search for the sample where that
    happens: O(log n) per packet however many samples a long queue spans)."""
    target = served_now + packets
    lo = i
    hi = t_s.size - 1
    while lo < hi:  # the last sample j >= i with cum[j] <= target
        mid = (lo + hi + 1) >> 1
        if cum[mid] <= target:
            lo = mid
        else:
            hi = mid - 1
    return t_s[lo] + (target - cum[lo]) / bw_pps[lo] - now


@kernel
def link_transmit(link, t_s, bw_pps, cum, now):
    """A data packet reaches the bottleneck at ``now``.

    Returns (dropped, queue_delay_s, arrival_s): queue_delay_s (>= 0) is the
    packet's time in the queue including its own serialisation; arrival_s
    (>= ``now``) is when its ACK reaches the sender: propagation + queueing
    (+ noise) + ACK-path propagation. A dropped packet keeps travelling (its
    sender learns of the loss when its ACK would arrive, one path latency
    later, as in Genet), and not before the queue ahead of it has drained.
    """
    i = _sample_at(t_s, link.sample_index, now)
    link.sample_index = i
    served_now = cum[i] + bw_pps[i] * (now - t_s[i])
    backlog = link.backlog_packets - (served_now - link.served_at_update)
    if backlog < 0.0:
        backlog = 0.0
    link.served_at_update = served_now
    # admission: the queue is empty once its last packet has left, on the clock its ACK uses (the fluid
    # backlog then holds at most a rounding residue, ~1e-12 packets, which only the queueing delay sees)
    ahead = 0.0 if now >= link.tail_departure_s else backlog
    dropped = False
    if link.loss_rate > 0.0 and uniform01(link) < link.loss_rate:
        dropped = True
    elif ahead + 1.0 > link.queue_packets:
        dropped = True
    else:
        backlog += 1.0
    link.backlog_packets = backlog
    queue_delay_s = serve_time_s(t_s, bw_pps, cum, i, now, served_now, backlog)
    forward_s = link.delay_s + queue_delay_s
    if link.delay_noise_s > 0.0 and uniform01(link) < link.delay_noise_probability:
        forward_s += uniform01(link) * link.delay_noise_s
    arrival_s = now + forward_s + link.delay_s
    if dropped:
        # the queue ahead drains at tail_departure_s (> now when it holds anything)
        queue_delay_s = max(queue_delay_s, link.tail_departure_s - now, 0.0)
        arrival_s = max(arrival_s, link.tail_departure_s, now)
    else:
        # with zero propagation delay the ACK lands on exactly this number
        link.tail_departure_s = max(link.tail_departure_s, now + queue_delay_s)
    return dropped, queue_delay_s, arrival_s
