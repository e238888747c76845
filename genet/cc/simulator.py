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
"""

from __future__ import annotations

from genet.errors import BadInputError

from dataclasses import dataclass

import numpy as np

from genet.cc import events
from genet.cc.connection import PACKET_COLUMNS, new_conn_state
from genet.cc.events import EV_ACKED, EV_LOST, EV_SENT
from genet.cc.link import LinkConfig, new_link_state
from genet.cc.senders import bbr, cubic, rate
from genet.cc.senders.kinds import KIND_BBR, KIND_CUBIC, KIND_RATE, SenderSpec

__all__ = ["Simulation", "EventLog", "EV_SENT", "EV_ACKED", "EV_LOST"]


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
    """

    def __init__(self, link: LinkConfig, sender: SenderSpec, seed: int = 0, record_log: bool = True,
                 log_chunk_events: int = 1 << 16):
        self.link = link
        self.sender = sender
        self.record_log = record_log
        self._t_s, self._bw_pps, self._cum = link.arrays()
        self.conn = new_conn_state()
        self.link_state = new_link_state(link, seed)
        states = {KIND_RATE: rate.RATE_STATE, KIND_CUBIC: cubic.CUBIC_STATE, KIND_BBR: bbr.BBR_STATE}
        self._sender_states = {k: np.zeros(1, dt) for k, dt in states.items()}
        self._sender_states[sender.kind] = sender.new_state(seed)
        self._heap = np.zeros((256, PACKET_COLUMNS))
        self._log = np.zeros((log_chunk_events, events.LOG_COLUMNS))

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

    # --------------------------------------------------------------- run
    def run(self, until_s: float | None = None, cut_at_send: bool = False) -> EventLog:
        """Advance to ``until_s`` (default: the end of the trace) and return the
        events processed; ``cut_at_send``: stop at the first send at or after
        ``until_s`` once an ACK has arrived (monitor-interval rule)."""
        until = self.link.duration_s if until_s is None else float(until_s)
        chunks = []
        s = self._sender_states
        while True:
            self.conn[0]["log_size"] = 0
            code = events.run_events(self.conn, self.link_state, self._t_s, self._bw_pps, self._cum,
                                     self._heap, self._log, self.sender.kind, s[KIND_RATE], s[KIND_CUBIC],
                                     s[KIND_BBR], until, cut_at_send)
            n = int(self.conn[0]["log_size"])
            if self.record_log and n:
                chunks.append(EventLog.from_rows(self._log[:n]))
            if code == events.STOP_HEAP_FULL:
                self._heap = np.concatenate([self._heap, np.zeros_like(self._heap)])
            elif code != events.STOP_LOG_FULL:
                break
        return EventLog.concatenate(chunks)
