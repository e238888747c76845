"""The UDP sender and receiver against a hostile peer (issue 25), on loopback with real sockets.

* Fuzz: thousands of random, truncated, replayed and wrong-version datagrams to a real receiver and to
  a real sender (each a ``genet sender`` process, so its memory is measurable: ``VmRSS`` of
  ``/proc/PID/status`` before and after, within :data:`RSS_GROWTH_LIMIT_KB`). Neither crashes or hangs,
  and the counters account for every datagram (the receiver exactly: the test paces the garbage
  behind a real session's ACKs; the sender within the datagrams its socket dropped, read from
  ``/proc/net/udp``).
* 2,500 fake sessions leave the receiver's session table and summary bounded
  (:data:`sender.receiver.KEPT_SESSIONS_MAX`) and its memory within :data:`RSS_GROWTH_LIMIT_KB`.
* A wrong-version ACK is malformed, never an acknowledgement or a late ACK.
* The sender's log is strict JSON: an undefined figure is ``null``, not a bare ``NaN``.
* Hypothesis over bytes: :mod:`sender.wire`'s decoders decode or raise :class:`sender.wire.MalformedDatagram`.

Every test is seeded (``random.Random(SEED)``; Hypothesis from the suite's seed) and bounded in count and time.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import hypothesis_examples
from udp_relay import UdpRelay
from genet.cc.aurora import AuroraConfig
from genet.cc.registry import load_rate_policy
from sender import receiver as receiver_mod
from sender import wire
from sender.udp_sender import EXIT_SILENT, UdpSender, read_log

GENET = [sys.executable, "-m", "app.cli"]
SEED = 25
#: a process's resident memory may grow by at most this much over a fuzz phase (garbage must not be kept)
RSS_GROWTH_LIMIT_KB = 3072
#: every wait on a socket or a process gives up after this long (the test then fails instead of hanging)
WAIT_S = 10.0
FAKE_SESSIONS = 2500
FAKE_SESSION_PACKETS = 20  # distinct data packets per fake session (its set of sequence numbers), then FIN


# ----------------------------------------------------------------------------- helpers
def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def _udp_drops(port: int) -> int:
    """Datagrams the kernel dropped at the loopback UDP socket bound to ``port`` (/proc/net/udp)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port:
            return int(f[-1])
    return 0


def _start_receiver(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    ready = tmp_path / "rx.port"
    proc = subprocess.Popen(GENET + ["sender", "receive", "--bind", "127.0.0.1", "--port", "0", "--ready-file",
                                     str(ready), "--summary", str(tmp_path / "rx.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.02)
    return proc, int(ready.read_text())


def _stop_receiver(proc: subprocess.Popen, tmp_path: Path) -> dict:
    assert proc.poll() is None, f"the receiver died: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=WAIT_S) == 0, proc.stderr.read().decode()[-2000:]
    assert b"Traceback" not in proc.stderr.read()
    return json.loads((tmp_path / "rx.json").read_text(), parse_constant=_no_constant)


def _no_constant(name):
    raise ValueError(f"bare {name} in JSON")


class _Peer:
    """A client socket talking to the receiver: sends datagrams, waits for the ACKs it expects."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(WAIT_S)

    def send(self, d) -> None:
        self.sock.send(d)

    def wait_for(self, session: int, seqs, kind: int = wire.T_ACK) -> list:
        """Read until an answer of ``kind`` for ``session`` has come for every one of ``seqs`` (FIN_ACK: one
        answer); other answers (to replays, to earlier packets) are skipped. Fails after WAIT_S."""
        want = set(seqs)
        deadline = time.monotonic() + WAIT_S
        while True:
            assert time.monotonic() < deadline, f"no answer from the receiver for {sorted(want)[:5]}"
            d = self.sock.recv(2048)  # read with struct, not with the code under test
            layout = {wire.T_ACK: wire.ACK, wire.T_FIN_ACK: wire.FIN_ACK}[d[3]]
            magic, version, k, s_id, *fields = layout.unpack_from(d)
            assert (magic, version) == (wire.MAGIC, wire.VERSION)
            if k == kind and s_id == session:
                if kind == wire.T_FIN_ACK:
                    return fields
                want.discard(fields[0])
                if not want:
                    return fields

    def session(self, session: int, seqs) -> None:
        """Data packets ``seqs`` of ``session`` (each acknowledged) then FIN (answered)."""
        for s in seqs:
            self.send(wire.data_packet(session, s, 0))
        self.wait_for(session, seqs)
        self.send(wire.data_packet(session, 0, 0, kind=wire.T_FIN))
        self.wait_for(session, (), kind=wire.T_FIN_ACK)

    def close(self) -> None:
        self.sock.close()


def _not_ours(rng: random.Random, max_bytes: int) -> bytes:
    """Random bytes that cannot be one of our datagrams (the first byte is never the magic's 'G')."""
    d = bytearray(rng.getrandbits(8) for _ in range(rng.randint(0, max_bytes)))
    if d and d[0] == wire.MAGIC[0]:
        d[0] ^= 0xFF
    return bytes(d)


def _wrong_version(d) -> bytes:
    b = bytearray(d)
    b[2] = random.Random(bytes(b[:16])).choice([v for v in range(256) if v != wire.VERSION])
    return bytes(b)


# ----------------------------------------------------------------------------- receiver
def test_receiver_survives_and_counts_8000_garbage_datagrams_with_bounded_memory(tmp_path):
    """Random, truncated, wrong-version, unknown-type, other-session and replayed datagrams (8,000, paced
    behind a real session's ACKs so the kernel drops none): the receiver keeps serving, counts each in
    the right counter (malformed / other_session / the session's duplicates) and keeps none of them."""
    rng = random.Random(SEED)
    proc, port = _start_receiver(tmp_path)
    peer = _Peer(port)
    try:
        session = 0x5EED
        sent: list[bytes] = []
        for s in range(3):  # the session locks the receiver
            sent.append(bytes(wire.data_packet(session, s, 0)))
            peer.send(sent[-1])
        peer.wait_for(session, range(3))
        rss0 = _rss_kb(proc.pid)
        malformed = other = replayed = 0
        seq = 3
        for _batch in range(250):
            for _ in range(32):
                k = rng.randrange(7)
                if k == 0:
                    d, malformed = _not_ours(rng, 100), malformed + 1
                elif k == 1:  # truncated data packet (anything shorter than one simulator packet)
                    d, malformed = bytes(wire.data_packet(session, seq, 0))[: rng.randint(0, 1471)], malformed + 1
                elif k == 2:
                    d, malformed = _wrong_version(wire.data_packet(session, seq + 1, 0)), malformed + 1
                elif k == 3:  # unknown type, or a type the receiver never takes (ACK, FIN_ACK)
                    t = rng.choice([0, wire.T_ACK, wire.T_FIN_ACK, 5, 255])
                    d, malformed = wire.MAGIC + bytes([wire.VERSION, t]) + bytes(1468), malformed + 1
                elif k == 4:
                    d, other = bytes(wire.data_packet(session + 1 + rng.getrandbits(40), seq, 0)), other + 1
                else:  # replayed data packet of the session: a duplicate (acknowledged again, counted once)
                    d, replayed = rng.choice(sent), replayed + 1
                peer.send(d)
            sent.append(bytes(wire.data_packet(session, seq, 0)))
            peer.send(sent[-1])
            peer.wait_for(session, [seq])  # everything before it has been read
            seq += 1
        rss1 = _rss_kb(proc.pid)
        peer.send(wire.data_packet(session, 0, 0, kind=wire.T_FIN))
        fin_ack = peer.wait_for(session, (), kind=wire.T_FIN_ACK)
        for _ in range(10):  # FIN replayed after the session ended: another session's, never answered
            peer.send(wire.data_packet(session, 0, 0, kind=wire.T_FIN))
        peer.send(wire.data_packet(777, 0, 0))  # a new candidate, acknowledged after the replays were read
        peer.wait_for(777, [0])
        assert proc.poll() is None
        summary = _stop_receiver(proc, tmp_path)
    finally:
        peer.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert malformed > 4000 and other > 800 and replayed > 1600
    packets, _bytes, _first, _last, fin_malformed, fin_other = fin_ack
    assert (packets, fin_malformed, fin_other) == (seq, malformed, other)
    assert summary["malformed"] == malformed and summary["other_session"] == other + 10
    (mine,) = [s for s in summary["sessions"] if s["session"] == session]
    assert mine["packets"] == seq and mine["duplicates"] == replayed and mine["finished"] is True
    print(f"receiver RSS {rss0} -> {rss1} kB over 8,000 datagrams")
    assert rss1 - rss0 <= RSS_GROWTH_LIMIT_KB, f"receiver RSS grew {rss1 - rss0} kB over 8,000 datagrams"


def test_2500_fake_sessions_leave_the_session_table_summary_and_memory_bounded(tmp_path):
    """Issue 25 item 14: each fake session locks the receiver (20 data packets) and finishes (FIN); the
    receiver used to keep every one (its counters and its set of sequence numbers) in memory and in the
    summary. Now the summary keeps the KEPT_SESSIONS_MAX most recent, counts them all, and RSS stays put."""
    kept_max = getattr(receiver_mod, "KEPT_SESSIONS_MAX", 64)
    rng = random.Random(SEED)
    proc, port = _start_receiver(tmp_path)
    peer = _Peer(port)
    warm = 2 * kept_max  # the table is full (steady state) before the first measurement
    try:
        ids = [rng.getrandbits(63) | 1 for _ in range(warm + FAKE_SESSIONS)]
        for sid in ids[:warm]:
            peer.session(sid, [rng.getrandbits(62) for _ in range(FAKE_SESSION_PACKETS)])
        rss0 = _rss_kb(proc.pid)
        for sid in ids[warm:]:
            peer.session(sid, [rng.getrandbits(62) for _ in range(FAKE_SESSION_PACKETS)])
        rss1 = _rss_kb(proc.pid)
        summary = _stop_receiver(proc, tmp_path)
    finally:
        peer.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"receiver RSS {rss0} -> {rss1} kB over {FAKE_SESSIONS} sessions; summary "
          f"{(tmp_path / 'rx.json').stat().st_size} bytes, {len(summary['sessions'])} sessions")
    assert len(summary["sessions"]) <= kept_max
    assert summary["sessions_total"] == warm + FAKE_SESSIONS
    assert [s["session"] for s in summary["sessions"]] == ids[-len(summary["sessions"]):]  # the most recent
    assert all(s["finished"] and s["packets"] == FAKE_SESSION_PACKETS for s in summary["sessions"])
    assert (tmp_path / "rx.json").stat().st_size <= 300 * kept_max + 1000
    assert rss1 - rss0 <= RSS_GROWTH_LIMIT_KB, f"receiver RSS grew {rss1 - rss0} kB over {FAKE_SESSIONS} sessions"


# ----------------------------------------------------------------------------- sender
class _HostileRelay(UdpRelay):
    """Sender <-> relay <-> receiver on loopback. Data, FIN and FIN_ACK pass untouched; before each real
    ACK goes back to the sender (once ``inject`` is set) it sends the sender ``per_ack`` datagrams from the
    receiver's side (the only address the sender's connected socket takes): garbage, truncated ACKs,
    wrong-version copies of that ACK (sent before the real one: the old sender took them as the ACK),
    wrong-version ACKs of packets never sent (the old sender counted them late), ACKs of another session,
    FIN_ACKs, and replays of earlier ACKs (duplicates) — ``total`` in all, counted by kind."""

    def __init__(self, receiver_port: int, total: int, per_ack: int = 8, seed: int = SEED):
        super().__init__(receiver_port, poll_s=0.05)
        self.rng = random.Random(seed)
        self.total, self.per_ack = total, per_ack
        self.inject = threading.Event()
        self.injected_done = threading.Event()
        self.acks_seen = 0
        self.counts = {"malformed": 0, "wrong_version": 0, "wrong_version_unsent": 0, "replayed": 0}
        self.sent = 0
        self._old_acks: list[bytes] = []

    def on_reply(self, ans: bytes) -> None:
        if ans[3] == wire.T_ACK:
            self.acks_seen += 1
            if self.inject.is_set() and self.sent < self.total:
                self._garbage(ans)
            self._old_acks.append(ans)
        self.to_sender(ans)

    def _garbage(self, ack: bytes) -> None:
        rng, c = self.rng, self.counts
        _m, _v, _k, session, seq, send_ns, recv_ns = wire.ACK.unpack(ack)
        for _ in range(min(self.per_ack, self.total - self.sent)):
            k = rng.randrange(7)
            if k == 0:
                d = _not_ours(rng, 300)
            elif k == 1:
                d = ack[: rng.randint(0, wire.ACK.size - 1)]
            elif k == 2:
                d = _wrong_version(ack)
                c["wrong_version"] += 1
            elif k == 3:
                d = _wrong_version(wire.ACK.pack(wire.MAGIC, wire.VERSION, wire.T_ACK, session,
                                                 10**9 + rng.getrandbits(20), send_ns, recv_ns))
                c["wrong_version"] += 1
                c["wrong_version_unsent"] += 1
            elif k == 4:
                d = wire.ACK.pack(wire.MAGIC, wire.VERSION, wire.T_ACK, session ^ (1 + rng.getrandbits(30)), seq,
                                  send_ns, recv_ns)
            elif k == 5:
                d = wire.FIN_ACK.pack(wire.MAGIC, wire.VERSION, wire.T_FIN_ACK, session, 1, 1500, 0, 1, 0, 0)
            else:
                if not self._old_acks:
                    continue
                d = rng.choice(self._old_acks[-200:])
                c["replayed"] += 1
                self.sock.sendto(d, self.client)
                self.sent += 1
                continue
            c["malformed"] += 1
            self.sock.sendto(d, self.client)
            self.sent += 1
        if self.sent >= self.total:
            self.injected_done.set()


def test_sender_survives_and_counts_4000_hostile_acks_with_bounded_memory(tmp_path):
    """Issue 25 item 13 and the UDP fuzz: a ``genet sender send`` process gets 4,000 hostile datagrams
    among its ACKs. It runs to the end, counts every malformed one (wrong-version ones also in
    ``wrong_version_acks``; none as an ACK or a late ACK), replays as duplicates, and its RSS stays put."""
    rx = receiver_mod.Receiver("127.0.0.1", 0)
    rx_summary: dict = {}
    rx_thread = threading.Thread(target=lambda: rx_summary.update(rx.serve(once=True, duration_s=60)), daemon=True)
    rx_thread.start()
    relay = _HostileRelay(rx.port, total=4000)
    relay.start()
    log = tmp_path / "run.jsonl"
    snd = subprocess.Popen(GENET + ["sender", "send", "--to", f"127.0.0.1:{relay.port}", "--policy", "const:4",
                                    "--duration-s", "6", "--log", str(log), "--no-low-latency-idle"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while relay.acks_seen < 100:  # running and acknowledged: the baseline
            assert snd.poll() is None and relay.error is None and time.monotonic() < deadline, (
                f"sender exit status {snd.poll()}, relay error {relay.error!r}, {relay.acks_seen} ACKs")
            time.sleep(0.01)
        rss0 = _rss_kb(snd.pid)
        relay.inject.set()
        assert relay.injected_done.wait(timeout=30), f"injected only {relay.sent} before the run ended"
        assert snd.poll() is None, "the sender stopped while the garbage came"
        rss1 = _rss_kb(snd.pid)
        drops = _udp_drops(relay.client[1])
        out, err = snd.communicate(timeout=30)
    finally:
        relay.stop = True
        rx.stop()
        if snd.poll() is None:
            snd.kill()
            snd.wait()
    relay.join(timeout=WAIT_S)
    rx_thread.join(timeout=WAIT_S)
    assert relay.error is None, relay.error
    assert snd.returncode == 0, err
    assert "Traceback" not in err
    summary = read_log(log)[-1]
    assert summary["type"] == "summary" and json.loads(out.strip().splitlines()[-1])["packets_sent"] > 0
    c = relay.counts
    assert c["malformed"] > 2500 and c["wrong_version_unsent"] > 400 and c["replayed"] > 400
    assert c["malformed"] - drops <= summary["malformed_acks"] <= c["malformed"], (c, drops, summary)
    assert c["wrong_version"] - drops <= summary["wrong_version_acks"] <= c["wrong_version"], (c, drops, summary)
    # a wrong-version ACK of a packet never sent used to count as late: now only real late ACKs (loss timeouts
    # on a loaded host) are late, and replays are duplicates (or late, when their packet had been declared lost)
    assert summary["late_acks"] < c["wrong_version_unsent"] // 2
    assert c["replayed"] - drops <= summary["duplicate_acks"] + summary["late_acks"]
    assert summary["packets_acked"] + summary["late_acks"] >= summary["packets_sent"] - drops - 5
    assert summary["receiver"]["packets"] == summary["packets_sent"] == rx_summary["sessions"][0]["packets"]
    print(f"sender RSS {rss0} -> {rss1} kB over 4,000 datagrams; {c}, {drops} dropped; sender counted "
          f"{ {k: summary[k] for k in ('malformed_acks', 'wrong_version_acks', 'late_acks', 'duplicate_acks')} }")
    assert rss1 - rss0 <= RSS_GROWTH_LIMIT_KB, f"sender RSS grew {rss1 - rss0} kB over 4,000 datagrams"


class _WrongVersionReceiver(threading.Thread):
    """Answers every data packet with a well-formed ACK of the right session and sequence number, but of
    another wire version (a receiver of another release); FIN gets no answer."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.answered = 0

    def run(self):
        while not self.stop:
            try:
                buf, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            _m, _v, kind, session, seq, send_ns = wire.DATA.unpack_from(buf)
            if kind == wire.T_DATA:
                self.sock.sendto(wire.ACK.pack(wire.MAGIC, wire.VERSION + 1, wire.T_ACK, session, seq, send_ns,
                                               time.time_ns()), addr)
                self.answered += 1


def _sender(port: int, log: Path, duration_s: float, silence_timeout_s: float) -> tuple[int, dict]:
    pol = load_rate_policy("const:2", AuroraConfig(reward_normaliser="measured"))
    return UdpSender(("127.0.0.1", port), pol, duration_s, log, silence_timeout_s=silence_timeout_s,
                     low_latency_idle=False).run()


def test_a_wrong_version_ack_is_malformed_not_an_ack():
    """Issue 25 item 13: the sender ignored the ACK's version byte, so ACKs of another wire version
    acknowledged packets (or counted late). Against a receiver that answers only in another version, the
    sender acknowledges nothing, counts every answer malformed and stops on silence, naming the version."""
    rx = _WrongVersionReceiver()
    rx.start()
    try:
        status, summary = _sender(rx.port, None, 5.0, 1.0)
    finally:
        rx.stop = True
        rx.join(timeout=WAIT_S)
    assert rx.answered > 50
    assert status == EXIT_SILENT and "another wire version" in summary["reason"], summary["reason"]
    assert summary["packets_acked"] == 0 and summary["late_acks"] == 0 and summary["duplicate_acks"] == 0
    assert rx.answered - 5 <= summary["malformed_acks"] <= rx.answered
    assert summary["wrong_version_acks"] == summary["malformed_acks"]


def test_the_sender_log_is_strict_json_with_null_for_undefined_figures(tmp_path):
    """Issue 25: a run without an RTT sample (nobody answers) wrote bare ``NaN`` for its percentiles, which
    is not JSON. Every line now parses under a strict reader, with null there; the log's readers
    (read_log, ``genet deploy``'s sender_log_metrics and report mean) take the null."""
    from deploy.schemes import sender_log_metrics
    from foundation.stats import mean_ci95

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    log = tmp_path / "run.jsonl"
    try:
        status, _summary = _sender(silent.getsockname()[1], log, 30.0, 0.5)
    finally:
        silent.close()
    assert status == EXIT_SILENT
    lines = log.read_text().splitlines()
    recs = [json.loads(line, parse_constant=_no_constant) for line in lines]  # strict: NaN/Infinity refused
    summary = recs[-1]
    assert summary["type"] == "summary" and summary["packets_acked"] == 0
    for k in ("p90_rtt_ms", "p95_rtt_ms", "decision_p50_us", "decision_p99_us", "mean_rtt_ms"):
        assert summary[k] is None, k
    assert read_log(log) == recs
    m = sender_log_metrics(log, 30.0)
    assert m["p90_rtt_ms"] is None and m["throughput_mbps"] == 0.0
    mean, _half, n = mean_ci95([m["p90_rtt_ms"], 12.0])
    assert (mean, n) == (12.0, 1)


def test_json_out_writes_null_for_every_non_finite_float():
    import numpy as np

    from foundation.jsonout import dumps
    text = dumps({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5, np.float32("nan"), np.float64(2.0)],
                  "c": (np.float32(0.25), np.int64(3), None, "NaN"), "d": {"e": np.nan}})
    assert json.loads(text, parse_constant=_no_constant) == {"a": None, "b": [None, None, 1.5, None, 2.0],
                                                             "c": [0.25, 3, None, "NaN"], "d": {"e": None}}


# ----------------------------------------------------------------------------- wire: Hypothesis over bytes
def _valid(kind: int, session: int, a: int, b: int, c: int) -> bytes:
    if kind in (wire.T_DATA, wire.T_FIN):
        d = wire.DATA.pack(wire.MAGIC, wire.VERSION, kind, session, a, b)
        return d + bytes(wire.DATA_PAYLOAD_BYTES - len(d)) if kind == wire.T_DATA else d
    if kind == wire.T_ACK:
        return wire.ACK.pack(wire.MAGIC, wire.VERSION, kind, session, a, b, c)
    return wire.FIN_ACK.pack(wire.MAGIC, wire.VERSION, kind, session, a, b, c, a, b, c)


U64 = st.integers(0, 2**64 - 1)
KINDS = st.sampled_from([wire.T_DATA, wire.T_ACK, wire.T_FIN, wire.T_FIN_ACK])
#: arbitrary bytes, and bytes that start like ours (so the length and type checks are reached too)
DATAGRAMS = st.one_of(st.binary(max_size=2100),
                      st.builds(lambda k, v, rest: wire.MAGIC + bytes([v, k]) + rest, st.integers(0, 255),
                                st.sampled_from([wire.VERSION, wire.VERSION, 0, 2, 255]), st.binary(max_size=1600)))


N_FIELDS = {wire.T_DATA: 2, wire.T_FIN: 2, wire.T_ACK: 3, wire.T_FIN_ACK: 6}


def _decode_or_error(buf, n=None):
    try:
        return wire.decode(buf, n)
    except wire.MalformedDatagram as e:
        assert str(e) and "\n" not in str(e)
        return None


@settings(max_examples=hypothesis_examples(400), deadline=None)
@given(DATAGRAMS, st.integers(-3, 2200), st.binary(max_size=40))
def test_wire_decoders_decode_or_raise_their_own_error_on_any_bytes(buf, n, tail):
    """decode(buf, n) returns a Datagram or raises MalformedDatagram, nothing else; parse_header (the
    loops' fast form) agrees with it, never raises (whatever ``n``: the old one raised struct.error when told
    of more bytes than the buffer holds) and reads only the ``n`` bytes received."""
    d = _decode_or_error(buf, n)
    head = wire.parse_header(buf, n)
    assert head == (None if d is None else (d.kind, d.session))
    if d is not None:
        assert d.version == wire.VERSION and len(d.fields) == N_FIELDS[d.kind]
    if 0 <= n <= len(buf):
        assert wire.parse_header(bytearray(buf[:n]) + tail, n) == head
        assert _decode_or_error(buf[:n] + tail, n) == d


@settings(max_examples=hypothesis_examples(300), deadline=None)
@given(KINDS, U64, U64, U64, U64, st.data())
def test_wire_round_trip_and_near_valid_datagrams(kind, session, a, b, c, data):
    """A well-formed datagram decodes to its fields; one cut short, or with its magic, version or type
    byte changed, raises MalformedDatagram naming why."""
    buf = _valid(kind, session, a, b, c)
    d = wire.decode(buf)
    assert (d.kind, d.session, d.fields) == (kind, session, (a, b, c, a, b, c)[:N_FIELDS[kind]])
    assert wire.parse_header(buf, len(buf)) == (kind, session)
    cut = data.draw(st.integers(0, wire.MIN_BYTES[kind] - 1))
    with pytest.raises(wire.MalformedDatagram):
        wire.decode(buf[:cut])
    assert wire.parse_header(buf, cut) is None
    where = data.draw(st.sampled_from([0, 1, 2, 3]))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != buf[where]))
    bad = bytearray(buf)
    bad[where] = value
    got = _decode_or_error(bad)
    if where < 3 or value not in wire.MIN_BYTES or len(bad) < wire.MIN_BYTES[value]:
        assert got is None and wire.parse_header(bad, len(bad)) is None
    else:  # another valid type long enough for it: decodes as that type
        assert got.kind == value
    if where == 2:
        with pytest.raises(wire.MalformedDatagram, match="wire version"):
            wire.decode(bad)
