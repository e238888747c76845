"""The wire format between client, balancer and workers, and the one time-unit conversion.

Every connection is TCP and carries messages: a 4-byte big-endian length, then that many bytes of a UTF-8 JSON
object with a ``"type"`` field. Messages (``id``: the job's index in the workload; sizes in work units; ``*_ms``
durations measured by the process that sends them)::

    client -> balancer   {"type": "job", "id", "size"}         a job arrives (open loop: sent at its arrival time)
                         {"type": "end", "n_jobs"}             no more jobs: answer each, then "done"
    balancer -> client   {"type": "finished", "id", "worker", "service_ms", "queue_wait_ms"}
                         {"type": "failed", "id", "worker", "reason"}      (worker None: never dispatched)
                         {"type": "done", "finished", "failed"}            every job answered
    balancer -> worker   {"type": "job", "id", "size"}
    worker -> balancer   {"type": "started", "id"}   {"type": "finished", "id", "service_ms", "queue_wait_ms"}
                         {"type": "error", "id", "reason"}    (a job the worker refuses: bad size)

No authentication: run it on test networks only (loopback, the namespaces of ``genet emulate lb``).

Time: Genet's LB simulator counts time in integer units (inter-arrival ``int(Exp(100))``, a job of size S on a
worker of rate r lasts ``S / r`` units). On real servers one unit lasts :data:`TIME_UNIT_MS` milliseconds of
wall-clock time: a job of size 500 on a worker of rate 2 is served for 250 units = 250 ms, and a workload's
arrival at unit t is sent t ms after the run starts. ``genet emulate lb --time-unit-ms`` scales a run
(everything in the run by the same factor: arrivals and service; the summary converts back to units).

Standard library only.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Iterator

from foundation.errors import BadInputError

#: Wall-clock milliseconds per Genet LB time unit (the default of every real-server run).
TIME_UNIT_MS = 1.0
#: The largest message accepted (bytes of JSON): a longer length prefix is a protocol error.
MAX_MESSAGE_BYTES = 64 * 1024
#: Largest job size a worker accepts (work units): 1e7 units at rate 0.1 is already ~28 hours at 1 ms a unit.
MAX_JOB_SIZE = 1e7

_HEADER = struct.Struct("!I")


class ProtocolError(BadInputError):
    """A peer sent something that is not a message of this protocol (the message says what)."""


def encode(msg: dict) -> bytes:
    """One message on the wire (length prefix + JSON)."""
    data = json.dumps(msg, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return _HEADER.pack(len(data)) + data


def send(sock: socket.socket, msg: dict) -> None:
    sock.sendall(encode(msg))


class Decoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, get back the whole messages they complete."""

    def __init__(self, peer: str = "peer") -> None:
        self.peer = peer
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict]:
        self._buf += data
        out = []
        while len(self._buf) >= _HEADER.size:
            (n,) = _HEADER.unpack_from(self._buf)
            if n > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"{self.peer}: message length {n} exceeds {MAX_MESSAGE_BYTES} bytes")
            if len(self._buf) < _HEADER.size + n:
                break
            raw = bytes(self._buf[_HEADER.size:_HEADER.size + n])
            del self._buf[:_HEADER.size + n]
            try:
                msg = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ProtocolError(f"{self.peer}: a message is not UTF-8 JSON") from None
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise ProtocolError(f"{self.peer}: a message is not a JSON object with a 'type'")
            out.append(msg)
        return out

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


def messages(sock: socket.socket, peer: str = "peer") -> Iterator[dict]:
    """Messages from a blocking socket until the peer closes it (a torn last message: ProtocolError)."""
    dec = Decoder(peer)
    while True:
        data = sock.recv(65536)
        if not data:
            if dec.pending_bytes:
                raise ProtocolError(f"{peer}: connection closed in the middle of a message")
            return
        yield from dec.feed(data)


def job_size(msg: dict, where: str) -> float:
    """The size of a ``job`` message, checked (a finite number in (0, MAX_JOB_SIZE])."""
    size = msg.get("size")
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not (0 < size <= MAX_JOB_SIZE):
        raise ProtocolError(f"{where}: job {msg.get('id')!r}: size must be a number in (0, {MAX_JOB_SIZE:g}], "
                            f"got {size!r}")
    return float(size)


def job_id(msg: dict, where: str) -> int:
    jid = msg.get("id")
    if isinstance(jid, bool) or not isinstance(jid, int) or jid < 0:
        raise ProtocolError(f"{where}: job id must be an integer >= 0, got {jid!r}")
    return jid


__all__ = ["TIME_UNIT_MS", "MAX_MESSAGE_BYTES", "MAX_JOB_SIZE", "ProtocolError", "encode", "send", "Decoder",
           "messages", "job_size", "job_id"]
