"""Packet sizes, defined once (bottom of the import graph: imports nothing).

* :data:`PACKET_BYTES` (1500): one data packet as the CC simulator counts it —
  a whole IP packet, headers included (Aurora/PCC's MSS of 1500, Genet's
  simulators, Mahimahi's traces: one delivery opportunity carries one
  1500-byte packet). Our UDP sender puts exactly this on the wire:
  20 (IPv4) + 8 (UDP) + :data:`UDP_PAYLOAD_BYTES` (1472).
* :data:`MAHIMAHI_OPPORTUNITY_BYTES` (1504): what one Mahimahi delivery
  opportunity carries on the TUN device — the 1500-byte IP packet plus the
  4-byte TUN header (:data:`TUN_HEADER_BYTES`); link logs count these bytes.
"""

PACKET_BYTES = 1500
PACKET_BITS = PACKET_BYTES * 8
IPV4_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
UDP_PAYLOAD_BYTES = PACKET_BYTES - IPV4_HEADER_BYTES - UDP_HEADER_BYTES
TUN_HEADER_BYTES = 4
MAHIMAHI_OPPORTUNITY_BYTES = PACKET_BYTES + TUN_HEADER_BYTES
