"""The one definition of iperf3 in genet-testbed: its command lines, its readiness probe, its JSON report.

Everything that runs kernel TCP (BBR, Cubic, Reno, ...) through iperf3 uses this module: ``genet emulate
cc`` (:mod:`sender.emulate`, :mod:`sender.flows`), the emulation fidelity tests and benchmarks, and the
remote runs of ``genet deploy run`` (:mod:`deploy.schemes`). Runtime code (a remote host may run it):
standard library only.

* :func:`client_command` always names the congestion control (``-C NAME``): a host's default may be
  BBR (this machine's is). :func:`server_command` is a fresh one-shot server (``-s -1``) per run: a
  server can stay busy after its client ends while data drains.
* :func:`wait_listening` — readiness is the server's listening socket appearing (``ss`` on the
  endpoint's side), not a sleep.
* :func:`parse_report` turns ``iperf3 -J`` output into an :class:`Iperf3Report` (units in the field
  names) or raises :class:`Iperf3Error` naming the source and what is missing.
* :func:`run_over_link` — one run across a started link (client on the emulated side, one-shot server
  on the host side: data on the uplink, Pantheon's direction).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from foundation.errors import GenetRuntimeError

DEFAULT_PORT = 5201


class Iperf3Error(GenetRuntimeError):
    """iperf3 failed, or its JSON report is malformed or incomplete (the message names the source)."""


def whole_seconds(duration_s: float) -> int:
    """iperf3's ``-t`` takes whole seconds (it parses an integer); at least 1."""
    return max(1, int(round(float(duration_s))))


def client_command(server_address: str, congestion_control: str, duration_s: float, port: int = DEFAULT_PORT,
                   interval_s: float | None = None, json_report: bool = True) -> list[str]:
    """``iperf3 -c SERVER -p PORT -C NAME -t SECONDS [-i INTERVAL] [-J]`` (the algorithm always named)."""
    if not congestion_control or not str(congestion_control).strip():
        raise ValueError("iperf3 client: the congestion control must be named (a host's default may be BBR)")
    argv = ["iperf3", "-c", str(server_address), "-p", str(int(port)), "-C", str(congestion_control),
            "-t", str(whole_seconds(duration_s))]
    if interval_s is not None:
        argv += ["-i", f"{interval_s:g}"]
    return argv + (["-J"] if json_report else [])


def server_command(port: int = DEFAULT_PORT, bind_address: str | None = None, interval_s: float | None = None,
                   json_report: bool = False) -> list[str]:
    """A one-shot server: ``iperf3 -s -1 -p PORT [-B ADDRESS] [-i INTERVAL] [-J]``."""
    argv = ["iperf3", "-s", "-1", "-p", str(int(port))]
    if bind_address:
        argv += ["-B", str(bind_address)]
    if interval_s is not None:
        argv += ["-i", f"{interval_s:g}"]
    return argv + (["-J"] if json_report else [])


def wait_listening(endpoint, port: int, address: str | None = None, timeout_s: float = 5.0,
                   poll_s: float = 0.02) -> None:
    """Until a TCP socket listens on ``port`` (on ``address`` if given) on ``endpoint``'s side, polling
    ``ss`` there (``endpoint.run(argv, timeout_s=...)``); :class:`Iperf3Error` after ``timeout_s``."""
    local = f"{address}:{int(port)}" if address else f":{int(port)}"
    deadline = time.monotonic() + timeout_s
    while True:
        out = endpoint.run(["ss", "-Hltn", f"sport = :{int(port)}"], timeout_s=5).stdout
        if address is None and out.strip():
            return
        if address is not None and any(len(f) > 3 and f[3].replace("[", "").replace("]", "").endswith(local)
                                       for f in (line.split() for line in out.splitlines())):
            return
        if time.monotonic() >= deadline:
            raise Iperf3Error(f"iperf3 server on {local} did not start listening within {timeout_s:g} s")
        time.sleep(poll_s)


@dataclass(frozen=True)
class Iperf3Interval:
    """One report interval: its length, the bits/s of all streams, the first stream's smoothed RTT
    (sender side only: ``None`` in a server's report)."""

    start_s: float
    duration_s: float
    throughput_mbps: float
    rtt_ms: float | None


@dataclass(frozen=True)
class Iperf3Report:
    """iperf3's own view of one test (``-J``), client or server side.

    throughput_mbps: receiver-side goodput of the whole test (``end.sum_received``); sent_bytes,
    retransmits: sender totals (``end.sum_sent``; retransmits is 0 in a server's report);
    duration_s: the receiver's test span; rtt_mean_ms / rtt_min_ms / rtt_max_ms: the kernel's smoothed RTT
    of the first stream's sender socket (``None`` when the report has no sender RTT, e.g. a server's);
    mss_bytes: the default MSS iperf3 reports; congestion_control: what the sender used
    (``end.sender_tcp_congestion``); intervals: the per-interval figures; server_finished: for
    :func:`run_over_link`, whether the one-shot server ended after its client (None when unknown).
    """

    throughput_mbps: float
    sent_bytes: int
    retransmits: int
    duration_s: float
    rtt_mean_ms: float | None
    rtt_min_ms: float | None
    rtt_max_ms: float | None
    mss_bytes: int
    congestion_control: str | None
    intervals: tuple[Iperf3Interval, ...]
    server_finished: bool | None = None

    def interval_rtts_ms(self) -> list[float]:
        return [iv.rtt_ms for iv in self.intervals if iv.rtt_ms is not None]

    def to_row(self, prefix: str = "iperf3_") -> dict:
        """The scalar fields with ``prefix`` (what a result row records), without the intervals."""
        d = asdict(self)
        d.pop("intervals")
        return {f"{prefix}{k}": v for k, v in d.items()}


def parse_report(data, source: str = "iperf3 -J output") -> Iperf3Report:
    """An :class:`Iperf3Report` from iperf3's JSON (text, bytes or an already-decoded dict).

    Raises :class:`Iperf3Error` naming ``source``: not JSON (with the byte count: a truncated log?),
    iperf3's own ``error``, or a missing field (its JSON path)."""
    if isinstance(data, (str, bytes, bytearray)):
        text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
        if not text.strip():
            raise Iperf3Error(f"{source}: empty (iperf3 printed no JSON report)")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise Iperf3Error(f"{source}: not complete JSON ({exc}; {len(text)} bytes; truncated?)") from None
    if not isinstance(data, dict):
        raise Iperf3Error(f"{source}: not a JSON object (got {type(data).__name__})")
    if data.get("error"):
        raise Iperf3Error(f"{source}: iperf3 reported an error: {data['error']}")
    where = "end"
    try:
        end = data["end"]
        where = "end.sum_received"
        received = end["sum_received"]
        throughput_bps = float(received["bits_per_second"])
        span_s = float(received["seconds"])
        where = "end.sum_sent"
        sent = end["sum_sent"]
        sent_bytes = int(sent["bytes"])
        retransmits = int(sent.get("retransmits", 0) or 0)
        where = "end.streams"
        streams = end.get("streams") or [{}]
        snd = streams[0].get("sender", {}) if isinstance(streams[0], dict) else {}
        where = "start"
        mss = int(data.get("start", {}).get("tcp_mss_default") or 1448)
        where = "intervals"
        intervals = []
        for iv in data.get("intervals", []):
            s = iv["sum"]
            st = iv.get("streams") or [{}]
            rtt = st[0].get("rtt") if isinstance(st[0], dict) else None
            intervals.append(Iperf3Interval(float(s["start"]), float(s["seconds"]), float(s["bits_per_second"]) / 1e6,
                                            float(rtt) / 1000.0 if rtt else None))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise Iperf3Error(f"{source}: incomplete iperf3 report: {where} lacks {exc}") from None

    def ms(key):
        v = snd.get(key)
        return float(v) / 1000.0 if v else None

    return Iperf3Report(throughput_mbps=throughput_bps / 1e6, sent_bytes=sent_bytes, retransmits=retransmits,
                        duration_s=span_s, rtt_mean_ms=ms("mean_rtt"), rtt_min_ms=ms("min_rtt"),
                        rtt_max_ms=ms("max_rtt"), mss_bytes=mss, congestion_control=end.get("sender_tcp_congestion"),
                        intervals=tuple(intervals))


def read_report(path: str | Path) -> Iperf3Report:
    """:func:`parse_report` of a file (errors name it)."""
    p = Path(path)
    try:
        text = p.read_text(errors="replace")
    except FileNotFoundError:
        raise Iperf3Error(f"{p}: missing") from None
    return parse_report(text, str(p))


def run_over_link(link, congestion_control: str, duration_s: float, port: int = DEFAULT_PORT,
                  json_path: str | Path | None = None, server_wait_s: float = 10.0) -> Iperf3Report:
    """One kernel-TCP run over ``link`` (a started link with ``host`` and ``emulated`` endpoints): a fresh
    one-shot server on the host side, the client (``-C congestion_control``) on the emulated side.
    ``json_path``: also keep the client's report there. Raises :class:`Iperf3Error` when iperf3 fails."""
    server = link.host.popen(server_command(port, link.host.address), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    finished = False
    try:
        wait_listening(link.host, port, link.host.address)
        secs = whole_seconds(duration_s)
        res = link.emulated.run(client_command(link.host.address, congestion_control, secs, port),
                                timeout_s=secs + 30)
        try:
            server.wait(timeout=server_wait_s)
            finished = True
        except subprocess.TimeoutExpired:
            pass
        if json_path:
            Path(json_path).write_text(res.stdout)
        source = f"iperf3 -C {congestion_control} (exit {res.returncode})"
        try:
            report = parse_report(res.stdout, source)
        except Iperf3Error as exc:
            stderr = (res.stderr or "").strip()[-300:]
            raise Iperf3Error(f"{exc}{': ' + stderr if stderr else ''}") from None
        if res.returncode != 0:
            raise Iperf3Error(f"{source}: {(res.stderr or '').strip()[-300:]}")
        return Iperf3Report(**{**report.__dict__, "server_finished": finished})
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
