"""The UDP receiver: acknowledges every data packet of one session at a time.

* The first session to deliver :data:`LOCK_PACKETS` (3) valid data packets
  locks the receiver (until then every valid data packet is acknowledged, so a
  stray datagram with some session id cannot hijack it); afterwards packets of
  other sessions, and truncated or garbage datagrams at any time, are counted
  (``other_session``, ``malformed``) and never answered, never fatal.
* Every data packet of the session gets an ACK echoing its sequence number
  and send time plus the receive time (:mod:`sender.wire`).
* A FIN of the session is answered with FIN_ACK (the session's counters); the
  session then ends (``once``: the receiver exits, like ``iperf3 -s -1``; else
  it waits for the next session). A session silent for ``session_timeout_s``
  also ends.
* SIGINT/SIGTERM stop it cleanly; :meth:`Receiver.serve` returns the summary
  (also written as JSON to ``summary_path`` when given).
* Memory is bounded whatever arrives: at most :data:`MAX_CANDIDATES` sessions are candidates at once,
  an ended session keeps its counters but not its set of sequence numbers (used only to count
  duplicates while it runs), and only the :data:`KEPT_SESSIONS_MAX` most recent sessions are kept for
  the summary (``sessions_total`` counts them all), so a stream of short fake sessions grows neither
  the process nor the summary. The protocol has no authentication: any host that can reach the port
  can start sessions, so run it on test networks.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from foundation.atomic import atomic_write_text
from foundation.jsonout import dumps as json_dumps
from foundation.packets import PACKET_BITS, PACKET_BYTES
from sender.wire import ACK, DATA, FIN_ACK, MAGIC, T_ACK, T_DATA, T_FIN, T_FIN_ACK, VERSION, parse_header


LOCK_PACKETS = 3
MAX_CANDIDATES = 64
#: the summary keeps the counters of this many most recent sessions (older ones: only in ``sessions_total``)
KEPT_SESSIONS_MAX = 64


@dataclass
class SessionStats:
    """One session as the receiver saw it (bytes: 1500 per packet, IP headers included)."""

    session: int = 0
    packets: int = 0
    duplicates: int = 0
    bytes: int = 0
    first_ns: int = 0
    last_ns: int = 0
    finished: bool = False
    seen: set = field(default_factory=set, repr=False)

    @property
    def throughput_mbps(self) -> float:
        d = (self.last_ns - self.first_ns) / 1e9
        return (self.packets - 1) * PACKET_BITS / d / 1e6 if d > 0 and self.packets > 1 else 0.0


class Receiver:
    """bind/port: where to listen (port 0: any; ``.port`` after construction); see the module docstring."""

    def __init__(self, bind: str = "0.0.0.0", port: int = 0, session_timeout_s: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((bind, port))
        self.port = self.sock.getsockname()[1]
        self.session_timeout_s = session_timeout_s
        self.malformed = 0
        self.other_session = 0
        self.sessions: deque[SessionStats] = deque(maxlen=KEPT_SESSIONS_MAX)  # the most recent; see the notes
        self.sessions_total = 0
        self._stop = False

    def stop(self, *_args) -> None:
        self._stop = True

    def serve(self, once: bool = False, duration_s: float | None = None, summary_path: str | None = None) -> dict:
        """Serve until a session ends (``once``), ``duration_s`` passes, or SIGINT/SIGTERM."""
        old = {}
        if _in_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, self.stop)
        try:
            self._loop(once, duration_s)
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)
            self.sock.close()
        summary = self.summary()
        if summary_path:
            atomic_write_text(summary_path, json_dumps(summary, indent=1) + "\n")
        return summary

    def _loop(self, once: bool, duration_s: float | None) -> None:
        sock = self.sock
        sock.settimeout(0.2)
        buf = bytearray(2048)
        ack = bytearray(ACK.size)
        cur: SessionStats | None = None
        candidates: dict[int, SessionStats] = {}
        end = time.monotonic() + duration_s if duration_s else None
        ack_pack, data_unpack = ACK.pack_into, DATA.unpack_from
        while not self._stop:
            try:
                n, addr = sock.recvfrom_into(buf)
            except socket.timeout:
                n = -1
            except InterruptedError:
                continue
            now = time.time_ns()
            if end is not None and time.monotonic() >= end:
                break
            if cur is not None and now - cur.last_ns > self.session_timeout_s * 1e9:
                cur.finished = False
                cur.seen = set()  # its duplicates are counted: the sequence numbers are not needed any more
                cur = None  # silent session: free for the next
            if candidates and now - next(iter(candidates.values())).last_ns > self.session_timeout_s * 1e9:
                self.other_session += candidates.pop(next(iter(candidates))).packets
            if n < 0:
                continue
            head = parse_header(buf, n)
            if head is None or head[0] not in (T_DATA, T_FIN):
                self.malformed += 1
                continue
            kind, session = head
            if cur is None:  # not locked yet: every session is a candidate
                cand = candidates.get(session)
                if cand is None:
                    if kind != T_DATA:
                        self.other_session += 1
                        continue
                    if len(candidates) >= MAX_CANDIDATES:
                        old = next(iter(candidates))
                        self.other_session += candidates.pop(old).packets
                    cand = candidates[session] = SessionStats(session=session, first_ns=now)
                if kind == T_FIN or cand.packets + 1 >= LOCK_PACKETS:
                    cur = candidates.pop(session)
                    self.other_session += sum(c.packets for c in candidates.values())
                    candidates.clear()
                    self.sessions.append(cur)  # the oldest kept one goes when KEPT_SESSIONS_MAX are kept
                    self.sessions_total += 1
                else:
                    _m, _v, _k, _s, seq, send_ns = data_unpack(buf, 0)
                    self._count(cand, seq, now)
                    ack_pack(ack, 0, MAGIC, VERSION, T_ACK, session, seq, send_ns, now)
                    try:
                        sock.sendto(ack, addr)
                    except OSError:
                        pass
                    continue
            elif session != cur.session:
                self.other_session += 1
                continue
            _m, _v, _k, _s, seq, send_ns = data_unpack(buf, 0)
            if kind == T_FIN:
                reply = FIN_ACK.pack(MAGIC, VERSION, T_FIN_ACK, session, cur.packets, cur.bytes, cur.first_ns,
                                     cur.last_ns, self.malformed, self.other_session)
                try:
                    sock.sendto(reply, addr)
                except OSError:
                    pass
                cur.finished = True
                cur.last_ns = max(cur.last_ns, cur.first_ns)
                cur.seen = set()
                if once:
                    break
                cur = None
                continue
            self._count(cur, seq, now)
            ack_pack(ack, 0, MAGIC, VERSION, T_ACK, session, seq, send_ns, now)
            try:
                sock.sendto(ack, addr)
            except OSError:
                pass  # a full socket buffer drops the ACK, as a network would

    @staticmethod
    def _count(st: SessionStats, seq: int, now: int) -> None:
        if seq in st.seen:
            st.duplicates += 1
        else:
            st.seen.add(seq)
            st.packets += 1
            st.bytes += PACKET_BYTES
            st.last_ns = now

    def summary(self) -> dict:
        return {"type": "receiver_summary", "malformed": self.malformed, "other_session": self.other_session,
                "sessions_total": self.sessions_total, "sessions_kept_max": KEPT_SESSIONS_MAX,
                "sessions": [{**{k: v for k, v in asdict(s).items() if k != "seen"},
                              "throughput_mbps": s.throughput_mbps} for s in self.sessions]}


def _in_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def receive_main(bind: str, port: int, once: bool, duration_s: float | None, summary_path: str | None,
                 ready_file: str | None = None) -> int:
    r = Receiver(bind, port)
    if ready_file:
        atomic_write_text(ready_file, f"{r.port}\n")
    print(f"genet sender receive: listening on {bind}:{r.port}", flush=True)
    s = r.serve(once=once, duration_s=duration_s, summary_path=summary_path)
    print(json_dumps(s), flush=True)
    return 0


__all__ = ["Receiver", "SessionStats", "receive_main", "os"]
