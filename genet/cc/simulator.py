"""The Python front door of the packet-level CC simulator.

>>> from genet.cc import LinkConfig, Simulation, CubicSender
>>> from genet.cc.simulator import EV_ACKED
>>> sim = Simulation(LinkConfig.constant(10, delay_ms=50, queue_packets=83), CubicSender(), seed=0)
>>> log = sim.run()                 # to the end of the trace
>>> ack_times_s = log.time_s[log.kind == EV_ACKED]  # the per-packet event stream

A :class:`Simulation` owns the state records (connection, link, sender) and
the event heap; :meth:`Simulation.run` advances it with the numba loop of
:mod:`genet.cc.events` and returns the events it processed as an
:class:`EventLog`. It can be paused and resumed (Aurora runs it one monitor
interval at a time and changes the rate in between).

**Work bound.** A run may process at most :data:`WORK_BOUND_BASE_EVENTS`
events plus :data:`WORK_BOUND_EVENTS_PER_PACKET` for every packet time of
its *reference rate* that simulated time advances (the reference rate is
the larger of the link's peak bandwidth and a rate sender's rate, divided by
``1 - loss_rate`` since random losses are re-sent). Normal runs use 2-4
events per packet time (a send and its ACK or loss notice; the worst seen
over thousands of random links, zero delay and 1-packet queues included, is
4), so the bound of 64 only stops runaways, at the first event past it and
in proportion to how far the clock got: an event storm at one instant stops
after about 100,000 events (a few MB). Exceeding it raises
:class:`WorkBoundError` naming the link and sender parameters. And a
recorded run whose log is expected (2 events per packet time up to
``until_s``) to exceed ``max_events`` (:data:`DEFAULT_MAX_EVENTS`, about
1.5 GB while the log is assembled) is rejected before it starts, naming the
duration, bandwidth, rate and loss that make it that large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genet.cc import events
from genet.cc.connection import PACKET_COLUMNS, new_conn_state
from genet.cc.events import EV_ACKED, EV_LOST, EV_SENT
from genet.cc.link import LinkConfig, new_link_state, pps_to_mbps
from genet.cc.senders import bbr, cubic, rate
from genet.cc.senders.kinds import KIND_BBR, KIND_CUBIC, KIND_RATE, SenderSpec
from foundation.errors import BadInputError

__all__ = ["Simulation", "EventLog", "WorkBoundError", "EV_SENT", "EV_ACKED", "EV_LOST"]

#: Events any run may process before simulated time has advanced at all.
WORK_BOUND_BASE_EVENTS = 100_000
#: Further events allowed per packet time of the reference rate (16x the worst normal run).
WORK_BOUND_EVENTS_PER_PACKET = 64.0
#: Default cap on the events of a recorded run (each costs ~75 bytes while its log is assembled).
DEFAULT_MAX_EVENTS = 20_000_000


class WorkBoundError(BadInputError):
    """A simulation would exceed (or exceeded) its work bound; the message names the link
    and sender parameters responsible."""


@dataclass(frozen=True)
class EventLog:
    """Per-packet events in time order.

    kind: EV_SENT (0), EV_ACKED (1) or EV_LOST (2) per event
    time_s: when the event happened at the sender (send time, ACK arrival, loss detection)
    packet_id: packet the event concerns
    rtt_s: RTT sample of an ACK (for a loss: when its ACK would have come); 0 for sends
    queue_delay_s: the packet's time in the bottleneck queue, own serialisation included
    """

    kind: np.ndarray
    time_s: np.ndarray
    packet_id: np.ndarray
    rtt_s: np.ndarray
    queue_delay_s: np.ndarray

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> "EventLog":
        return cls(rows[:, events.L_KIND].astype(np.int8), rows[:, events.L_TIME_S].copy(),
                   rows[:, events.L_PACKET_ID].astype(np.int64), rows[:, events.L_RTT_S].copy(),
                   rows[:, events.L_QUEUE_DELAY_S].copy())

    @classmethod
    def concatenate(cls, logs: list["EventLog"]) -> "EventLog":
        if not logs:
            return cls.from_rows(np.zeros((0, events.LOG_COLUMNS)))
        return cls(*(np.concatenate([getattr(g, f) for g in logs]) for f in
                     ("kind", "time_s", "packet_id", "rtt_s", "queue_delay_s")))

    def __len__(self) -> int:
        return int(self.kind.size)

    @property
    def packets_sent(self) -> int:
        return int(np.count_nonzero(self.kind == EV_SENT))

    @property
    def packets_acked(self) -> int:
        return int(np.count_nonzero(self.kind == EV_ACKED))

    @property
    def packets_lost(self) -> int:
        return int(np.count_nonzero(self.kind == EV_LOST))


class Simulation:
    """One sender over one bottleneck link, resumable.

    link: the :class:`~genet.cc.link.LinkConfig`
    sender: a :class:`~genet.cc.senders.SenderSpec` (RateSender, CubicSender, BbrSender)
    seed: seeds the link's random loss/noise and the sender's own randomness (0)
    record_log: keep the event log (True); False only counts (faster, less memory)
    max_events: largest event log a recorded run may build (20,000,000); a run
        expected to need more is rejected before it starts (module docstring)
    """

    def __init__(self, link: LinkConfig, sender: SenderSpec, seed: int = 0, record_log: bool = True,
                 log_chunk_events: int = 1 << 16, max_events: int = DEFAULT_MAX_EVENTS):
        self.link = link
        self.sender = sender
        self.record_log = record_log
        self.max_events = int(max_events)
        self._t_s, self._bw_pps, self._cum = link.arrays()
        self._link_peak_pps = float(self._bw_pps.max())
        self.conn = new_conn_state()
        self.conn[0]["work_allowance"] = WORK_BOUND_BASE_EVENTS
        self.link_state = new_link_state(link, seed)
        states = {KIND_RATE: rate.RATE_STATE, KIND_CUBIC: cubic.CUBIC_STATE, KIND_BBR: bbr.BBR_STATE}
        self._sender_states = {k: np.zeros(1, dt) for k, dt in states.items()}
        self._sender_states[sender.kind] = sender.new_state(seed)
        self._heap = np.zeros((256, PACKET_COLUMNS))
        self._log = np.zeros((log_chunk_events, events.LOG_COLUMNS))

    def __setstate__(self, state: dict) -> None:
        """Unpickle (a checkpoint's environments mid-episode); a rate sender's state saved before the
        start-up fields existed gets them, with no start-up window (:func:`genet.cc.senders.rate.upgrade_state`)."""
        self.__dict__.update(state)
        states = self.__dict__.get("_sender_states")
        if states is not None and KIND_RATE in states:
            states[KIND_RATE] = rate.upgrade_state(states[KIND_RATE])

    # ------------------------------------------------------------- state
    @property
    def now_s(self) -> float:
        return float(self.conn[0]["now_s"])

    @property
    def duration_s(self) -> float:
        return self.link.duration_s

    @property
    def done(self) -> bool:
        """True once simulated time reached the end of the trace."""
        return self.now_s >= self.link.duration_s

    @property
    def sender_state(self) -> np.void:
        """The sender's state record (e.g. ``["cwnd"]`` for Cubic)."""
        return self._sender_states[self.sender.kind][0]

    @property
    def stats(self) -> dict:
        """Connection totals so far (packets, srtt, ...)."""
        c = self.conn[0]
        return {name: c[name].item() for name in c.dtype.names}

    def set_rate_pps(self, rate_pps: float) -> None:
        """Change a rate sender's rate (packets/s) from the next packet on."""
        if self.sender.kind != KIND_RATE:
            raise TypeError(f"set_rate_pps needs a rate-based sender, this one is {self.sender.name!r}")
        if not (rate_pps > 0 and np.isfinite(rate_pps)):
            raise BadInputError(f"rate must be > 0 packets/s, got {rate_pps}")
        self._sender_states[KIND_RATE][0]["rate_pps"] = rate_pps

    # ------------------------------------------------------- work bound
    @property
    def reference_rate_pps(self) -> float:
        """The rate the work bound scales with: max(link peak, rate sender's rate) / (1 - loss_rate)."""
        pps = self._link_peak_pps
        if self.sender.kind == KIND_RATE:
            pps = max(pps, float(self._sender_states[KIND_RATE][0]["rate_pps"]))
        return pps / (1.0 - self.link.loss_rate)

    def _describe(self) -> str:
        link = self.link
        name = f" {link.name!r}" if link.name else ""
        return (f"link{name} (duration_s={link.duration_s:g}, bandwidth_mbps up to "
                f"{float(link.effective_bandwidth_mbps.max()):g}, delay_ms={link.delay_ms:g}, "
                f"queue_packets={link.queue_packets:g}, loss_rate={link.loss_rate:g}, "
                f"delay_noise_ms={link.delay_noise_ms:g}) with sender {self.sender!r}")

    def _check_expected_size(self, until: float) -> None:
        """Reject, before running, a recorded run whose log would not fit in ``max_events``."""
        if not self.record_log:
            return
        expected = int(self.conn[0]["events"]) + 2.0 * self.reference_rate_pps * max(0.0, until - self.now_s)
        if expected > self.max_events:
            rate_mbps = pps_to_mbps(self.reference_rate_pps * (1.0 - self.link.loss_rate))
            lossy = f" with loss_rate={self.link.loss_rate:g}" if self.link.loss_rate else ""
            raise WorkBoundError(
                f"{self._describe()}: simulating to until_s={until:g} at up to {rate_mbps:g} Mbps{lossy} needs "
                f"about {expected:.3g} events, above max_events={self.max_events:,} (~75 bytes each in the "
                "event log); use a shorter trace (duration_s) or a lower rate, run it in pieces, or pass "
                "record_log=False or a larger max_events")

    # --------------------------------------------------------------- run
    def run(self, until_s: float | None = None, cut_at_send: bool = False) -> EventLog:
        """Advance to ``until_s`` (default: the end of the trace) and return the
        events processed; ``cut_at_send``: stop at the first send at or after
        ``until_s`` once an ACK has arrived (monitor-interval rule).

        Raises :class:`WorkBoundError` before running when the recorded log
        would exceed ``max_events``, and while running when the run passes
        its work bound (the simulation cannot continue after that)."""
        until = self.link.duration_s if until_s is None else float(until_s)
        if not np.isfinite(until):
            raise BadInputError(f"until_s must be a finite time in seconds, got {until_s}")
        self._check_expected_size(until)
        events_per_s = WORK_BOUND_EVENTS_PER_PACKET * self.reference_rate_pps
        chunks = []
        s = self._sender_states
        while True:
            self.conn[0]["log_size"] = 0
            code = events.run_events(self.conn, self.link_state, self._t_s, self._bw_pps, self._cum,
                                     self._heap, self._log, self.sender.kind, s[KIND_RATE], s[KIND_CUBIC],
                                     s[KIND_BBR], until, cut_at_send, events_per_s)
            n = int(self.conn[0]["log_size"])
            if self.record_log and n:
                chunks.append(EventLog.from_rows(self._log[:n]))
            if code == events.STOP_WORK_BOUND:
                c = self.conn[0]
                raise WorkBoundError(
                    f"{self._describe()}: {int(c['events']):,} events by t={float(c['now_s']):.9g} s, past the work "
                    f"bound of {WORK_BOUND_BASE_EVENTS:,} + {WORK_BOUND_EVENTS_PER_PACKET:g} per packet time at "
                    f"{self.reference_rate_pps:.6g} packets/s (normal runs need 2-4 per packet time): this "
                    "configuration makes the simulator loop; please report it with the seed")
            if self.record_log and int(self.conn[0]["events"]) > self.max_events:
                raise WorkBoundError(f"{self._describe()}: the event log passed max_events={self.max_events:,} "
                                     f"at t={self.now_s:.9g} s; pass record_log=False or a larger max_events")
            if code == events.STOP_HEAP_FULL:
                self._heap = np.concatenate([self._heap, np.zeros_like(self._heap)])
            elif code != events.STOP_LOG_FULL:
                break
        return EventLog.concatenate(chunks)
