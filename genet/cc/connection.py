"""Per-connection state shared by every sender, and the in-flight packet record.

``CONN_STATE`` is the sender-independent part of a connection (counters,
RFC 6298 RTT estimator, the simulation clock), read by the senders' numba
callbacks; a packet in flight is one row of the event heap with the columns
``P_*`` below (senders store their send-time snapshot in it, e.g. BBR's
delivery-rate sample fields).

RTT estimator (genet-simulators.md §4.4, RFC 6298): first sample srtt = rtt,
rttvar = rtt/2; then rttvar = 3/4 rttvar + 1/4 |srtt - rtt|,
srtt = 7/8 srtt + 1/8 rtt; rto = clamp(srtt + 4 rttvar, 1, 60) s.
"""

from __future__ import annotations

import numpy as np
from genet.cc.kernels import kernel

CONN_STATE = np.dtype([
    ("now_s", np.float64),          # simulation clock
    ("next_packet_id", np.int64),
    ("packets_sent", np.int64),
    ("packets_acked", np.int64),
    ("packets_lost", np.int64),
    ("inflight_packets", np.int64),  # sent, not yet acked or detected lost
    ("srtt_s", np.float64),          # 0 until the first RTT sample
    ("rttvar_s", np.float64),
    ("rto_s", np.float64),
    ("min_rtt_s", np.float64),
    ("got_data", np.int64),          # 1 once the first ACK arrived
    ("first_ack_s", np.float64),
    ("last_ack_s", np.float64),
    ("rtt_sum_s", np.float64),       # over acked packets, for the packet-level mean RTT
    ("heap_size", np.int64),         # packets in the event heap
    ("log_size", np.int64),          # rows written to the event log in this call
    ("events", np.int64),            # events processed so far (sends + ACKs + loss notices)
    ("work_allowance", np.float64),  # events the run may have processed by now_s (its work bound)
])

# Columns of an in-flight packet (a row of the event heap).
P_ARRIVAL_S = 0        # when its ACK (or loss notice) reaches the sender
P_ID = 1               # packet id (ties in arrival time are broken by id)
P_SENT_S = 2           # send time
P_QUEUE_DELAY_S = 3    # time spent in the bottleneck queue, own serialisation included
P_DROPPED = 4          # 1.0 if the link dropped it
P_DELIVERED = 5        # BBR: connection's delivered count at send
P_DELIVERED_S = 6      # BBR: delivered_time at send
P_FIRST_SENT_S = 7     # BBR: first_sent_time at send
P_IN_RECOVERY = 8      # BBR: 1.0 if sent during loss recovery
PACKET_COLUMNS = 9


def new_conn_state() -> np.ndarray:
    conn = np.zeros(1, CONN_STATE)
    conn[0]["rto_s"] = 3.0
    conn[0]["min_rtt_s"] = np.inf
    conn[0]["first_ack_s"] = -1.0
    return conn


@kernel
def update_rtt(conn, rtt_s):
    """RFC 6298 estimator update from one RTT sample."""
    if conn.srtt_s <= 0.0:
        conn.srtt_s = rtt_s
        conn.rttvar_s = rtt_s / 2.0
    else:
        conn.rttvar_s = 0.75 * conn.rttvar_s + 0.25 * abs(conn.srtt_s - rtt_s)
        conn.srtt_s = 0.875 * conn.srtt_s + 0.125 * rtt_s
    conn.rto_s = min(max(conn.srtt_s + 4.0 * conn.rttvar_s, 1.0), 60.0)
    if rtt_s < conn.min_rtt_s:
        conn.min_rtt_s = rtt_s
