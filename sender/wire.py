"""The sender/receiver wire format (UDP, network byte order).

Data packet: exactly one simulator packet on the wire — a 1500-byte IP packet
(:data:`genet.packets.PACKET_BYTES`): 20 (IPv4) + 8 (UDP) + 1472 bytes of UDP
payload. Rates and throughputs count these 1500 bytes per packet, headers
included, as the simulator and Mahimahi's traces do (the link's log adds the
4-byte TUN header: 1504). Payload = :data:`DATA` header (28 bytes) + zero
padding::

    magic "GT" | version u8 | type u8 (1 data, 3 fin) | session u64 | seq u64 | send_ns u64

ACK (one per data packet, as PCC's UDT receiver; 36 bytes of payload)::

    magic | version | type 2 | session | seq | echoed send_ns | receiver's receive time ns (wall clock)

FIN_ACK (answer to FIN): the receiver's counters for the session::

    magic | version | type 4 | session | packets | bytes (IP, 1500 per packet) | first_ns | last_ns
          | malformed | other_session

Anything shorter, with another magic/version/type, is malformed: counted, never answered.
"""

from __future__ import annotations

import struct

from genet.packets import UDP_PAYLOAD_BYTES

MAGIC = b"GT"
VERSION = 1
T_DATA, T_ACK, T_FIN, T_FIN_ACK = 1, 2, 3, 4

DATA = struct.Struct("!2sBBQQQ")
ACK = struct.Struct("!2sBBQQQQ")
FIN_ACK = struct.Struct("!2sBBQQQQQQQ")

DATA_PAYLOAD_BYTES = UDP_PAYLOAD_BYTES


def data_packet(session: int, seq: int, send_ns: int, kind: int = T_DATA) -> bytearray:
    buf = bytearray(DATA_PAYLOAD_BYTES)
    DATA.pack_into(buf, 0, MAGIC, VERSION, kind, session, seq, send_ns)
    return buf


def parse_header(buf, n: int):
    """(type, session) of a datagram of ``n`` bytes, or None when malformed."""
    if n < 4 or buf[0:2] != MAGIC or buf[2] != VERSION:
        return None
    kind = buf[3]
    need = {T_DATA: DATA_PAYLOAD_BYTES, T_FIN: DATA.size, T_ACK: ACK.size, T_FIN_ACK: FIN_ACK.size}.get(kind)
    if need is None or n < need:
        return None
    return kind, struct.unpack_from("!Q", buf, 4)[0]
