"""Rate-based sender: paces one packet every 1/rate seconds, no window.

Used directly as the constant-rate calibration sender and, with its rate
changed between monitor intervals, as Aurora's sender (genet-simulators.md
§4.4: Aurora is purely rate-based, no cwnd, no retransmissions). The next
send is scheduled when a packet is sent, with the rate in force then; a rate
change takes effect from the following packet (as in Genet's event queue).

Start-up (Aurora's ``AuroraConfig.startup``): with ``window_packets`` > 0
the sender keeps at most that many packets in flight until the first ACK
and at that ACK lowers its rate to min(rate, window / RTT sample); both
rules are :func:`genet.cc.aurora.startup_window_open` and
:func:`genet.cc.aurora.startup_rate_after_first_ack_pps`, compiled here, the
functions the real UDP sender calls. ``window_packets`` 0 (the default)
is Aurora's own start-up: no gate, the rate untouched.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import numpy as np
from genet.cc.kernels import kernel

from genet.cc.aurora import startup_rate_after_first_ack_pps, startup_window_open

RATE_STATE = np.dtype([
    ("rate_pps", np.float64),      # packets per second
    ("next_send_s", np.float64),   # time of the next send
    ("window_packets", np.float64),  # start-up window until the first ACK (0: none, Aurora's start-up)
    ("min_rate_pps", np.float64),  # floor of the rate set at the first ACK (start-up window only)
])

_window_open = kernel(startup_window_open)
_rate_after_first_ack = kernel(startup_rate_after_first_ack_pps)


def new_state(rate_pps: float, start_s: float = 0.0, window_packets: float = 0.0,
              min_rate_pps: float = 0.0) -> np.ndarray:
    if not (rate_pps > 0 and np.isfinite(rate_pps)):
        raise BadInputError(f"sending rate must be > 0 packets/s, got {rate_pps}")
    s = np.zeros(1, RATE_STATE)
    s[0]["rate_pps"] = rate_pps
    s[0]["next_send_s"] = start_s
    s[0]["window_packets"] = window_packets
    s[0]["min_rate_pps"] = min_rate_pps
    return s


def upgrade_state(s: np.ndarray) -> np.ndarray:
    """A state array saved before the start-up fields existed (a pickled simulation) -> the current layout
    (no start-up window: the behaviour it was saved with)."""
    if s.dtype == RATE_STATE:
        return s
    out = np.zeros(s.shape, RATE_STATE)
    for name in s.dtype.names:
        out[name] = s[name]
    return out


@kernel
def next_send_s(s, conn, now):
    if s.window_packets > 0.0:
        if not _window_open(s.window_packets, conn.packets_acked, conn.inflight_packets):
            return np.inf  # window-limited until an ACK or a loss notice re-arms it
        return max(now, s.next_send_s)  # no credit for the time spent waiting
    return s.next_send_s


@kernel
def on_send(s, conn, now, pkt):
    s.next_send_s = now + 1.0 / s.rate_pps


@kernel
def on_ack(s, conn, now, rtt_s, pkt):
    if s.window_packets > 0.0 and conn.packets_acked == 1:  # the first ACK (counted before this call)
        s.rate_pps = _rate_after_first_ack(s.rate_pps, s.window_packets, rtt_s, s.min_rate_pps)


@kernel
def on_loss(s, conn, now, rtt_s, pkt):
    pass
