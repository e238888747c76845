"""The event model of the CC simulator, in one place (numba-compiled).

One sender, one bottleneck link (:mod:`genet.cc.link`), an ACK path.
Pending events are

* the sender's next SEND, a single time asked from the sender
  (``next_send_s``: paced senders give a time, window-limited ones ``inf``
  until an ACK or loss re-arms them);
* for every packet in flight, the arrival at the sender of its ACK (or of
  the news that it was dropped): a binary min-heap keyed by (arrival time,
  packet id), one row per packet with the columns of
  :mod:`genet.cc.connection`.

The loop repeatedly takes the earliest event; at equal times the ACK goes
first (it belongs to an older packet, as with Genet's id tie-break).

* SEND at t: the packet gets the next id, the sender stores its snapshot
  (``on_send``), the link decides drop / queueing delay
  (``link_transmit``), and its ACK is scheduled at
  t + data-path delay (propagation + queue + noise) + ACK-path propagation.
  A dropped packet still "arrives", flagged, so its loss is detected one path
  latency later (genet-simulators.md §4.3, both CC simulators).
* ACK at t: the RTT sample (t - send time) updates the connection's
  estimator and the sender's ``on_ack``; a flagged packet calls ``on_loss``.

Every send, ACK and loss is appended to an event log (columns ``L_*``):
that stream is all that monitors, rewards and metrics read, exactly what a
real UDP sender observes.

``run_events`` returns when the next event lies at or after ``until_s``,
when the heap or the log is full (the caller grows/drains and calls again),
when nothing is pending, or when the run's work bound is spent
(``STOP_WORK_BOUND``): the connection's ``work_allowance`` grows by
``events_per_s`` for every simulated second the clock advances, and an event
is only processed while fewer events than that have been. The caller sets
the rate from the link and sender rates, so the work and the memory of a run
are proportional to its simulated duration, and an event storm at one
instant stops at once instead of growing the log until the machine runs out
of memory. With ``cut_at_send`` it instead stops at the
first SEND at or after ``until_s`` once the connection got its first ACK:
the monitor-interval rule of both Genet simulators (§4.3), under which ACKs
past ``until_s`` but before that SEND still belong to the interval and the
first interval lasts until the first ACK.
"""

from __future__ import annotations

import numpy as np
from genet.cc.kernels import kernel

from genet.cc.connection import (P_ARRIVAL_S, P_DROPPED, P_ID, P_QUEUE_DELAY_S, P_SENT_S, PACKET_COLUMNS,
                                 update_rtt)
from genet.cc.link import link_transmit
from genet.cc.senders import bbr, cubic, rate
from genet.cc.senders.kinds import KIND_CUBIC, KIND_RATE

# Event log columns and kinds.
L_KIND, L_TIME_S, L_PACKET_ID, L_RTT_S, L_QUEUE_DELAY_S = 0, 1, 2, 3, 4
LOG_COLUMNS = 5
EV_SENT, EV_ACKED, EV_LOST = 0, 1, 2

# run_events return codes.
STOP_REACHED, STOP_HEAP_FULL, STOP_LOG_FULL, STOP_IDLE, STOP_WORK_BOUND = 0, 1, 2, 3, 4


# ----------------------------------------------------------------- the heap
@kernel
def _before(heap, a, b):
    if heap[a, P_ARRIVAL_S] != heap[b, P_ARRIVAL_S]:
        return heap[a, P_ARRIVAL_S] < heap[b, P_ARRIVAL_S]
    return heap[a, P_ID] < heap[b, P_ID]


@kernel
def _swap(heap, a, b):
    for c in range(PACKET_COLUMNS):
        x = heap[a, c]
        heap[a, c] = heap[b, c]
        heap[b, c] = x


@kernel
def heap_push(heap, size, pkt):
    """Insert row ``pkt``; returns the new size (the caller checks capacity)."""
    heap[size, :] = pkt
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if _before(heap, i, parent):
            _swap(heap, i, parent)
            i = parent
        else:
            break
    return size + 1


@kernel
def heap_pop(heap, size, out):
    """Copy the earliest row into ``out`` and remove it; returns the new size."""
    out[:] = heap[0, :]
    size -= 1
    if size > 0:
        heap[0, :] = heap[size, :]
        i = 0
        while True:
            left = 2 * i + 1
            if left >= size:
                break
            child = left
            if left + 1 < size and _before(heap, left + 1, left):
                child = left + 1
            if _before(heap, child, i):
                _swap(heap, child, i)
                i = child
            else:
                break
    return size


# ------------------------------------------------------- sender dispatch
@kernel
def _next_send_s(kind, rs, cs, bs, conn, now):
    if kind == KIND_RATE:
        return rate.next_send_s(rs, conn, now)
    if kind == KIND_CUBIC:
        return cubic.next_send_s(cs, conn, now)
    return bbr.next_send_s(bs, conn, now)


@kernel
def _on_send(kind, rs, cs, bs, conn, now, pkt):
    if kind == KIND_RATE:
        rate.on_send(rs, conn, now, pkt)
    elif kind == KIND_CUBIC:
        cubic.on_send(cs, conn, now, pkt)
    else:
        bbr.on_send(bs, conn, now, pkt)


@kernel
def _on_ack(kind, rs, cs, bs, conn, now, rtt_s, pkt):
    if kind == KIND_RATE:
        rate.on_ack(rs, conn, now, rtt_s, pkt)
    elif kind == KIND_CUBIC:
        cubic.on_ack(cs, conn, now, rtt_s, pkt)
    else:
        bbr.on_ack(bs, conn, now, rtt_s, pkt)


@kernel
def _on_loss(kind, rs, cs, bs, conn, now, rtt_s, pkt):
    if kind == KIND_RATE:
        rate.on_loss(rs, conn, now, rtt_s, pkt)
    elif kind == KIND_CUBIC:
        cubic.on_loss(cs, conn, now, rtt_s, pkt)
    else:
        bbr.on_loss(bs, conn, now, rtt_s, pkt)


@kernel
def _log(log, conn, kind, now, pkt_id, rtt_s, queue_delay_s):
    k = conn.log_size
    log[k, L_KIND] = kind
    log[k, L_TIME_S] = now
    log[k, L_PACKET_ID] = pkt_id
    log[k, L_RTT_S] = rtt_s
    log[k, L_QUEUE_DELAY_S] = queue_delay_s
    conn.log_size = k + 1


@kernel
def _advance(conn, t, events_per_s):
    """Move the clock to ``t`` (never backwards) and accrue the work allowance."""
    if t > conn.now_s:
        conn.work_allowance += events_per_s * (t - conn.now_s)
        conn.now_s = t


# ------------------------------------------------------------- the loop
@kernel
def run_events(conn_arr, link_arr, t_s, bw_pps, cum_packets, heap, log,
               kind, rate_arr, cubic_arr, bbr_arr, until_s, cut_at_send, events_per_s):
    """Process events up to ``until_s``; see the module docstring. Returns a STOP_* code."""
    conn = conn_arr[0]
    link = link_arr[0]
    rs = rate_arr[0]
    cs = cubic_arr[0]
    bs = bbr_arr[0]
    pkt = np.zeros(PACKET_COLUMNS)
    heap_capacity = heap.shape[0]
    log_capacity = log.shape[0]
    while True:
        now = conn.now_s
        t_ack = heap[0, P_ARRIVAL_S] if conn.heap_size > 0 else np.inf
        t_send = _next_send_s(kind, rs, cs, bs, conn, now)
        if t_send < t_ack:
            if t_send >= until_s and (not cut_at_send or conn.got_data == 1):
                _advance(conn, t_send if cut_at_send else max(now, until_s), events_per_s)
                return STOP_REACHED
            if conn.heap_size >= heap_capacity:
                return STOP_HEAP_FULL
            if conn.log_size >= log_capacity:
                return STOP_LOG_FULL
            _advance(conn, t_send, events_per_s)
            if conn.events >= conn.work_allowance:
                return STOP_WORK_BOUND
            # ---- SEND
            now = conn.now_s  # == t_send: every scheduled time is >= the clock it was computed at
            conn.events += 1
            pkt[:] = 0.0
            pkt[P_ID] = conn.next_packet_id
            pkt[P_SENT_S] = now
            conn.next_packet_id += 1
            _on_send(kind, rs, cs, bs, conn, now, pkt)
            dropped, queue_delay_s, arrival_s = link_transmit(link, t_s, bw_pps, cum_packets, now)
            pkt[P_ARRIVAL_S] = arrival_s
            pkt[P_QUEUE_DELAY_S] = queue_delay_s
            pkt[P_DROPPED] = 1.0 if dropped else 0.0
            conn.heap_size = heap_push(heap, conn.heap_size, pkt)
            conn.packets_sent += 1
            conn.inflight_packets += 1
            _log(log, conn, EV_SENT, now, pkt[P_ID], 0.0, queue_delay_s)
        else:
            if t_ack == np.inf:  # nothing pending at all
                _advance(conn, max(now, until_s), events_per_s)
                return STOP_IDLE
            if t_ack >= until_s and not cut_at_send:
                _advance(conn, max(now, until_s), events_per_s)
                return STOP_REACHED
            if conn.log_size >= log_capacity:
                return STOP_LOG_FULL
            _advance(conn, t_ack, events_per_s)
            if conn.events >= conn.work_allowance:
                return STOP_WORK_BOUND
            # ---- ACK or loss notice
            conn.heap_size = heap_pop(heap, conn.heap_size, pkt)
            now = conn.now_s  # == the packet's arrival time
            conn.events += 1
            rtt_s = now - pkt[P_SENT_S]
            conn.inflight_packets -= 1
            if pkt[P_DROPPED] != 0.0:
                conn.packets_lost += 1
                _on_loss(kind, rs, cs, bs, conn, now, rtt_s, pkt)
                _log(log, conn, EV_LOST, now, pkt[P_ID], rtt_s, pkt[P_QUEUE_DELAY_S])
            else:
                conn.packets_acked += 1
                update_rtt(conn, rtt_s)
                if conn.got_data == 0:
                    conn.got_data = 1
                    conn.first_ack_s = now
                conn.last_ack_s = now
                conn.rtt_sum_s += rtt_s
                _on_ack(kind, rs, cs, bs, conn, now, rtt_s, pkt)
                _log(log, conn, EV_ACKED, now, pkt[P_ID], rtt_s, pkt[P_QUEUE_DELAY_S])
