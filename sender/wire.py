"""The sender/receiver wire format (UDP, network byte order).

Data packet: exactly one simulator packet on the wire — a 1500-byte IP packet
(:data:`foundation.packets.PACKET_BYTES`): 20 (IPv4) + 8 (UDP) + 1472 bytes of UDP
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
:func:`decode` is the one definition of a well-formed datagram (it raises :class:`MalformedDatagram`,
naming why); :func:`parse_header` is its allocation-free form for the send/receive loops (None where
:func:`decode` raises). Neither trusts the peer: the protocol has no authentication, so a datagram
that parses is only as trustworthy as the network it came over (test networks).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from foundation.packets import UDP_PAYLOAD_BYTES

MAGIC = b"GT"
VERSION = 1
T_DATA, T_ACK, T_FIN, T_FIN_ACK = 1, 2, 3, 4

DATA = struct.Struct("!2sBBQQQ")
ACK = struct.Struct("!2sBBQQQQ")
FIN_ACK = struct.Struct("!2sBBQQQQQQQ")

DATA_PAYLOAD_BYTES = UDP_PAYLOAD_BYTES

#: type -> the fewest bytes a datagram of that type has (a data packet is padded to one simulator packet)
MIN_BYTES = {T_DATA: DATA_PAYLOAD_BYTES, T_FIN: DATA.size, T_ACK: ACK.size, T_FIN_ACK: FIN_ACK.size}
_LAYOUT = {T_DATA: DATA, T_FIN: DATA, T_ACK: ACK, T_FIN_ACK: FIN_ACK}
_SESSION = struct.Struct("!Q")


class MalformedDatagram(ValueError):
    """A datagram that is not one of ours: too short, another magic, another version or an unknown type."""


class Datagram(NamedTuple):
    """A decoded datagram: its type, session and the type's fields after them (:data:`DATA`, :data:`ACK`,
    :data:`FIN_ACK`: e.g. ``(seq, send_ns)`` for data and FIN)."""

    kind: int
    version: int
    session: int
    fields: tuple


def data_packet(session: int, seq: int, send_ns: int, kind: int = T_DATA) -> bytearray:
    buf = bytearray(DATA_PAYLOAD_BYTES)
    DATA.pack_into(buf, 0, MAGIC, VERSION, kind, session, seq, send_ns)
    return buf


def decode(buf, n: int | None = None) -> Datagram:
    """The first ``n`` bytes of ``buf`` (all of it when None) as a :class:`Datagram`; raises
    :class:`MalformedDatagram` (one line: why) for anything else."""
    n = len(buf) if n is None else max(0, min(int(n), len(buf)))
    if n < 4:
        raise MalformedDatagram(f"{n} bytes: shorter than the 4-byte header")
    if bytes(buf[0:2]) != MAGIC:
        raise MalformedDatagram(f"magic {bytes(buf[0:2])!r}, not {MAGIC!r}")
    if buf[2] != VERSION:
        raise MalformedDatagram(f"wire version {buf[2]}, this build speaks {VERSION}")
    kind = buf[3]
    need = MIN_BYTES.get(kind)
    if need is None:
        raise MalformedDatagram(f"unknown type {kind}")
    if n < need:
        raise MalformedDatagram(f"type {kind}: {n} bytes, needs at least {need}")
    _m, version, _k, session, *fields = _LAYOUT[kind].unpack_from(buf, 0)
    return Datagram(kind, version, session, tuple(fields))


def parse_header(buf, n: int):
    """(type, session) of a datagram of ``n`` bytes, or None when malformed (where :func:`decode` raises)."""
    if n > len(buf):  # as decode: only the bytes there are
        n = len(buf)
    if n < 4 or buf[0:2] != MAGIC or buf[2] != VERSION:
        return None
    kind = buf[3]
    need = MIN_BYTES.get(kind)
    if need is None or n < need:
        return None
    return kind, _SESSION.unpack_from(buf, 4)[0]
