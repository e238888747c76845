"""Aurora's monitor intervals and observation, computed from a stream of
per-packet send / ACK / loss events (genet-simulators.md §4.5,
``G:src/common/sender_obs.py``).

Nothing here reads simulator internals: the simulator feeds its
:class:`~genet.cc.simulator.EventLog` to :meth:`IntervalMonitor.on_events`,
and a real UDP sender calls :meth:`IntervalMonitor.on_packet_sent`,
``on_packet_acked`` and ``on_packet_lost`` as packets go and ACKs come; both
give the same :class:`MonitorInterval` records.

MI record rules (Genet):

* send_start/send_end = the interval's start and end;
* recv_start = the previous interval's recv_end when this interval has an ACK,
  else the interval's start; for the very first interval with ACKs (no
  previous recv_end) it is the first ACK's time and that ACK is not counted in
  the receive rate;
* recv_end = the last ACK's time, else the interval's end;
* RTT samples = this interval's; with none, the single value mean(previous
  interval's samples).

Features (duration <= 0 gives rate 0): send/recv rate in bit/s, average
latency, loss ratio = lost/(lost + acked), latency increase = mean(2nd half
of RTT samples) - mean(1st half) (half = n // 2 >= 1, else 0), sent latency
inflation = increase / send duration, ack latency inflation = increase /
recv duration, latency ratio = avg latency / connection min latency (the
running minimum over intervals of the interval average; 1 while unknown),
send ratio = send/recv (1 unless recv > 0 and send < 1000 recv), recv ratio =
recv/send (1 if send = 0).

Observation: the last ``history_length`` (10) intervals' values of the chosen
features, oldest first, flattened (10 x 3 = 30 for Genet's features
sent latency inflation, latency ratio, recv ratio; the original Aurora used
send ratio instead of recv ratio). The history starts filled with empty
intervals, whose features are (0, 1, 1).
"""

from __future__ import annotations

from foundation.errors import BadInputError

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from foundation.packets import PACKET_BYTES


#: Event kinds of the stream (the simulator's EventLog uses the same codes).
EV_SENT, EV_ACKED, EV_LOST = 0, 1, 2

#: Genet's observation features (genet-simulators.md §4.5).
GENET_FEATURES = ("sent_latency_inflation", "latency_ratio", "recv_ratio")
#: The original Aurora's.
AURORA_FEATURES = ("sent_latency_inflation", "latency_ratio", "send_ratio")
#: Value of each feature for an empty interval (history initialisation).
EMPTY_FEATURE_VALUE = {"sent_latency_inflation": 0.0, "ack_latency_inflation": 0.0, "latency_ratio": 1.0,
                       "recv_ratio": 1.0, "send_ratio": 1.0, "loss_ratio": 0.0}
#: Declared gym bounds per feature (Genet; see env.py for clipping).
FEATURE_BOUNDS = {"sent_latency_inflation": (-1.0, 10.0), "ack_latency_inflation": (-1.0, 10.0),
                  "latency_ratio": (1.0, 1e4), "recv_ratio": (0.0, 1000.0), "send_ratio": (0.0, 1000.0),
                  "loss_ratio": (0.0, 1.0)}
FEATURES = tuple(EMPTY_FEATURE_VALUE)


@dataclass(frozen=True)
class MonitorInterval:
    """One monitor interval (MI).

    send_start_s, send_end_s: the interval (s)
    recv_start_s, recv_end_s: the receive window (s), see the module rules
    packets_sent, packets_acked, packets_lost: counts of events in the interval
    packets_acked_for_rate: ACKs counted in the receive rate (one less on the first interval)
    rtt_samples_s: the interval's RTT samples (s)
    conn_min_latency_s: running minimum of interval mean latencies, this one included (inf: unknown)
    packet_bytes: bytes per packet (1500)
    """

    send_start_s: float
    send_end_s: float
    recv_start_s: float
    recv_end_s: float
    packets_sent: int
    packets_acked: int
    packets_lost: int
    packets_acked_for_rate: int
    rtt_samples_s: np.ndarray
    conn_min_latency_s: float = float("inf")
    packet_bytes: int = PACKET_BYTES

    # ----------------------------------------------------------- metrics
    @property
    def send_duration_s(self) -> float:
        return self.send_end_s - self.send_start_s

    @property
    def recv_duration_s(self) -> float:
        return self.recv_end_s - self.recv_start_s

    @property
    def send_rate_bps(self) -> float:
        d = self.send_duration_s
        return 8.0 * self.packets_sent * self.packet_bytes / d if d > 0 else 0.0

    @property
    def recv_rate_bps(self) -> float:
        d = self.recv_duration_s
        return 8.0 * self.packets_acked_for_rate * self.packet_bytes / d if d > 0 else 0.0

    @property
    def throughput_pps(self) -> float:
        """Receive rate in packets/s (the reward's throughput)."""
        return self.recv_rate_bps / (8.0 * self.packet_bytes)

    @cached_property
    def avg_latency_s(self) -> float:
        n = self.rtt_samples_s.size
        return float(np.add.reduce(self.rtt_samples_s)) / n if n else 0.0

    @property
    def loss_ratio(self) -> float:
        n = self.packets_lost + self.packets_acked
        return self.packets_lost / n if n > 0 else 0.0

    @cached_property
    def latency_increase_s(self) -> float:
        x = self.rtt_samples_s
        half = x.size // 2
        if half < 1:
            return 0.0
        return float(np.add.reduce(x[half:])) / (x.size - half) - float(np.add.reduce(x[:half])) / half

    @property
    def sent_latency_inflation(self) -> float:
        d = self.send_duration_s
        return self.latency_increase_s / d if d > 0 else 0.0

    @property
    def ack_latency_inflation(self) -> float:
        d = self.recv_duration_s
        return self.latency_increase_s / d if d > 0 else 0.0

    @property
    def latency_ratio(self) -> float:
        m = self.conn_min_latency_s
        return self.avg_latency_s / m if 0 < m < float("inf") else 1.0

    @property
    def send_ratio(self) -> float:
        send, recv = self.send_rate_bps, self.recv_rate_bps
        return send / recv if recv > 0 and send < 1000 * recv else 1.0

    @property
    def recv_ratio(self) -> float:
        send = self.send_rate_bps
        return self.recv_rate_bps / send if send > 0 else 1.0

    def feature(self, name: str) -> float:
        if name not in EMPTY_FEATURE_VALUE:
            raise BadInputError(f"unknown monitor-interval feature {name!r}; choose from {', '.join(FEATURES)}")
        return float(getattr(self, name))


class IntervalMonitor:
    """Turns a per-packet event stream into monitor intervals.

    Usage: ``start(now_s)``; feed events (per packet or in batches);
    ``finish(now_s)`` returns the :class:`MonitorInterval` and starts the next.
    """

    def __init__(self, packet_bytes: int = PACKET_BYTES):
        self.packet_bytes = packet_bytes
        self.prev_recv_end_s = 0.0
        self.prev_rtt_samples_s = np.zeros(0)
        self.conn_min_latency_s = float("inf")
        self._start_s = 0.0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._sent = 0
        self._acked = 0
        self._lost = 0
        self._first_ack_s = None
        self._last_ack_s = None
        self._rtts: list = []  # arrays of RTT samples, in time order
        self._rtt_floats: list = []  # per-packet samples not yet moved into _rtts (cheaper per ACK)

    def start(self, now_s: float) -> None:
        """Begin a new interval at ``now_s`` (drops counts of an unfinished one)."""
        self._start_s = float(now_s)
        self._reset_counters()

    # --------------------------------------------------------------- events
    def on_packet_sent(self, time_s: float) -> None:
        self._sent += 1

    def on_packet_acked(self, time_s: float, rtt_s: float) -> None:
        self._acked += 1
        if self._first_ack_s is None:
            self._first_ack_s = float(time_s)
        self._last_ack_s = float(time_s)
        self._rtt_floats.append(rtt_s)

    def on_packet_lost(self, time_s: float) -> None:
        self._lost += 1

    def on_events(self, kind: np.ndarray, time_s: np.ndarray, rtt_s: np.ndarray) -> None:
        """A batch of events in time order (codes EV_SENT / EV_ACKED / EV_LOST)."""
        kind = np.asarray(kind)
        acked = kind == EV_ACKED
        self._sent += int(np.count_nonzero(kind == EV_SENT))
        self._lost += int(np.count_nonzero(kind == EV_LOST))
        n_acked = int(np.count_nonzero(acked))
        if n_acked:
            self._flush_floats()
            ack_t = np.asarray(time_s)[acked]
            if self._first_ack_s is None:
                self._first_ack_s = float(ack_t[0])
            self._last_ack_s = float(ack_t[-1])
            self._acked += n_acked
            self._rtts.append(np.asarray(rtt_s, float)[acked])

    def _flush_floats(self) -> None:
        if self._rtt_floats:
            self._rtts.append(np.array(self._rtt_floats, float))
            self._rtt_floats = []

    # --------------------------------------------------------------- finish
    def finish(self, now_s: float) -> MonitorInterval:
        """Close the interval at ``now_s``, return its record, start the next one."""
        mi, prev_rtts = self._record(now_s)
        self.prev_rtt_samples_s = prev_rtts
        self.conn_min_latency_s = mi.conn_min_latency_s
        self.prev_recv_end_s = mi.recv_end_s
        self.start(mi.send_end_s)
        return mi

    def peek(self, now_s: float) -> MonitorInterval:
        """The record :meth:`finish` would return at ``now_s``, without closing the interval (a real
        sender rehearses its decision path with it to keep that path's caches warm)."""
        return self._record(now_s)[0]

    def _record(self, now_s: float) -> tuple[MonitorInterval, np.ndarray]:
        """(the interval's record at ``now_s``, the RTT samples the next interval falls back on)."""
        end_s = float(now_s)
        self._flush_floats()
        rtts = np.concatenate(self._rtts) if self._rtts else np.zeros(0)
        prev_rtts = self.prev_rtt_samples_s
        conn_min = self.conn_min_latency_s
        acked_for_rate = self._acked
        if self._acked:
            recv_start = self.prev_recv_end_s
            if recv_start == 0.0:
                recv_start = self._first_ack_s
                acked_for_rate -= 1
            recv_end = self._last_ack_s
        else:
            recv_start, recv_end = self._start_s, end_s
        if rtts.size:
            prev_rtts = rtts
        elif prev_rtts.size:
            rtts = np.array([float(np.mean(prev_rtts))])
        if rtts.size:
            avg = float(np.add.reduce(rtts)) / rtts.size
            if 0 < avg < conn_min:
                conn_min = avg
        mi = MonitorInterval(self._start_s, end_s, recv_start, recv_end, self._sent, self._acked, self._lost,
                             acked_for_rate, rtts, conn_min, self.packet_bytes)
        return mi, prev_rtts


@dataclass
class ObservationHistory:
    """The last ``history_length`` intervals' features, flattened oldest first.

    features: feature names (Genet's: sent_latency_inflation, latency_ratio, recv_ratio)
    history_length: number of intervals (10)
    """

    features: tuple[str, ...] = GENET_FEATURES
    history_length: int = 10
    _flat: list = field(init=False, repr=False)  # history_length x len(features) floats, oldest first

    def __post_init__(self) -> None:
        for name in self.features:
            if name not in EMPTY_FEATURE_VALUE:
                raise BadInputError(f"unknown observation feature {name!r}; choose from {', '.join(FEATURES)}")
        if self.history_length < 1:
            raise BadInputError(f"history_length must be >= 1, got {self.history_length}")
        self.reset()

    @property
    def size(self) -> int:
        return len(self.features) * self.history_length

    def reset(self) -> None:
        self._flat = [float(EMPTY_FEATURE_VALUE[f]) for f in self.features] * self.history_length

    def push(self, mi: MonitorInterval) -> np.ndarray:
        flat = self._flat  # plain floats: a push is a few list operations, no numpy calls (cheap when cold)
        del flat[:len(self.features)]
        flat.extend(self.row(mi))
        return self.observation()

    def row(self, mi: MonitorInterval) -> list[float]:
        """The interval's feature values (what :meth:`push` appends)."""
        return [mi.feature(f) for f in self.features]

    def observation(self) -> np.ndarray:
        return np.array(self._flat, np.float32)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([FEATURE_BOUNDS[f][0] for f in self.features] * self.history_length, np.float32)
        hi = np.array([FEATURE_BOUNDS[f][1] for f in self.features] * self.history_length, np.float32)
        return lo, hi


#: Packets a later ACK may overtake before an unacked packet is declared lost (reordering tolerance).
LOSS_REORDER_PACKETS = 3
#: Floor of the loss timeout (s).
MIN_LOSS_TIMEOUT_S = 0.02


class LossDetector:
    """The loss rule of a real sender (where the simulator's oracle is not available).

    The simulator declares a packet lost when its ACK would have arrived (the
    link is FIFO, so: when the ACK of the packet after it arrives). A real
    sender applies that rule with a reordering tolerance: a packet is lost
    once ACKs of :data:`LOSS_REORDER_PACKETS` later packets have arrived, or —
    when no later ACK comes — when it has been unacknowledged for longer than
    PCC/UDT's timeout 2 x SRTT + 4 x RTTVar (EWMA 7/8 and 3/4 of the RTT
    samples; before any sample, ``initial_timeout_s``), floored at
    :data:`MIN_LOSS_TIMEOUT_S` (20 ms) so that scheduling jitter on a
    sub-millisecond path does not turn late ACKs into losses. An ACK of a packet
    already declared lost is ``late`` and an ACK seen twice is ``duplicate``:
    both are counted and otherwise ignored.

    ``on_sent(seq, t_s)``; ``on_ack(seq, t_s) -> rtt_s | None``; ``expired(t_s)``
    and the return of ``on_ack`` give lost sequence numbers through ``pop_lost()``.
    """

    def __init__(self, initial_timeout_s: float = 1.0, reorder_packets: int = LOSS_REORDER_PACKETS):
        self.inflight: dict[int, float] = {}
        self.oldest = 0
        self.next_seq = 0
        self.srtt_s = 0.0
        self.rttvar_s = 0.0
        self.initial_timeout_s = initial_timeout_s
        self.reorder = reorder_packets
        self.lost: list[int] = []
        self.late_acks = 0
        self.duplicate_acks = 0
        self._acked: set[int] = set()
        self._lost: set[int] = set()

    @property
    def timeout_s(self) -> float:
        if self.srtt_s <= 0:
            return self.initial_timeout_s
        return max(2.0 * self.srtt_s + 4.0 * self.rttvar_s, MIN_LOSS_TIMEOUT_S)

    def on_sent(self, seq: int, t_s: float) -> None:
        self.inflight[seq] = t_s
        self.next_seq = seq + 1

    def on_ack(self, seq: int, t_s: float) -> float | None:
        sent = self.inflight.pop(seq, None)
        if sent is None:
            if seq in self._acked:
                self.duplicate_acks += 1
            else:
                self.late_acks += 1
            return None
        self._acked.add(seq)
        rtt = t_s - sent
        if self.srtt_s == 0.0:
            self.srtt_s, self.rttvar_s = rtt, rtt / 2.0
        else:
            self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * abs(self.srtt_s - rtt)
            self.srtt_s = 0.875 * self.srtt_s + 0.125 * rtt
        limit = seq - self.reorder
        while self.oldest < limit:
            self._declare(self.oldest)
        return rtt

    def expired(self, t_s: float) -> None:
        to = self.timeout_s
        inflight = self.inflight
        while self.oldest < self.next_seq:
            sent = inflight.get(self.oldest)
            if sent is None:
                self.oldest += 1
                continue
            if t_s - sent <= to:
                break
            self._declare(self.oldest)

    def _declare(self, seq: int) -> None:
        if self.inflight.pop(seq, None) is not None:
            self.lost.append(seq)
            self._lost.add(seq)
        self.oldest = seq + 1 if seq >= self.oldest else self.oldest

    def pop_lost(self) -> list[int]:
        out, self.lost = self.lost, []
        return out
