"""The browser page's measurement events -> the per-chunk log and the Table-6 summary of the Python player.

Events (player/assets/genet-player.js): ``config``, ``stream`` (the ladder), ``segment`` (one per completed
media segment: ``chunk_index``, ``quality``, ``bytes``, ``request_ms``, ``first_byte_ms``, ``finish_ms`` (epoch
ms), ``buffer_at_request_s``, ``buffer_s`` after it), ``decision`` (our rule's ABR answer), ``stall_start`` /
``stall_end`` (dash.js BUFFER_EMPTY / BUFFER_LOADED after playback started; a ``stall_playhead_stopped``
inside — the media element's 'waiting', its data ran dry — moves the start there: dash.js declares
BUFFER_EMPTY at 0.3 s left while the element still plays it), ``init_segment``, ``quality_requested``,
``quality_rendered``, ``playing``, ``frames`` (dropped/total frames), ``ended``, ``error``.

Per chunk k, as the Python player (player/client.py) and the simulator: ``download_ms`` = last byte - request
(one RTT included); ``rebuffer_s`` = stall time inside (finish of chunk k-1, finish of chunk k] — the stall
this chunk's download caused, the way Pensieve's server differences the cumulative ``RebufferTime`` per POST.
Difference from the Python player: dash.js starts playback once the first chunk is buffered and does not count
that start-up as a stall; the summary gives it as ``startup_delay_s`` (page load to first frame) and
``first_chunk_s`` (chunk 0's request to last byte, what the Python player books as chunk 0's stall), and
``summarize(..., startup_as_stall=True)`` books ``first_chunk_s`` on chunk 0 for a like-for-like comparison.
The QoE comes from the one QoE module (genet/abr/qoe.py). Standard library and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE, SMOOTH_PENALTY, QoeAccumulator


@dataclass
class BrowserRun:
    """One page session turned into records: ``chunks`` (Python-player chunk records), ``stalls``
    ([start_s, end_s] from session start), ``summary`` (VideoQoe fields + browser figures)."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    stalls: list[tuple[float, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _stall_intervals(events: Sequence[dict], end_ms: float) -> list[tuple[float, float]]:
    out, start = [], None
    for ev in events:
        if ev["type"] == "stall_start" and start is None:
            start = float(ev["t_ms"])
        elif ev["type"] == "stall_playhead_stopped" and start is not None:
            start = float(ev["t_ms"])  # the element ran dry after dash.js's BUFFER_EMPTY: the freeze starts here
        elif ev["type"] == "stall_end" and start is not None:
            out.append((start, float(ev["t_ms"])))
            start = None
    if start is not None:
        out.append((start, max(end_ms, start)))
    return out


def _overlap_ms(intervals, lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in intervals)


def summarize(events: Sequence[dict], bitrates_kbps: Sequence[float], first_quality: int = 1,
              rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE, smooth_penalty: float = SMOOTH_PENALTY,
              startup_as_stall: bool = False) -> BrowserRun:
    """The per-chunk records and the summary of one page session (events in any order)."""
    events = sorted(events, key=lambda e: e.get("seq", 0))
    if not events:
        return BrowserRun(summary={"chunks": 0})
    t0 = float(events[0]["t_ms"])
    end_ms = float(events[-1]["t_ms"])
    segs: dict[int, dict] = {}
    for ev in events:
        if ev["type"] == "segment" and isinstance(ev.get("chunk_index"), int):
            segs[ev["chunk_index"]] = ev  # a re-downloaded (abandoned) chunk: the last completion counts
    stalls = _stall_intervals(events, end_ms)
    acc = QoeAccumulator(rebuffer_penalty, smooth_penalty)
    chunks: list[dict[str, Any]] = []
    last_q = int(first_quality)
    prev_finish = float("-inf")
    order = sorted(segs)
    first_chunk_s = 0.0
    for n, k in enumerate(order):
        ev = segs[k]
        q = int(ev["quality"])
        req, fin = float(ev["request_ms"]), float(ev["finish_ms"])
        hi = fin if n + 1 < len(order) else float("inf")  # stalls after the last chunk: booked on it
        rebuffer = _overlap_ms(stalls, prev_finish, hi) / 1000.0
        if n == 0:
            first_chunk_s = (fin - req) / 1000.0
            if startup_as_stall:
                rebuffer += first_chunk_s
        b = float(bitrates_kbps[q])
        chunk_q = float(acc.add(b, float(bitrates_kbps[last_q]), rebuffer)[0])
        fb = ev.get("first_byte_ms")
        chunks.append({
            "type": "chunk", "chunk_index": k, "quality": q, "bitrate_kbps": int(round(b)),
            "bytes": int(ev.get("bytes") or 0), "t_request_s": (req - t0) / 1000.0,
            "t_first_byte_s": (float(fb) - t0) / 1000.0 if fb is not None else None,
            "t_last_byte_s": (fin - t0) / 1000.0, "download_ms": fin - req,
            "buffer_before_s": ev.get("buffer_at_request_s"), "buffer_after_s": ev.get("buffer_s"),
            "rebuffer_s": rebuffer, "qoe": chunk_q, "epoch_request_s": req / 1000.0,
            "representation": ev.get("representation")})
        last_q = q
        prev_finish = fin
    v = acc.result(0)
    by_type: dict[str, list[dict]] = {}
    for ev in events:
        by_type.setdefault(ev["type"], []).append(ev)
    playing = by_type.get("playing", [])
    frames = [e for e in by_type.get("frames", []) if e.get("dropped_frames") is not None]
    last_frames = frames[-1] if frames else {}
    rendered = [int(e["quality"]) for e in by_type.get("quality_rendered", [])]
    summary = {
        **v.as_dict(),
        "stalls": len(stalls), "stall_s": sum(b - a for a, b in stalls) / 1000.0,
        "startup_delay_s": (float(playing[0]["t_ms"]) - t0) / 1000.0 if playing else None,
        "first_chunk_s": first_chunk_s, "startup_as_stall": bool(startup_as_stall),
        "decisions": len(by_type.get("decision", [])), "abandoned": len(by_type.get("abandoned", [])),
        "quality_changes_requested": len(by_type.get("quality_requested", [])),
        "quality_changes_rendered": len(rendered),
        "dropped_frames": last_frames.get("dropped_frames"), "total_frames": last_frames.get("total_frames"),
        "ended": bool(by_type.get("ended")), "errors": [e.get("message") for e in by_type.get("error", [])],
        # the media element's own 'waiting' events (decoder or data starvation; not dash.js stalls)
        "element_waiting_events": len(by_type.get("waiting", [])),
    }
    return BrowserRun(chunks, [((a - t0) / 1000.0, (b - t0) / 1000.0) for a, b in stalls], summary)


__all__ = ["BrowserRun", "summarize"]
