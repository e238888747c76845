"""Senders of the CC simulator: each is a small numba module with a state
record and four callbacks, dispatched by kind in :mod:`genet.cc.events`.

Callback contract (``s`` = the sender's state record, ``conn`` = the
connection record of :mod:`genet.cc.connection`, times in seconds):

* ``next_send_s(s, conn, now)``: when the sender wants to send next (``now``
  for at once, ``inf`` when window-limited: re-evaluated after every event);
* ``on_send(s, conn, now, pkt)``: a packet is being sent; ``conn`` does not
  count it in flight yet; the sender may store its send-time snapshot in
  ``pkt`` (a row with the ``P_*`` columns);
* ``on_ack(s, conn, now, rtt_s, pkt)`` / ``on_loss(s, conn, now, rtt_s, pkt)``:
  the packet's ACK (or, for a dropped packet, its loss notice one path
  latency after sending) arrived; ``conn`` no longer counts it in flight and
  its RTT sample is already in the connection's estimator (ACKs only).
"""

from genet.cc.senders.kinds import BbrSender, CubicSender, RateSender, SenderSpec

__all__ = ["SenderSpec", "RateSender", "CubicSender", "BbrSender"]
