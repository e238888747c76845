"""Rate-based sender: paces one packet every 1/rate seconds, no window.

Used directly as the constant-rate calibration sender and, with its rate
changed between monitor intervals, as Aurora's sender (genet-simulators.md
§4.4: Aurora is purely rate-based, no cwnd, no retransmissions). The next
send is scheduled when a packet is sent, with the rate in force then; a rate
change takes effect from the following packet (as in Genet's event queue).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import numpy as np
from numba import njit

RATE_STATE = np.dtype([
    ("rate_pps", np.float64),      # packets per second
    ("next_send_s", np.float64),   # time of the next send
])


def new_state(rate_pps: float, start_s: float = 0.0) -> np.ndarray:
    if not (rate_pps > 0 and np.isfinite(rate_pps)):
        raise BadInputError(f"sending rate must be > 0 packets/s, got {rate_pps}")
    s = np.zeros(1, RATE_STATE)
    s[0]["rate_pps"] = rate_pps
    s[0]["next_send_s"] = start_s
    return s


@njit(cache=True)
def next_send_s(s, conn, now):
    return s.next_send_s


@njit(cache=True)
def on_send(s, conn, now, pkt):
    s.next_send_s = now + 1.0 / s.rate_pps


@njit(cache=True)
def on_ack(s, conn, now, rtt_s, pkt):
    pass


@njit(cache=True)
def on_loss(s, conn, now, rtt_s, pkt):
    pass
