"""TCP Cubic as simulated by Genet (genet-simulators.md §5.2, ``cubic.py``).

beta = 0.3, C = 0.4, fast convergence on, TCP-friendliness off, initial cwnd
10 and ssthresh 80 packets. Window-based without pacing: whenever cwnd -
inflight >= 1 the sender sends at once (so the first flight is a burst of 10
at t = 0). Growth and reduction only happen after ``loss_wait_until_s``: one
reduction per RTT (srtt, or the lost packet's RTT before any sample), and ACKs
inside that window do not grow the window either (Genet's behaviour, kept).
"""

from __future__ import annotations

import numpy as np
from genet.cc.kernels import kernel

BETA = 0.3
C = 0.4
INITIAL_CWND = 10.0
INITIAL_SSTHRESH = 80.0

CUBIC_STATE = np.dtype([
    ("cwnd", np.float64),              # packets
    ("ssthresh", np.float64),          # packets
    ("w_last_max", np.float64),        # packets
    ("epoch_start_s", np.float64),     # 0: no epoch
    ("origin_point", np.float64),      # packets
    ("k_s", np.float64),
    ("d_min_s", np.float64),           # min RTT seen
    ("cwnd_count", np.float64),        # ACKs since the last +1
    ("loss_wait_until_s", np.float64),
])


def new_state() -> np.ndarray:
    s = np.zeros(1, CUBIC_STATE)
    s[0]["cwnd"] = INITIAL_CWND
    s[0]["ssthresh"] = INITIAL_SSTHRESH
    s[0]["d_min_s"] = np.inf
    return s


@kernel
def next_send_s(s, conn, now):
    if s.cwnd - conn.inflight_packets >= 1.0:
        return now
    return np.inf


@kernel
def on_send(s, conn, now, pkt):
    pass


@kernel
def _cubic_update(s, now):
    if s.epoch_start_s <= 0.0:
        s.epoch_start_s = now
        if s.cwnd < s.w_last_max:
            s.k_s = ((s.w_last_max - s.cwnd) / C) ** (1.0 / 3.0)
            s.origin_point = s.w_last_max
        else:
            s.k_s = 0.0
            s.origin_point = s.cwnd
    t = now + s.d_min_s - s.epoch_start_s
    target = s.origin_point + C * (t - s.k_s) ** 3
    if target > s.cwnd:
        cnt = s.cwnd / (target - s.cwnd)
    else:
        cnt = 100.0 * s.cwnd
    if s.cwnd_count > cnt:
        s.cwnd += 1.0
        s.cwnd_count = 0.0
    else:
        s.cwnd_count += 1.0


@kernel
def on_ack(s, conn, now, rtt_s, pkt):
    if now <= s.loss_wait_until_s:
        return
    if rtt_s < s.d_min_s:
        s.d_min_s = rtt_s
    if s.cwnd <= s.ssthresh:
        s.cwnd += 1.0  # slow start
    else:
        _cubic_update(s, now)


@kernel
def on_loss(s, conn, now, rtt_s, pkt):
    if now <= s.loss_wait_until_s:
        return
    s.loss_wait_until_s = now + (conn.srtt_s if conn.srtt_s > 0.0 else rtt_s)
    s.epoch_start_s = 0.0
    if s.cwnd < s.w_last_max:  # fast convergence
        s.w_last_max = s.cwnd * (2.0 - BETA) / 2.0
    else:
        s.w_last_max = s.cwnd
    s.cwnd = max(float(int(s.cwnd * (1.0 - BETA))), 1.0)
    s.ssthresh = max(s.cwnd, 2.0)
