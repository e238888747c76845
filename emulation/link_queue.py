"""One direction of a Mahimahi link, in integer-millisecond time (no I/O).

Follows ``mahimahi:src/frontend/link_queue.cc`` as described in testbeds.md §1.2-1.5:

* opportunity k happens at ``base_ms + schedule[k]``; ``base_ms`` is the
  time the queue was created (trace t = 0); after the last entry the schedule
  loops with ``base_ms += schedule[-1]`` (``once``: the link is finished instead);
* :meth:`rationalize` (called before every enqueue and before computing the
  wait) uses every opportunity scheduled at or before ``now_ms``: a budget of
  1504 bytes each, consumed byte by byte across packets — a packet may span
  several opportunities (the bytes left of the packet "in transit" persist),
  one opportunity may carry several small packets, and whatever the queue
  cannot fill is wasted. A packet departs at the scheduled time of the
  opportunity that carries its last byte;
* the packet in transit has left the queue: it does not count toward limits;
* ``droptail`` drops the arriving packet when it would exceed a limit,
  ``drophead`` accepts it and drops from the head until limits hold;
  ``codel`` enqueues as droptail and drops at dequeue (see :meth:`LinkQueue._codel_dequeue`);
  ``pie`` checks the droptail limits, then drops early at random with PIE's probability,
  updated every 30 ms as Mahimahi's ``pie_packet_queue.cc`` does (draft-ietf-aqm-pie-09 /
  Linux 4.4: alpha 0.125, beta 1.25, departure-rate estimate over 16384 bytes, the update
  re-run for every period missed since the last packet event; the draws come from ``rng``).
  Like Mahimahi, delays enter the control law in ms while the draft's alpha/beta are per
  second, so the control is far more aggressive than the draft's — reproduced as is;
* log lines: ``T + SIZE`` arrival, ``T # 1504`` every opportunity (used or
  not), ``T - SIZE DELAY`` departure (DELAY = departure - arrival), ``T d PKTS BYTES``
  drops at enqueue.

Implementation choice (same results as Mahimahi): opportunities sharing one
millisecond are consumed together as one budget of ``count x 1504`` bytes —
equivalent because the queue cannot gain packets within a rationalize call,
so once it runs dry the rest of that millisecond is wasted either way. When the
queue is empty, idle opportunities are skipped in bulk (bisect), so a
1000-opportunities-per-ms trace costs nothing while idle.
"""

from __future__ import annotations

from foundation.errors import GenetRuntimeError

import math
import random
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import TextIO

from emulation.config import QueueSpec, Schedule
from foundation.packets import MAHIMAHI_OPPORTUNITY_BYTES as OPPORTUNITY_BYTES  # defined once


@dataclass
class _CodelState:
    """CoDel's state variables (ms)."""

    target_ms: int
    interval_ms: int
    first_above_ms: int = 0
    drop_next_ms: int = 0
    count: int = 0
    lastcount: int = 0
    dropping: bool = False


PIE_ALPHA = 0.125
PIE_BETA = 1.25
PIE_T_UPDATE_MS = 30
PIE_DQ_THRESHOLD_BYTES = 16384


@dataclass
class _PieState:
    """PIE's state (ms; ``avg_dq_rate`` in bytes per ms; ``dq_count`` None = not measuring)."""

    qdelay_ref_ms: int
    max_burst_ms: int
    last_update_ms: int = 0
    drop_prob: float = 0.0
    burst_allowance_ms: int = 0
    qdelay_old_ms: int = 0
    current_qdelay_ms: int = 0
    dq_count: int | None = None
    dq_tstamp_ms: int = 0
    avg_dq_rate: int = 0


def spread_slots(schedule: Schedule) -> tuple[list[float], list[int]]:
    """The precise clock's schedule: the ``k`` opportunities of whole millisecond ``t`` at ``t + i / k``
    (i = 0..k-1), one per slot — the same count per ms (so the same rate over every ms) delivered evenly
    paced instead of in one burst at the ms's start. A millisecond with one opportunity keeps it at ``t``."""
    slots: list[float] = []
    counts: list[int] = []
    for t, k in zip(schedule.slot_ms, schedule.slot_count):
        if k == 1:
            slots.append(float(t))
        else:
            slots.extend(t + i / k for i in range(k))
    counts = [1] * len(slots)
    return slots, counts


class PacketTooLargeError(GenetRuntimeError):
    """A packet bigger than one opportunity (Mahimahi: "packet size is greater than maximum")."""


class LinkQueue:
    """One direction: queue + delivery schedule.

    schedule: the looping opportunities
    queue: the queue discipline and limits
    base_ms: the time (ms, caller's clock) at which trace t = 0
    once: finish at the end of the schedule instead of looping
    log: an open text file for Mahimahi-format event lines, or None
    spread: the precise clock (:data:`emulation.config.CLOCKS`): the opportunities a millisecond holds are
        spread evenly over it (:func:`spread_slots`) and times may be fractional ms; the log still holds
        whole ms (times floored, a departure's delay rounded)

    ``departures`` collects ``(departure_ms, packet)`` tuples; the caller drains it.
    """

    def __init__(self, schedule: Schedule, queue: QueueSpec, base_ms: int = 0, once: bool = False,
                 log: TextIO | None = None, rng: random.Random | None = None, spread: bool = False):
        if spread:
            self.slot_ms, self.slot_count = spread_slots(schedule)
        else:
            self.slot_ms = list(schedule.slot_ms)
            self.slot_count = list(schedule.slot_count)
        self.nslots = len(self.slot_ms)
        self.period_ms = schedule.period_ms
        self.base_ms = base_ms
        self.idx = 0
        self.once = once
        self.finished = False
        self.kind = queue.kind
        self.limit_packets = queue.packets
        self.limit_bytes = queue.bytes
        self.queue: deque = deque()  # (packet, arrival_ms)
        self.queue_bytes = 0
        self.in_transit = None  # (packet, arrival_ms)
        self.in_transit_left = 0
        self.departures: list = []
        self.log = log
        # counters
        self.arrived_packets = 0
        self.departed_packets = 0
        self.departed_bytes = 0
        self.dropped_packets = 0
        self.dropped_bytes = 0
        self.codel = _CodelState(queue.target_ms, queue.interval_ms) if queue.kind == "codel" else None
        self.pie = _PieState(queue.qdelay_ref_ms, queue.max_burst_ms, last_update_ms=base_ms) \
            if queue.kind == "pie" else None
        self.rng = rng if rng is not None else random.Random()

    # ------------------------------------------------------------ schedule
    def next_opportunity_ms(self) -> int | None:
        """Time of the next opportunity, None when finished."""
        if self.finished:
            return None
        return self.base_ms + self.slot_ms[self.idx]

    def wait_ms(self, now_ms: int) -> int | None:
        """ms until the link has work to do (None: nothing until a packet arrives)."""
        if self.finished or (not self.queue and not self.in_transit_left):
            return None
        return max(0, self.base_ms + self.slot_ms[self.idx] - now_ms)

    def _advance(self) -> None:
        self.idx += 1
        if self.idx == self.nslots:
            if self.once:
                self.finished = True
                self.idx = self.nslots - 1
            else:
                self.idx = 0
                self.base_ms += self.period_ms

    def _skip_idle(self, now_ms: int) -> None:
        """All opportunities <= now_ms are wasted (empty queue): skip them, logging each when logging."""
        log = self.log
        slot_ms, slot_count = self.slot_ms, self.slot_count
        while not self.finished:
            rel = now_ms - self.base_ms
            j = bisect_right(slot_ms, rel, self.idx)
            if log is not None:
                base = self.base_ms
                log.write("".join(f"{int(base + slot_ms[k])} # {OPPORTUNITY_BYTES}\n" * slot_count[k]
                                  for k in range(self.idx, j)))
            if j < self.nslots:
                self.idx = j
                return
            if self.once:
                self.finished = True
                self.idx = self.nslots - 1
                return
            self.idx = 0
            self.base_ms += self.period_ms
            if log is None and now_ms - self.base_ms >= self.period_ms:
                self.base_ms += ((now_ms - self.base_ms) // self.period_ms) * self.period_ms

    def rationalize(self, now_ms: int) -> None:
        """Use every opportunity scheduled at or before ``now_ms``."""
        if self.finished:
            return
        slot_ms, slot_count = self.slot_ms, self.slot_count
        queue = self.queue
        log = self.log
        departures = self.departures
        codel = self.codel
        while True:
            if not queue and not self.in_transit_left:
                self._skip_idle(now_ms)
                return
            t = self.base_ms + slot_ms[self.idx]
            if t > now_ms:
                return
            count = slot_count[self.idx]
            if log is not None:
                log.write(f"{int(t)} # {OPPORTUNITY_BYTES}\n" * count)
            budget = count * OPPORTUNITY_BYTES
            self._advance()
            left = self.in_transit_left
            while True:
                if not left:
                    if not queue:
                        break
                    if codel is not None:
                        item = self._codel_dequeue(now_ms)
                        left = len(item[0])
                    else:
                        item = queue.popleft()
                        left = len(item[0])
                        self.queue_bytes -= left
                        if self.pie is not None:
                            self._pie_after_dequeue(left, now_ms)
                    self.in_transit = item
                if left <= budget:
                    budget -= left
                    left = 0
                    pkt, arrival = self.in_transit
                    departures.append((t, pkt))
                    self.departed_packets += 1
                    self.departed_bytes += len(pkt)
                    if log is not None:
                        log.write(f"{int(t)} - {len(pkt)} {round(t - arrival)}\n")
                    self.in_transit = None
                    if not budget:
                        break
                else:
                    left -= budget
                    break
            self.in_transit_left = left
            if self.finished:
                return

    # --------------------------------------------------------------- queue
    def enqueue(self, packet: bytes, now_ms: int) -> bool:
        """Offer an arriving packet (call :meth:`rationalize` for ``now_ms`` first). False if it was dropped."""
        size = len(packet)
        if size > OPPORTUNITY_BYTES:
            raise PacketTooLargeError(f"packet of {size} bytes is larger than one {OPPORTUNITY_BYTES}-byte "
                                      "delivery opportunity (is the device MTU above 1500?)")
        self.arrived_packets += 1
        log = self.log
        if log is not None:
            log.write(f"{int(now_ms)} + {size}\n")
        kind = self.kind
        if kind == "infinite":
            self.queue.append((packet, now_ms))
            self.queue_bytes += size
            return True
        lp, lb = self.limit_packets, self.limit_bytes
        if kind == "pie":
            self._pie_update(now_ms)
        if kind == "droptail" or kind == "codel" or kind == "pie":  # CoDel/PIE: droptail limits first
            if (lb and self.queue_bytes + size > lb) or (lp and len(self.queue) + 1 > lp):
                self.dropped_packets += 1
                self.dropped_bytes += size
                if log is not None:
                    log.write(f"{int(now_ms)} d 1 {size}\n")
                return False
            if kind == "pie" and self._pie_drop_early():
                self.dropped_packets += 1
                self.dropped_bytes += size
                if log is not None:
                    log.write(f"{int(now_ms)} d 1 {size}\n")
                return False
            self.queue.append((packet, now_ms))
            self.queue_bytes += size
            return True
        # drophead
        self.queue.append((packet, now_ms))
        self.queue_bytes += size
        n = nbytes = 0
        accepted = True
        while (lb and self.queue_bytes > lb) or (lp and len(self.queue) > lp):
            old, _ = self.queue.popleft()
            self.queue_bytes -= len(old)
            n += 1
            nbytes += len(old)
            if old is packet:
                accepted = False
        if n:
            self.dropped_packets += n
            self.dropped_bytes += nbytes
            if log is not None:
                log.write(f"{int(now_ms)} d {n} {nbytes}\n")
        return accepted

    # --------------------------------------------------------------- CoDel
    def _codel_pop(self, now_ms: int):
        """CoDel's dodequeue: pop the head and say whether CoDel may drop (sojourn >= target for an interval)."""
        c = self.codel
        item = self.queue.popleft()
        self.queue_bytes -= len(item[0])
        if not self.queue:  # never drop the only packet
            c.first_above_ms = 0
            return item, False
        if now_ms - item[1] < c.target_ms or self.queue_bytes <= OPPORTUNITY_BYTES:
            c.first_above_ms = 0
            return item, False
        if c.first_above_ms == 0:
            c.first_above_ms = now_ms + c.interval_ms
            return item, False
        return item, now_ms >= c.first_above_ms

    def _codel_drop(self, item) -> None:
        self.dropped_packets += 1
        self.dropped_bytes += len(item[0])  # not logged: Mahimahi logs enqueue-time drops only

    def _codel_dequeue(self, now_ms: int):
        """CoDel dequeue as Mahimahi's codel_packet_queue.cc runs it (draft-ietf-aqm-codel-04 / Linux 4.4).

        Mahimahi's code delivers the packet it popped first and drops the ones it pops while
        dropping (Linux drops the head instead); the number and timing of drops are CoDel's.
        Control law: next = t + floor(interval / sqrt(count)).
        """
        c = self.codel
        item, ok = self._codel_pop(now_ms)
        if c.dropping:
            if not ok:
                c.dropping = False
            while c.dropping and now_ms >= c.drop_next_ms:
                dropped, ok2 = self._codel_pop(now_ms)
                self._codel_drop(dropped)
                c.count += 1
                if not ok2:
                    c.dropping = False
                else:
                    c.drop_next_ms = c.drop_next_ms + int(c.interval_ms / math.sqrt(c.count))
        elif ok:
            dropped, _ = self._codel_pop(now_ms)
            self._codel_drop(dropped)
            c.dropping = True
            delta = c.count - c.lastcount
            c.count = delta if (delta > 1 and 0 <= now_ms - c.drop_next_ms < 16 * c.interval_ms) else 1
            c.drop_next_ms = now_ms + int(c.interval_ms / math.sqrt(c.count))
            c.lastcount = c.count
        return item

    # ----------------------------------------------------------------- PIE
    def _pie_drop_early(self) -> bool:
        """PIE's random early drop decision for an arriving packet."""
        p = self.pie
        if p.burst_allowance_ms > 0:
            return False
        if p.qdelay_old_ms < p.qdelay_ref_ms // 2 and p.drop_prob < 0.2:
            return False
        if self.queue_bytes < 2 * OPPORTUNITY_BYTES:
            return False
        return self.rng.random() < p.drop_prob

    def _pie_after_dequeue(self, size: int, now_ms: int) -> None:
        """Departure-rate estimation (bytes per ms), then the periodic drop-probability update."""
        p = self.pie
        if self.queue_bytes >= PIE_DQ_THRESHOLD_BYTES and p.dq_count is None:
            p.dq_tstamp_ms = now_ms
            p.dq_count = 0
        if p.dq_count is not None:
            p.dq_count += size
            if p.dq_count > PIE_DQ_THRESHOLD_BYTES:
                dtime = now_ms - p.dq_tstamp_ms
                if dtime > 0:
                    rate = p.dq_count // dtime
                    p.avg_dq_rate = rate if p.avg_dq_rate == 0 else \
                        (p.avg_dq_rate - (p.avg_dq_rate >> 3)) + (rate >> 3)
                    if self.queue_bytes < PIE_DQ_THRESHOLD_BYTES:
                        p.dq_count = None
                    else:
                        p.dq_count = 0
                        p.dq_tstamp_ms = now_ms
                    if p.burst_allowance_ms > 0:
                        p.burst_allowance_ms = max(0, p.burst_allowance_ms - dtime)
        self._pie_update(now_ms)

    def _pie_update(self, now_ms: int) -> None:
        """PIE's drop-probability update, run once for every 30-ms period missed since the last one."""
        p = self.pie
        while now_ms - p.last_update_ms > PIE_T_UPDATE_MS:
            update_prob = True
            p.qdelay_old_ms = p.current_qdelay_ms
            p.current_qdelay_ms = self.queue_bytes // p.avg_dq_rate if p.avg_dq_rate > 0 else 0
            if p.current_qdelay_ms == 0 and self.queue_bytes != 0:
                update_prob = False
            delta = (PIE_ALPHA * (p.current_qdelay_ms - p.qdelay_ref_ms)
                     + PIE_BETA * (p.current_qdelay_ms - p.qdelay_old_ms))
            delta /= 128 if p.drop_prob < 0.01 else 32 if p.drop_prob < 0.1 else 16
            p.drop_prob += delta
            if p.drop_prob < 0:
                p.drop_prob = 0.0
            elif p.drop_prob > 1:
                p.drop_prob = 1.0
                update_prob = False
            if p.current_qdelay_ms == 0 and p.qdelay_old_ms == 0 and update_prob:
                p.drop_prob *= 0.98
            p.burst_allowance_ms = max(0, p.burst_allowance_ms - PIE_T_UPDATE_MS)
            p.last_update_ms += PIE_T_UPDATE_MS
            if (p.drop_prob == 0 and p.current_qdelay_ms < p.qdelay_ref_ms // 2
                    and p.qdelay_old_ms < p.qdelay_ref_ms // 2 and p.avg_dq_rate > 0):
                p.dq_count = None
                p.avg_dq_rate = 0
                p.burst_allowance_ms = p.max_burst_ms

    def drain(self) -> list:
        """Return and clear the departures collected so far."""
        out = self.departures
        self.departures = []
        return out


def write_log_header(log: TextIO, direction: str, trace_source: str, log_path: str, command_line: str,
                     queue: QueueSpec, init_timestamp_ms: int, base_timestamp_ms: int) -> None:
    """The five ``#`` header lines of an mm-link log (testbeds.md §1.5)."""
    log.write(f"# mahimahi mm-link ({direction}) [{trace_source}] > {log_path}\n")
    log.write(f"# command line: {command_line}\n")
    log.write(f"# queue: {queue.describe()}\n")
    log.write(f"# init timestamp: {init_timestamp_ms}\n")
    log.write(f"# base timestamp: {base_timestamp_ms}\n")
