"""The headless player: fetches the MPD and the chunk table, then each chunk over HTTP at the policy's quality.

Playback model — the simulator's (genet/abr/core.py, genet-simulators.md §1.3), in wall-clock time:

* the buffer drains in real time from the first request on; a chunk that completes ``elapsed`` seconds
  after the previous one (or after the first request) adds ``rebuffer = max(elapsed - buffer, 0)`` of
  stall and leaves ``buffer = max(buffer - elapsed, 0) + chunk_length_s``. As in the simulator, the
  start-up delay (the first chunk's download) counts as stall; dash.js instead starts playback after
  ``minBufferTime`` and does not count it;
* above ``max_buffer_s`` (60 s, the simulator's and Pensieve's cap) the player waits
  ``ceil(excess / 0.5 s) * 0.5 s`` before the next request, as the simulator sleeps; the buffer it
  reports is the level after that wait;
* the first chunk is fetched at quality 1 (the Pensieve convention's first quality); the policy chooses
  every later one, either in the player (default) or over the server's ABR endpoint (``abr_server``),
  from the same :class:`~genet.abr.observations.ChunkMeasurement` (player/abr.py);
* a chunk's ``download_ms`` (the observation's delay) runs from sending the request to its last byte, so
  it includes one RTT like the simulator's delay (which adds the trace's RTT to the transfer time).
  The policy's decision time counts as playback time (it is wall-clock).

Reliability: a failed request (connection refused/reset, timeout, 5xx, short body) is retried with
exponential backoff (0.25 s doubling to 2 s); the waiting drains the buffer, so it shows up as stall. If
the server stays unreachable for ``give_up_s`` (30 s) the run ends with ``status: "gave_up"`` and the
reason in the log.

The log (JSON lines, each line flushed and fsynced, so a killed run leaves a readable prefix)::

    {"type": "session", "url", "policy", "n_chunks", "chunk_length_s", "bitrates_kbps", "started_utc", ...}
    {"type": "chunk", "chunk_index", "quality", "bitrate_kbps", "bytes", "t_request_s", "t_first_byte_s",
     "t_last_byte_s", "download_ms", "buffer_before_s", "buffer_after_s", "rebuffer_s", "sleep_s",
     "retries", "retry_wait_s", "qoe", "epoch_request_s"}          # one per chunk; t_*_s from session start
    {"type": "summary", "status": "complete" | "gave_up" | "error", "reason", "qoe", "qoe_per_chunk",
     "bitrate_mbps", "rebuffer_s", "bitrate_change_mbps", "chunks", "wall_s"}

The summary's fields come from the one QoE module (genet/abr/qoe.py). Imports only numpy, onnxruntime
(for ``.onnx`` policies) and the standard library (``http.client``).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY, QoeAccumulator
from genet.abr.video import TABLE_NAME, Video
from foundation.errors import GenetRuntimeError
from player.abr import END_OF_VIDEO, FIRST_QUALITY, AbrDecider
from player.content import MPD_NAME, segment_path

#: The simulator's buffer cap (EnvParams.max_buffer_s) and drain quantum (SimConventions.drain_quantum_ms).
MAX_BUFFER_S = 60.0
DRAIN_QUANTUM_S = 0.5
READ_BYTES = 256 * 1024


class PlayerGaveUp(GenetRuntimeError):
    """The server stayed unreachable longer than the player's limit."""


@dataclass
class PlayerConfig:
    """url: server root (e.g. "http://10.0.0.1:8000/")
    policy: registry name or .onnx path ("bba")
    abr_server: ask the server's ABR endpoint instead of running the policy here (False)
    session: session id sent to the ABR endpoint (None: a random one)
    n_chunks: chunks to play (None: the whole video)
    max_buffer_s: buffer cap, s (60)
    first_quality: quality of the first chunk (1)
    rebuffer_penalty, smooth_penalty: QoE weights (4.3, 1.0)
    request_timeout_s: socket timeout of one request, s (10)
    give_up_s: end the run when the server is unreachable this long, s (30)
    retry_initial_s, retry_max_s: backoff between retries, s (0.25 doubling up to 2)
    first_chunk_at_epoch_s: fetch the MPD and set up at once, then request the first chunk at this time
        (epoch s; None: at once) — to start two players at the same point of a trace
    request_not_before_s: chunk k is requested no earlier than ``request_not_before_s[k]`` s after chunk 0's
        request (None: as soon as the player is ready) — to replay another player's request times (the
        browser comparison: dash.js waits 0.1-0.8 s before some requests; the buffer drains meanwhile)
    """

    url: str
    policy: str = "bba"
    abr_server: bool = False
    session: str | None = None
    n_chunks: int | None = None
    max_buffer_s: float = MAX_BUFFER_S
    first_quality: int = FIRST_QUALITY
    rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE
    smooth_penalty: float = SMOOTH_PENALTY
    request_timeout_s: float = 10.0
    give_up_s: float = 30.0
    retry_initial_s: float = 0.25
    retry_max_s: float = 2.0
    first_chunk_at_epoch_s: float | None = None
    request_not_before_s: list[float] | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Fetch:
    status: int
    body: bytes | None
    n_bytes: int
    t_request: float
    t_first_byte: float
    t_last_byte: float
    retries: int
    retry_wait_s: float


class _Http:
    """One keep-alive HTTP/1.1 connection with retries (stdlib http.client)."""

    def __init__(self, url: str, timeout_s: float, cfg: PlayerConfig, log) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise GenetRuntimeError(f"--url {url!r}: expected http://HOST:PORT/")
        self.host, self.port = u.hostname, u.port or 80
        self.base = u.path.rstrip("/")
        self.timeout_s = timeout_s
        self.cfg = cfg
        self.log = log
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: bytes | None = None, keep_body: bool = True,
                expect_len: int | None = None, headers: dict | None = None) -> Fetch:
        retries, waited = 0, 0.0
        first_fail = None
        delay = self.cfg.retry_initial_s
        t_request = time.monotonic()
        while True:
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
                t_try = time.monotonic()
                self.conn.request(method, f"{self.base}/{path.lstrip('/')}", body=body, headers=headers or {})
                resp = self.conn.getresponse()
                t_first = time.monotonic()
                n, parts = 0, []
                while True:
                    data = resp.read(READ_BYTES)
                    if not data:
                        break
                    n += len(data)
                    if keep_body:
                        parts.append(data)
                t_last = time.monotonic()
                length = resp.getheader("Content-Length")
                if resp.status >= 500:
                    raise http.client.HTTPException(f"HTTP {resp.status}")
                if length is not None and int(length) != n:
                    raise http.client.IncompleteRead(b"", int(length) - n)
                if expect_len is not None and resp.status == 200 and n != expect_len:
                    raise http.client.HTTPException(f"{path}: {n} bytes, the table says {expect_len}")
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return Fetch(resp.status, b"".join(parts) if keep_body else None, n, t_request if retries else t_try,
                             t_first, t_last, retries, waited)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                now = time.monotonic()
                first_fail = now if first_fail is None else first_fail
                if now - first_fail + delay > self.cfg.give_up_s:
                    raise PlayerGaveUp(f"server http://{self.host}:{self.port}/ unreachable for "
                                       f"{now - first_fail:.1f} s (limit {self.cfg.give_up_s:g} s): "
                                       f"{type(exc).__name__}: {exc}") from None
                self.log({"type": "retry", "path": path, "error": f"{type(exc).__name__}: {exc}",
                          "wait_s": delay})
                time.sleep(delay)
                waited += delay
                retries += 1
                delay = min(delay * 2, self.cfg.retry_max_s)


class _Log:
    """Crash-safe JSON-lines writer (line buffered, fsync per record)."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.fh = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(path, "w", encoding="utf-8")

    def __call__(self, record: dict[str, Any]) -> None:
        if self.fh is None:
            return
        self.fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


@dataclass
class PlayResult:
    """status: "complete", "gave_up" or "error"; reason: why it ended early ("");
    qoe fields: genet/abr/qoe.py VideoQoe; chunks: the per-chunk records"""

    status: str
    reason: str
    qoe: float
    qoe_per_chunk: float
    bitrate_mbps: float
    rebuffer_s: float
    bitrate_change_mbps: float
    n_chunks: int
    wall_s: float
    chunks: list = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("chunks")
        return d


def _video_from_table(doc: Any, where: str) -> Video:
    try:
        return Video(tuple(int(b) for b in doc["bitrates_kbps"]),
                     [[float(x) for x in row] for row in doc["chunk_sizes_bytes"]],
                     float(doc.get("chunk_length_s", 4.0)), where)
    except (KeyError, TypeError, ValueError) as exc:
        raise GenetRuntimeError(f"{where}: not a chunk-size table ({exc})") from None


def play(cfg: PlayerConfig, log_path: str | os.PathLike | None = None) -> PlayResult:
    """Play one video from ``cfg.url``; writes the JSON-lines log; returns the result."""
    log = _Log(log_path)
    t0 = time.monotonic()
    acc = QoeAccumulator(cfg.rebuffer_penalty, cfg.smooth_penalty)
    records: list[dict] = []
    http_ = _Http(cfg.url, cfg.request_timeout_s, cfg, log)
    status, reason = "complete", ""
    try:
        mpd = http_.request("GET", MPD_NAME)
        table = http_.request("GET", TABLE_NAME)
        if mpd.status != 200 or table.status != 200:
            raise GenetRuntimeError(f"{cfg.url}: {MPD_NAME} -> HTTP {mpd.status}, {TABLE_NAME} -> HTTP {table.status}")
        try:
            video = _video_from_table(json.loads(table.body), f"{cfg.url}{TABLE_NAME}")
        except ValueError:
            raise GenetRuntimeError(f"{cfg.url}{TABLE_NAME}: not JSON") from None
        n_chunks = video.n_source_chunks if cfg.n_chunks is None else min(int(cfg.n_chunks), video.n_source_chunks)
        if n_chunks < video.n_source_chunks:
            video = Video(video.bitrates_kbps, video.chunk_sizes_bytes[:, :n_chunks], video.chunk_length_s,
                          video.source)
        decider = None if cfg.abr_server else AbrDecider(cfg.policy, video, cfg.rebuffer_penalty, cfg.smooth_penalty)
        session = cfg.session or f"p{os.getpid()}-{int(time.time() * 1000)}"
        bitrates = video.bitrates_kbps
        log({"type": "session", "url": cfg.url, "policy": "server" if cfg.abr_server else cfg.policy,
             "abr_server": cfg.abr_server, "session": session, "n_chunks": n_chunks,
             "chunk_length_s": video.chunk_length_s, "bitrates_kbps": list(bitrates),
             "max_buffer_s": cfg.max_buffer_s, "first_quality": cfg.first_quality,
             "rebuffer_penalty": cfg.rebuffer_penalty, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                   time.gmtime()), **cfg.extra})
        q = int(cfg.first_quality)
        last_q = q  # the first chunk's change is against the first quality (genet/abr/qoe.py)
        if cfg.first_chunk_at_epoch_s is not None:
            time.sleep(max(cfg.first_chunk_at_epoch_s - time.time(), 0.0))
        buffer_ref, t_ref = 0.0, time.monotonic()
        total_rebuffer_s = 0.0
        first_epoch_req = None
        for k in range(n_chunks):
            size = int(video.chunk_sizes_bytes[q, k])
            if first_epoch_req is not None and cfg.request_not_before_s and k < len(cfg.request_not_before_s):
                time.sleep(max(first_epoch_req + cfg.request_not_before_s[k] - time.time(), 0.0))
            t_before = time.monotonic()
            buffer_before = max(buffer_ref - (t_before - t_ref), 0.0)
            epoch_req = time.time()
            first_epoch_req = epoch_req if first_epoch_req is None else first_epoch_req
            f = http_.request("GET", segment_path(q, k, video.n_levels), keep_body=False, expect_len=size)
            if f.status != 200:
                raise GenetRuntimeError(f"{cfg.url}{segment_path(q, k, video.n_levels)}: HTTP {f.status}")
            elapsed = f.t_last_byte - t_ref
            rebuffer = max(elapsed - buffer_ref, 0.0)
            buffer = max(buffer_ref - elapsed, 0.0) + video.chunk_length_s
            sleep_s = 0.0
            if buffer > cfg.max_buffer_s:
                sleep_s = math.ceil((buffer - cfg.max_buffer_s) / DRAIN_QUANTUM_S) * DRAIN_QUANTUM_S
            buffer_ref, t_ref = buffer, f.t_last_byte
            buffer_after = buffer - sleep_s
            total_rebuffer_s += rebuffer
            download_ms = (f.t_last_byte - t_before) * 1000.0
            chunk_q = float(acc.add(float(bitrates[q]), float(bitrates[last_q]), rebuffer)[0])
            rec = {"type": "chunk", "chunk_index": k, "quality": q, "bitrate_kbps": int(bitrates[q]),
                   "bytes": f.n_bytes, "t_request_s": t_before - t0, "t_first_byte_s": f.t_first_byte - t0,
                   "t_last_byte_s": f.t_last_byte - t0, "download_ms": download_ms,
                   "buffer_before_s": buffer_before, "buffer_after_s": buffer_after, "rebuffer_s": rebuffer,
                   "sleep_s": sleep_s, "retries": f.retries, "retry_wait_s": f.retry_wait_s, "qoe": chunk_q,
                   "epoch_request_s": epoch_req}
            log(rec)
            records.append(rec)
            last_q = q
            if k + 1 >= n_chunks:
                break
            if decider is not None:
                m = decider.measurement(q, buffer_after, f.n_bytes, download_ms, k, rebuffer)
                q = decider.decide(m)
            else:
                body = {"lastquality": q, "buffer": buffer_after, "RebufferTime": total_rebuffer_s * 1000.0,
                        "lastChunkStartTime": epoch_req * 1000.0,
                        "lastChunkFinishTime": epoch_req * 1000.0 + download_ms, "lastChunkSize": f.n_bytes,
                        "lastRequest": k}
                r = http_.request("POST", f"abr?session={urllib.parse.quote(session)}",
                                  body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
                text = (r.body or b"").decode().strip()
                if r.status != 200 or text == END_OF_VIDEO:
                    raise GenetRuntimeError(f"ABR endpoint answered HTTP {r.status}: {text[:200]!r}")
                q = int(text)
                if not 0 <= q < video.n_levels:
                    raise GenetRuntimeError(f"ABR endpoint answered quality {q} outside [0, {video.n_levels - 1}]")
            wait = sleep_s - (time.monotonic() - t_ref)
            if wait > 0:
                time.sleep(wait)
    except PlayerGaveUp as exc:
        status, reason = "gave_up", str(exc)
    except (GenetRuntimeError, OSError, ValueError) as exc:
        status, reason = "error", f"{type(exc).__name__}: {exc}"
    finally:
        http_.close()
    v = acc.result(0)
    result = PlayResult(status, reason, v.qoe, v.qoe_per_chunk, v.bitrate_mbps, v.rebuffer_s,
                        v.bitrate_change_mbps, v.chunks, time.monotonic() - t0, records)
    log({"type": "summary", **result.summary()})
    log.close()
    return result


def read_log(path: str | os.PathLike) -> dict[str, Any]:
    """A player log: {"session": {...} | None, "chunks": [...], "summary": {...} | None} (a cut-short last
    line, left by a killed run, is ignored)."""
    out: dict[str, Any] = {"session": None, "chunks": [], "summary": None, "retries": 0}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            kind = rec.get("type")
            if kind == "chunk":
                out["chunks"].append(rec)
            elif kind == "retry":
                out["retries"] += 1
            elif kind in ("session", "summary"):
                out[kind] = rec
    return out


__all__ = ["PlayerConfig", "PlayResult", "PlayerGaveUp", "play", "read_log", "MAX_BUFFER_S"]
