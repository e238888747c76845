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

from bisect import bisect_right
from collections import deque
from typing import TextIO

from emulation.config import OPPORTUNITY_BYTES, QueueSpec, Schedule


class PacketTooLargeError(RuntimeError):
    """A packet bigger than one opportunity (Mahimahi: "packet size is greater than maximum")."""


class LinkQueue:
    """One direction: queue + delivery schedule.

    schedule: the looping opportunities
    queue: the queue discipline and limits
    base_ms: the time (ms, caller's clock) at which trace t = 0
    once: finish at the end of the schedule instead of looping
    log: an open text file for Mahimahi-format event lines, or None

    ``departures`` collects ``(departure_ms, packet)`` tuples; the caller drains it.
    """

    def __init__(self, schedule: Schedule, queue: QueueSpec, base_ms: int = 0, once: bool = False,
                 log: TextIO | None = None):
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
                log.write("".join(f"{base + slot_ms[k]} # {OPPORTUNITY_BYTES}\n" * slot_count[k]
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
        while True:
            if not queue and not self.in_transit_left:
                self._skip_idle(now_ms)
                return
            t = self.base_ms + slot_ms[self.idx]
            if t > now_ms:
                return
            count = slot_count[self.idx]
            if log is not None:
                log.write(f"{t} # {OPPORTUNITY_BYTES}\n" * count)
            budget = count * OPPORTUNITY_BYTES
            self._advance()
            left = self.in_transit_left
            while True:
                if not left:
                    if not queue:
                        break
                    item = queue.popleft()
                    left = len(item[0])
                    self.queue_bytes -= left
                    self.in_transit = item
                if left <= budget:
                    budget -= left
                    left = 0
                    pkt, arrival = self.in_transit
                    departures.append((t, pkt))
                    self.departed_packets += 1
                    self.departed_bytes += len(pkt)
                    if log is not None:
                        log.write(f"{t} - {len(pkt)} {t - arrival}\n")
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
            log.write(f"{now_ms} + {size}\n")
        kind = self.kind
        if kind == "infinite":
            self.queue.append((packet, now_ms))
            self.queue_bytes += size
            return True
        lp, lb = self.limit_packets, self.limit_bytes
        if kind == "droptail":
            if (lb and self.queue_bytes + size > lb) or (lp and len(self.queue) + 1 > lp):
                self.dropped_packets += 1
                self.dropped_bytes += size
                if log is not None:
                    log.write(f"{now_ms} d 1 {size}\n")
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
                log.write(f"{now_ms} d {n} {nbytes}\n")
        return accepted

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
