"""BBR (v1) as simulated by Genet (genet-simulators.md §5.3), after
draft-cardwell-iccrg-bbr-congestion-control and
draft-cheng-iccrg-delivery-rate-estimation.

Constants: high gain 2.89, BtlBw filter 10 rounds, RTprop filter 10 s,
ProbeRTT 0.2 s, minimum pipe cwnd 4 packets, initial cwnd 10, gain cycle
[5/4, 3/4, 1, 1, 1, 1, 1, 1] entered at phase 8 - 1 - randint(0..6).

Where Genet's two BBRs differ we follow the *new* one (``bbr.py``), which is
the draft: delivery-rate samples with an interval shorter than RTprop are
discarded, and BtlBw is a max over per-round maxima of the last 10 rounds
(``bbr_old.py`` keeps every sample and takes the max of the last 10 raw
samples: its known BtlBw over-estimation bug). One exception: Genet's new
BBR also discards the samples of packets sent during loss recovery, which
Linux, the draft and ``bbr_old.py`` (the baseline of Genet's CC curriculum
runs) keep; we keep them by default and
``BbrSender(discard_recovery_samples=True)`` restores Genet's new-BBR rule
(a small effect in our runs: 85 % vs 79 % utilisation at 60 Mbps, 332 ms
RTT, 1 % loss; none at 10 Mbps / 100 ms / 1 %). The recovery cwnd modulation
applies only while in recovery; packet conservation lasts the first round of
recovery. Our senders are never
application-limited. The initial pacing rate is 2.89 x cwnd / 0.1 s, as in
Genet (no srtt yet).

Rates are in packets/s and windows in packets (1500-byte packets).
"""

from __future__ import annotations

import numpy as np
from genet.cc.kernels import kernel

from genet.cc.connection import P_DELIVERED, P_DELIVERED_S, P_FIRST_SENT_S, P_IN_RECOVERY, P_SENT_S
from genet.cc.link import uniform01

HIGH_GAIN = 2.89
BTLBW_FILTER_ROUNDS = 10
RTPROP_FILTER_S = 10.0
PROBE_RTT_DURATION_S = 0.2
MIN_PIPE_CWND = 4.0
INITIAL_CWND = 10.0
PACING_GAINS = np.array([1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
GAIN_CYCLE_LENGTH = 8

STARTUP, DRAIN, PROBE_BW, PROBE_RTT = 0, 1, 2, 3
MODE_NAMES = ("startup", "drain", "probe_bw", "probe_rtt")

BBR_STATE = np.dtype([
    ("mode", np.int64),
    ("pacing_gain", np.float64),
    ("cwnd_gain", np.float64),
    ("cwnd", np.float64),                 # packets
    ("pacing_rate_pps", np.float64),
    ("next_send_s", np.float64),
    ("send_quantum", np.float64),         # packets
    ("btlbw_pps", np.float64),
    ("btlbw_round_max", np.float64, (BTLBW_FILTER_ROUNDS,)),
    ("btlbw_round_id", np.int64, (BTLBW_FILTER_ROUNDS,)),
    ("rtprop_s", np.float64),
    ("rtprop_stamp_s", np.float64),
    ("delivered", np.float64),            # packets delivered so far
    ("delivered_time_s", np.float64),
    ("first_sent_time_s", np.float64),
    ("next_round_delivered", np.float64),
    ("round_count", np.int64),
    ("round_start", np.int64),
    ("filled_pipe", np.int64),
    ("full_bw_pps", np.float64),
    ("full_bw_count", np.int64),
    ("cycle_index", np.int64),
    ("cycle_stamp_s", np.float64),
    ("loss_in_cycle", np.int64),
    ("probe_rtt_done_stamp_s", np.float64),
    ("probe_rtt_round_done", np.int64),
    ("prior_cwnd", np.float64),
    ("in_recovery", np.int64),
    ("recovery_until_s", np.float64),
    ("packet_conservation", np.int64),
    ("rng_state", np.uint64),             # for the initial gain-cycle phase
    ("discard_recovery_samples", np.int64),  # 1: Genet new-BBR rule (see the module docstring)
])


def new_state(seed: int = 42, discard_recovery_samples: bool = False) -> np.ndarray:
    s = np.zeros(1, BBR_STATE)[0:1]
    r = s[0]
    r["mode"] = STARTUP
    r["pacing_gain"] = HIGH_GAIN
    r["cwnd_gain"] = HIGH_GAIN
    r["cwnd"] = INITIAL_CWND
    r["pacing_rate_pps"] = HIGH_GAIN * INITIAL_CWND / 0.1
    r["send_quantum"] = 1.0
    r["rtprop_s"] = np.inf
    r["btlbw_round_id"] = -BTLBW_FILTER_ROUNDS - 1
    r["rng_state"] = np.uint64(int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]))
    r["discard_recovery_samples"] = int(discard_recovery_samples)
    return s


# ------------------------------------------------------------ the model
@kernel
def _inflight(s, gain):
    """BDP-based in-flight target for a gain, packets (10 before any RTT sample)."""
    if not np.isfinite(s.rtprop_s) or s.btlbw_pps <= 0.0:
        return INITIAL_CWND
    return gain * s.btlbw_pps * s.rtprop_s + 3.0 * s.send_quantum


@kernel
def _update_btlbw(s, rate_pps):
    slot = s.round_count % BTLBW_FILTER_ROUNDS
    if s.btlbw_round_id[slot] != s.round_count:
        s.btlbw_round_id[slot] = s.round_count
        s.btlbw_round_max[slot] = rate_pps
    elif rate_pps > s.btlbw_round_max[slot]:
        s.btlbw_round_max[slot] = rate_pps
    best = 0.0
    for k in range(BTLBW_FILTER_ROUNDS):
        if s.btlbw_round_id[k] > s.round_count - BTLBW_FILTER_ROUNDS and s.btlbw_round_max[k] > best:
            best = s.btlbw_round_max[k]
    s.btlbw_pps = best


@kernel
def _advance_cycle_phase(s, now):
    s.cycle_stamp_s = now
    s.cycle_index = (s.cycle_index + 1) % GAIN_CYCLE_LENGTH
    s.pacing_gain = PACING_GAINS[s.cycle_index]
    s.loss_in_cycle = 0


@kernel
def _enter_probe_bw(s, now):
    s.mode = PROBE_BW
    s.pacing_gain = 1.0
    s.cwnd_gain = 2.0
    s.cycle_index = GAIN_CYCLE_LENGTH - 1 - int(uniform01(s) * 7.0)
    _advance_cycle_phase(s, now)


@kernel
def _enter_startup(s):
    s.mode = STARTUP
    s.pacing_gain = HIGH_GAIN
    s.cwnd_gain = HIGH_GAIN


@kernel
def _save_cwnd(s):
    if s.in_recovery == 0 and s.mode != PROBE_RTT:
        return s.cwnd
    return max(s.prior_cwnd, s.cwnd)


@kernel
def _check_cycle_phase(s, now, prior_inflight):
    if s.mode != PROBE_BW:
        return
    full_length = now - s.cycle_stamp_s > s.rtprop_s
    if s.pacing_gain == 1.0:
        advance = full_length
    elif s.pacing_gain > 1.0:
        advance = full_length and (s.loss_in_cycle > 0 or prior_inflight >= _inflight(s, s.pacing_gain))
    else:
        advance = full_length or prior_inflight <= _inflight(s, 1.0)
    if advance:
        _advance_cycle_phase(s, now)


@kernel
def _check_full_pipe(s):
    if s.filled_pipe == 1 or s.round_start == 0:
        return
    if s.btlbw_pps >= 1.25 * s.full_bw_pps:
        s.full_bw_pps = s.btlbw_pps
        s.full_bw_count = 0
        return
    s.full_bw_count += 1
    if s.full_bw_count >= 3:
        s.filled_pipe = 1


@kernel
def _check_drain(s, conn, now):
    if s.mode == STARTUP and s.filled_pipe == 1:
        s.mode = DRAIN
        s.pacing_gain = 1.0 / HIGH_GAIN
        s.cwnd_gain = HIGH_GAIN
    if s.mode == DRAIN and conn.inflight_packets <= _inflight(s, 1.0):
        _enter_probe_bw(s, now)


@kernel
def _update_rtprop_and_probe_rtt(s, conn, now, rtt_s):
    expired = now > s.rtprop_stamp_s + RTPROP_FILTER_S
    if rtt_s <= s.rtprop_s or expired:
        s.rtprop_s = rtt_s
        s.rtprop_stamp_s = now
    if s.mode != PROBE_RTT and expired:
        s.mode = PROBE_RTT
        s.pacing_gain = 1.0
        s.cwnd_gain = 1.0
        s.prior_cwnd = _save_cwnd(s)
        s.probe_rtt_done_stamp_s = 0.0
    if s.mode == PROBE_RTT:
        if s.probe_rtt_done_stamp_s == 0.0 and conn.inflight_packets <= MIN_PIPE_CWND:
            s.probe_rtt_done_stamp_s = now + PROBE_RTT_DURATION_S
            s.probe_rtt_round_done = 0
            s.next_round_delivered = s.delivered
        elif s.probe_rtt_done_stamp_s != 0.0:
            if s.round_start == 1:
                s.probe_rtt_round_done = 1
            if s.probe_rtt_round_done == 1 and now > s.probe_rtt_done_stamp_s:
                s.rtprop_stamp_s = now
                s.cwnd = max(s.cwnd, s.prior_cwnd)
                if s.filled_pipe == 1:
                    _enter_probe_bw(s, now)
                else:
                    _enter_startup(s)


@kernel
def _update_control(s, conn):
    # pacing rate: gain x BtlBw, only allowed to fall once the pipe is full
    if s.btlbw_pps > 0.0:
        rate = s.pacing_gain * s.btlbw_pps
        if s.filled_pipe == 1 or rate > s.pacing_rate_pps:
            s.pacing_rate_pps = rate
    # send quantum: 1 packet below 1.2 Mbps (100 pps), 2 below 24 Mbps, else 1 ms of data (<= 64 kB)
    if s.pacing_rate_pps < 100.0:
        s.send_quantum = 1.0
    elif s.pacing_rate_pps < 2000.0:
        s.send_quantum = 2.0
    else:
        s.send_quantum = min(s.pacing_rate_pps * 0.001, 65536.0 / 1500.0)
    # congestion window
    target = float(int(_inflight(s, s.cwnd_gain)))
    if s.in_recovery == 1 and s.packet_conservation == 1:
        s.cwnd = max(s.cwnd, conn.inflight_packets + 1.0)
    else:
        if s.filled_pipe == 1:
            s.cwnd = min(s.cwnd + 1.0, target)
        elif s.cwnd < target or s.delivered < INITIAL_CWND:
            s.cwnd += 1.0
        s.cwnd = max(s.cwnd, MIN_PIPE_CWND)
    if s.mode == PROBE_RTT:
        s.cwnd = min(s.cwnd, MIN_PIPE_CWND)


# ------------------------------------------------------- sender callbacks
@kernel
def next_send_s(s, conn, now):
    if conn.inflight_packets < s.cwnd:
        return max(now, s.next_send_s)
    return np.inf  # cwnd-limited: re-armed by the next ACK or loss


@kernel
def on_send(s, conn, now, pkt):
    if conn.inflight_packets == 0:
        s.first_sent_time_s = now
        s.delivered_time_s = now
    pkt[P_DELIVERED] = s.delivered
    pkt[P_DELIVERED_S] = s.delivered_time_s
    pkt[P_FIRST_SENT_S] = s.first_sent_time_s
    pkt[P_IN_RECOVERY] = float(s.in_recovery)
    s.next_send_s = now + 1.0 / s.pacing_rate_pps


@kernel
def on_ack(s, conn, now, rtt_s, pkt):
    if s.in_recovery == 1 and now > s.recovery_until_s:
        s.in_recovery = 0
        s.packet_conservation = 0
        s.cwnd = max(s.cwnd, s.prior_cwnd)
    prior_inflight = conn.inflight_packets + 1.0
    # delivery-rate sample
    s.delivered += 1.0
    s.delivered_time_s = now
    send_elapsed = pkt[P_SENT_S] - pkt[P_FIRST_SENT_S]
    ack_elapsed = now - pkt[P_DELIVERED_S]
    s.first_sent_time_s = pkt[P_SENT_S]
    interval = max(send_elapsed, ack_elapsed)
    rate_pps = -1.0
    if interval > 0.0 and interval >= min(s.rtprop_s, rtt_s) and not (
            s.discard_recovery_samples == 1 and pkt[P_IN_RECOVERY] != 0.0):
        rate_pps = (s.delivered - pkt[P_DELIVERED]) / interval
    # round counting
    s.round_start = 0
    if pkt[P_DELIVERED] >= s.next_round_delivered:
        s.next_round_delivered = s.delivered
        s.round_count += 1
        s.round_start = 1
        if s.in_recovery == 1:
            s.packet_conservation = 0
    if rate_pps >= 0.0:
        _update_btlbw(s, rate_pps)
    _check_cycle_phase(s, now, prior_inflight)
    _check_full_pipe(s)
    _check_drain(s, conn, now)
    _update_rtprop_and_probe_rtt(s, conn, now, rtt_s)
    _update_control(s, conn)


@kernel
def on_loss(s, conn, now, rtt_s, pkt):
    s.loss_in_cycle = 1
    if s.in_recovery == 0:
        s.prior_cwnd = _save_cwnd(s)
        s.cwnd = conn.inflight_packets + 1.0
        s.in_recovery = 1
        s.packet_conservation = 1
        s.recovery_until_s = now + (conn.srtt_s if conn.srtt_s > 0.0 else rtt_s)
    else:
        s.cwnd = max(s.cwnd - 1.0, 1.0)
