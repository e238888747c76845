"""BBR and Cubic as teachers of an Aurora student: the rate a teacher would send at, and the student's action
that reaches it (what ``genet train cc --agent bc|dagger --teacher bbr|cubic`` labels states with).

**The teacher's rate.** A teacher is the simulator's own BBR or Cubic (:mod:`genet.cc.senders.bbr`,
:mod:`genet.cc.senders.cubic`), its state record updated by the same numba callbacks (``on_send``, ``on_ack``,
``on_loss``) the simulator calls. Its rate over the next monitor interval (MI), read from that state at the MI
boundary (:meth:`ShadowTeacher.rate_pps`):

* Cubic: ``cwnd / srtt`` (a window-limited sender delivers one window per round trip);
* BBR: ``min(pacing_rate, cwnd / srtt)`` (paced at gain x BtlBw, unless its window binds: ProbeRTT's 4 packets);

with the connection's RFC 6298 smoothed RTT, or the path's minimum RTT (2 x the link's one-way delay) before the
first RTT sample (the student's own initial-rate rule: 10 packets per min RTT).

**Whose ACKs.** The student, not the teacher, controls the sender in a DAgger rollout, and BBR's model (BtlBw
max filter, RTprop, gain-cycle phase, ProbeRTT) or Cubic's window cannot be put into the student's state (an
observation of 10 MIs of three ratios). So the teacher runs **shadow-wise on the student's packet stream**
(:class:`ShadowTeacher`): every send, ACK and loss notice of the student's sender, in the simulator's order, is
fed to the teacher's callbacks with a connection record of its own (in-flight count, the RTT estimator), as if
the teacher had sent those packets. What the teacher would do in the state the student reached is then what its
model, built from exactly that path feedback, says. Fed its own sender's event stream, the shadow reproduces the
teacher's state exactly (tests/test_cc_agents.py checks it for both). The approximation: a teacher's state built
from someone else's packets is not the state it would have after sending itself, which is DAgger's usual "what
would the expert do here" taken literally. Per teacher:

* BBR keeps its whole model across intervals: BtlBw and RTprop are measurements of the path (from the
  student's packets, so BtlBw cannot exceed what the student offered: a student far below the link's rate sees
  BBR ask for its 1.25 probing gain, not for the link's rate, once BBR has left its start-up);
* Cubic's window, fed a rate-paced student's losses unchecked, drifts away from anything the student's state
  shows (measured: in the states a DAgger student reached, 61 % of the labels sat at the +-2 clip, the window
  collapsed to 1 packet by repeated losses or grown far past the path by the student's ACKs), so before every
  interval the use case sets it to the window the student's rate amounts to (:meth:`ShadowTeacher.sync_window`:
  rate x smoothed RTT); the label is then Cubic's reaction to that interval's ACKs and losses from the
  student's window (slow start, the cubic curve since its last loss, the x0.7 decrease), with the rest of its
  state (ssthresh, W_max, the epoch) its own history.

BC and DAgger alike execute the teacher's decisions through the student's own sender (a rate per MI,
:func:`rate_action`), so BC's rollouts are the teacher's control law acting at MI granularity, not a
window-based sender's packet-by-packet ACK clocking.

BBR's send-time snapshots (its delivery-rate sample fields) live in a ring of :data:`SNAPSHOT_RING_PACKETS`
rows indexed by packet id; a packet whose ACK comes back after more than that many later sends (32,768: 1.6 s
of sending at the simulator's 20,000 packets/s cap) gives BBR no delivery-rate sample.

**The label** (:func:`rate_action`): the action that takes the student's sender from its current rate ``r`` to
the teacher's rate ``r_T`` (clamped to the sender's [5, 20000] packets/s range) under Aurora's mapping
(:func:`genet.cc.aurora.apply_rate_action`: ``r (1 + delta a)`` for a >= 0, ``r / (1 - delta a)`` otherwise),
inverted: ``a = (r_T / r - 1) / delta`` when ``r_T >= r``, ``a = (1 - r / r_T) / delta`` otherwise, clipped to
[-:data:`LABEL_ACTION_LIMIT`, +:data:`LABEL_ACTION_LIMIT`] (at most 3x up or down per MI with delta 1). The
clip keeps the regression target bounded when the student's rate is far from the teacher's (a student at
20,000 packets/s and a teacher at 100 would ask for a = -199); the sender then converges on the teacher's
rate over a few MIs, each label relative to the rate actually in force.
"""

from __future__ import annotations

import numpy as np

from foundation.errors import BadInputError
from genet.cc.connection import (P_DELIVERED, P_DELIVERED_S, P_FIRST_SENT_S, P_ID, P_SENT_S, PACKET_COLUMNS,
                                 new_conn_state, update_rtt)
from genet.cc.events import EV_LOST, EV_SENT
from genet.cc.kernels import kernel
from genet.cc.senders import bbr, cubic
from genet.cc.senders.kinds import KIND_BBR, KIND_CUBIC

#: The CC teachers: name -> sender kind of the simulator.
TEACHER_KINDS = {"bbr": KIND_BBR, "cubic": KIND_CUBIC}
#: Largest |action| of a label (a rate change of at most 3x per monitor interval with delta 1).
LABEL_ACTION_LIMIT = 2.0
#: Rows of BBR's send-snapshot ring (packets sent while one is in flight; module docstring).
SNAPSHOT_RING_PACKETS = 1 << 15


def rate_action(rate_pps, target_rate_pps, delta_scale: float = 1.0, min_rate_pps: float = 5.0,
                max_rate_pps: float = 20000.0, limit: float = LABEL_ACTION_LIMIT) -> np.ndarray:
    """The Aurora action that moves a sender at ``rate_pps`` to ``target_rate_pps`` (clamped to [min, max]) under
    :func:`genet.cc.aurora.apply_rate_action`, clipped to [-limit, limit] (module docstring); arrays broadcast."""
    r = np.asarray(rate_pps, np.float64)
    target = np.clip(np.asarray(target_rate_pps, np.float64), min_rate_pps, max_rate_pps)
    if np.any(~(r > 0)) or np.any(~np.isfinite(target)):
        raise BadInputError("rate_action: rates must be > 0 and finite packets/s")
    q = target / r
    a = np.where(q >= 1.0, q - 1.0, 1.0 - 1.0 / q) / float(delta_scale)
    return np.clip(a, -limit, limit)


@kernel
def shadow_events(kind, cubic_arr, bbr_arr, conn_arr, ring, kinds, times_s, ids, rtts_s):
    """Feed an event stream (the simulator's log columns) to the teacher's callbacks with the shadow's own
    connection record, in order, as :func:`genet.cc.events.run_events` calls them."""
    conn = conn_arr[0]
    cs = cubic_arr[0]
    bs = bbr_arr[0]
    cap = ring.shape[0]
    pkt = np.zeros(PACKET_COLUMNS)
    for e in range(kinds.shape[0]):
        now = times_s[e]
        if now > conn.now_s:
            conn.now_s = now
        pid = ids[e]
        slot = pid % cap
        if kinds[e] == EV_SENT:
            pkt[:] = 0.0
            pkt[P_ID] = pid
            pkt[P_SENT_S] = now
            if kind == KIND_CUBIC:
                cubic.on_send(cs, conn, now, pkt)
            else:
                bbr.on_send(bs, conn, now, pkt)
            ring[slot, :] = pkt
            conn.next_packet_id = pid + 1
            conn.packets_sent += 1
            conn.inflight_packets += 1
            continue
        rtt_s = rtts_s[e]
        if ring[slot, P_ID] == pid:
            pkt[:] = ring[slot, :]
        else:  # its snapshot was overwritten (module docstring): a sample of interval 0, which BBR ignores
            pkt[:] = 0.0
            pkt[P_ID] = pid
            pkt[P_SENT_S] = now - rtt_s
            pkt[P_FIRST_SENT_S] = now - rtt_s
            pkt[P_DELIVERED] = bs.delivered
            pkt[P_DELIVERED_S] = now
        conn.inflight_packets -= 1
        if kinds[e] == EV_LOST:
            conn.packets_lost += 1
            if kind == KIND_CUBIC:
                cubic.on_loss(cs, conn, now, rtt_s, pkt)
            else:
                bbr.on_loss(bs, conn, now, rtt_s, pkt)
        else:
            conn.packets_acked += 1
            update_rtt(conn, rtt_s)
            if conn.got_data == 0:
                conn.got_data = 1
                conn.first_ack_s = now
            conn.last_ack_s = now
            conn.rtt_sum_s += rtt_s
            if kind == KIND_CUBIC:
                cubic.on_ack(cs, conn, now, rtt_s, pkt)
            else:
                bbr.on_ack(bs, conn, now, rtt_s, pkt)


class ShadowTeacher:
    """A BBR or Cubic teacher run shadow-wise on a sender's event stream (module docstring); picklable.

    name: "bbr" or "cubic"
    min_rtt_s: the path's minimum RTT, the RTT before the first sample
    seed: BBR's initial gain-cycle phase (as :class:`genet.cc.senders.BbrSender` with the simulation seed)
    """

    def __init__(self, name: str, min_rtt_s: float, seed: int = 0) -> None:
        if name not in TEACHER_KINDS:
            raise BadInputError(f"unknown CC teacher {name!r}; choose one of {', '.join(TEACHER_KINDS)}")
        self.name = name
        self.kind = TEACHER_KINDS[name]
        self.min_rtt_s = float(min_rtt_s)
        self.conn = new_conn_state()
        self.cubic = cubic.new_state()
        self.bbr = bbr.new_state(int(seed))
        self.ring = np.zeros((SNAPSHOT_RING_PACKETS, PACKET_COLUMNS))
        self.ring[:, P_ID] = -1.0

    @property
    def state(self) -> np.void:
        """The teacher's sender state record (as ``Simulation.sender_state``)."""
        return (self.cubic if self.kind == KIND_CUBIC else self.bbr)[0]

    def observe(self, kinds: np.ndarray, times_s: np.ndarray, packet_ids: np.ndarray, rtts_s: np.ndarray) -> None:
        """Feed events (an :class:`~genet.cc.simulator.EventLog`'s columns, in order)."""
        if len(kinds):
            shadow_events(self.kind, self.cubic, self.bbr, self.conn, self.ring, np.asarray(kinds, np.int8),
                          np.asarray(times_s, np.float64), np.asarray(packet_ids, np.int64),
                          np.asarray(rtts_s, np.float64))

    def observe_log(self, log) -> None:
        """Feed an :class:`~genet.cc.simulator.EventLog`."""
        self.observe(log.kind, log.time_s, log.packet_id, log.rtt_s)

    def rtt_s(self) -> float:
        """The RTT the teacher's rate is measured by: the smoothed RTT, else the path's minimum (floored at 0.1 ms)."""
        c = self.conn[0]
        return max(float(c["srtt_s"]) if c["srtt_s"] > 0 else self.min_rtt_s, 1e-4)

    def sync_window(self, rate_pps: float) -> None:
        """Cubic: set the window to the student's, ``rate_pps`` x :meth:`rtt_s` packets (at least 1), before the
        interval sent at that rate is fed (module docstring); BBR: nothing."""
        if self.kind == KIND_CUBIC:
            self.cubic[0]["cwnd"] = max(float(rate_pps) * self.rtt_s(), 1.0)

    def rate_pps(self) -> float:
        """The teacher's sending rate over the next monitor interval, packets/s (module docstring)."""
        s = self.state
        window_rate = float(s["cwnd"]) / self.rtt_s()
        if self.kind == KIND_CUBIC:
            return window_rate
        return min(float(s["pacing_rate_pps"]), window_rate)


__all__ = ["LABEL_ACTION_LIMIT", "SNAPSHOT_RING_PACKETS", "ShadowTeacher", "TEACHER_KINDS", "rate_action",
           "shadow_events"]
