"""The browser player's routes: a Flask Blueprint the video server registers (``/player/...``).

* ``GET /player/`` — the player page (player/assets/player.html): dash.js 5.2.1 from the project's own
  asset folder (``player/assets/vendor/dashjs-5.2.1/``, installed pinned by scripts/provision.sh; never a
  CDN) plus ``genet-player.js`` (our ABR rule and the measurement reporting). Query parameters: see
  genet-player.js (``session``, ``abr``, ``first_quality``, ``initial_kbps``, ``buffer_s``);
* ``GET /player/<asset>`` — the page's scripts (only files under player/assets, regular files);
* ``POST /player/report?session=ID`` — the page's measurements: a JSON array of events (each an object with
  ``seq``, ``type``, ``t_ms``); kept per session in memory and, with ``report_dir``, appended to
  ``report_dir/<session>.events.jsonl`` (one event per line, flushed), so a crashed browser leaves them;
* ``GET /player/report/<session>`` — ``{"session", "events": [...]}`` in ``seq`` order.

Memory: events are kept as their compact JSON text, counted in bytes (text plus
:data:`EVENT_OVERHEAD_BYTES`). A session holds at most :data:`MAX_EVENTS_PER_SESSION` events and
:data:`MAX_EVENT_BYTES_PER_SESSION` bytes: a batch that would pass either is refused whole with 413 and a
one-line reason (nothing of it is kept or written; what the session already holds stays, so its measurement
record is never cut at the front). All sessions together hold at most :data:`MAX_EVENT_BYTES_TOTAL` bytes and
:data:`MAX_SESSIONS` sessions: beyond, the sessions that posted least recently are dropped from memory (their
``report_dir`` files stay). Bodies: at most ``MAX_REQUEST_BYTES`` (player/request_limits.py; 413 beyond) and
JSON as ``parse_json_body`` accepts it (400 otherwise); ``seq`` an integer in [0, 2**53], ``type`` a string of
at most :data:`MAX_EVENT_TYPE_CHARS` characters.

Session ids: 1-64 characters of ``[A-Za-z0-9_.-]`` (anything else is 400: they name files).
Imports only flask, the standard library and foundation.errors.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from foundation.errors import BadInputError
from player.request_limits import (MAX_REQUEST_BYTES, RequestBodyError, error_response,
                                   parse_json_body)

#: The dash.js release the page loads (scripts/provision.sh installs this one, pinned by SHA-256).
DASHJS_VERSION = "5.2.1"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DASHJS_FILE = ASSETS_DIR / "vendor" / f"dashjs-{DASHJS_VERSION}" / "dash.all.min.js"
URL_PREFIX = "/player"
SESSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: Most sessions kept in memory (the least recently posting one is dropped beyond).
MAX_SESSIONS = 256
#: Most events one session keeps (a batch that would pass it is refused with 413).
MAX_EVENTS_PER_SESSION = 200_000
#: Most bytes of events one session keeps (JSON text plus EVENT_OVERHEAD_BYTES each; 413 beyond).
MAX_EVENT_BYTES_PER_SESSION = 16 * 1024 * 1024
#: Most bytes of events all sessions keep together (least recently posting sessions dropped beyond).
MAX_EVENT_BYTES_TOTAL = 64 * 1024 * 1024
#: What Python spends on one kept event beside its JSON text (a tuple, the seq int, the str header), bytes.
EVENT_OVERHEAD_BYTES = 128
#: Longest event ``type``, characters.
MAX_EVENT_TYPE_CHARS = 64
#: Largest event ``seq`` (JavaScript's exact integers).
MAX_EVENT_SEQ = 2**53


def dashjs_missing_reason() -> str | None:
    """Why the page cannot load dash.js here (None when it can)."""
    if not DASHJS_FILE.is_file():
        return (f"dash.js {DASHJS_VERSION} is not installed at {DASHJS_FILE.relative_to(ASSETS_DIR.parent.parent)} "
                "(scripts/provision.sh installs it with npm)")
    return None


class ReportLimitError(BadInputError):
    """A report batch the session's limits cannot take (413)."""


class ReportStore:
    """The measurement events the pages posted, per session (thread-safe), bounded in count and bytes (see the
    module docstring)."""

    def __init__(self, report_dir: str | os.PathLike | None = None) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[tuple[int, str]]] = {}  # session -> [(seq, compact JSON text)]
        self._bytes: dict[str, int] = {}  # session -> bytes it holds
        self.total_bytes = 0
        self.set_dir(report_dir)

    def set_dir(self, report_dir: str | os.PathLike | None) -> None:
        """Also append every session's events to ``report_dir/<session>.events.jsonl`` (None: memory only)."""
        self.report_dir = Path(report_dir) if report_dir is not None else None
        if self.report_dir is not None:
            self.report_dir.mkdir(parents=True, exist_ok=True)

    def _drop(self, session: str) -> None:
        self._events.pop(session, None)
        self.total_bytes -= self._bytes.pop(session, 0)

    def add(self, session: str, events: list[dict[str, Any]]) -> int:
        """Keep (and write) ``events`` of ``session``; returns how many. Raises :class:`ReportLimitError`
        (nothing kept) when the session's count or byte limit cannot take the whole batch."""
        lines = [json.dumps(ev, separators=(",", ":"), allow_nan=False) for ev in events]
        size = sum(len(x.encode("utf-8")) + EVENT_OVERHEAD_BYTES for x in lines)
        with self._lock:
            held, held_bytes = len(self._events.get(session, ())), self._bytes.get(session, 0)
            if held + len(lines) > MAX_EVENTS_PER_SESSION or held_bytes + size > MAX_EVENT_BYTES_PER_SESSION:
                raise ReportLimitError(
                    f"report: session {session!r} holds {held} events ({held_bytes} bytes); {len(lines)} more "
                    f"({size} bytes) would pass its limit of {MAX_EVENTS_PER_SESSION} events / "
                    f"{MAX_EVENT_BYTES_PER_SESSION} bytes: batch refused")
            if session in self._events:  # most recently posting last: the order of eviction
                self._events[session] = self._events.pop(session)
                self._bytes[session] = self._bytes.pop(session)
            else:
                while self._events and len(self._events) >= MAX_SESSIONS:
                    self._drop(next(iter(self._events)))
                self._events[session], self._bytes[session] = [], 0
            while self.total_bytes + size > MAX_EVENT_BYTES_TOTAL and len(self._events) > 1:
                self._drop(next(iter(self._events)))  # never this session: it is the last one
            self._events[session].extend((int(ev["seq"]), line) for ev, line in zip(events, lines))
            self._bytes[session] += size
            self.total_bytes += size
            if self.report_dir is not None and lines:
                with open(self.report_dir / f"{session}.events.jsonl", "a", encoding="utf-8") as fh:
                    fh.write("".join(line + "\n" for line in lines))
            return len(lines)

    def _sorted_lines(self, session: str) -> list[str]:
        with self._lock:
            kept = list(self._events.get(session, ()))
        return [line for _, line in sorted(kept, key=lambda e: e[0])]

    def get(self, session: str) -> list[dict[str, Any]]:
        """The session's events in ``seq`` order."""
        return [json.loads(line) for line in self._sorted_lines(session)]

    def get_json(self, session: str) -> str:
        """``{"session": ..., "events": [...]}`` as JSON text (the events' kept text, not re-encoded)."""
        return f'{{"session":{json.dumps(session)},"events":[{",".join(self._sorted_lines(session))}]}}'


def browser_blueprint(report_dir: str | os.PathLike | None = None):
    """The Blueprint serving the player page, its scripts and the measurement endpoint
    (``app.register_blueprint(browser_blueprint())``)."""
    from flask import Blueprint, Response, abort, request, send_file

    bp = Blueprint("genet_browser", __name__, url_prefix=URL_PREFIX)
    store = ReportStore(report_dir)
    bp.record_once(lambda state: state.app.config.__setitem__("genet.browser_reports", store))
    page = (ASSETS_DIR / "player.html").read_text(encoding="utf-8").replace(
        "__DASHJS_DIR__", f"dashjs-{DASHJS_VERSION}")

    @bp.get("/")
    def index():
        return Response(page, mimetype="text/html")

    @bp.post("/report")
    def report():
        request.max_content_length = MAX_REQUEST_BYTES  # 413 beyond
        sid = request.args.get("session", "")
        if not SESSION_RE.fullmatch(sid):
            return error_response(f"report: session id {sid[:80]!r} must be 1-64 characters of "
                                  "[A-Za-z0-9_.-]")
        try:
            body = parse_json_body(request.get_data(cache=False), "report")
        except RequestBodyError as exc:
            return error_response(str(exc))
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list) or not all(
                isinstance(e, dict) and isinstance(e.get("type"), str) and len(e["type"]) <= MAX_EVENT_TYPE_CHARS
                and isinstance(e.get("seq"), int) and not isinstance(e["seq"], bool)
                and 0 <= e["seq"] <= MAX_EVENT_SEQ for e in body):
            return error_response("report: body must be a JSON array of events, each with 'seq' (an integer "
                                  f"in [0, 2**53]) and 'type' (a string of at most {MAX_EVENT_TYPE_CHARS} "
                                  "characters)")
        try:
            n = store.add(sid, body)
        except ReportLimitError as exc:
            return error_response(str(exc), 413)
        return Response(f"{n}\n", mimetype="text/plain")

    @bp.get("/report/<sid>")
    def report_get(sid: str):
        if not SESSION_RE.fullmatch(sid):
            return error_response(f"report: session id {sid[:80]!r} must be 1-64 characters of "
                                  "[A-Za-z0-9_.-]")
        return Response(store.get_json(sid), mimetype="application/json")

    @bp.get("/<path:relpath>")
    def asset(relpath: str):
        parts = relpath.split("/")
        if "\x00" in relpath or relpath.startswith("/") or any(p in ("", "..") for p in parts):
            abort(404)
        try:
            real = (ASSETS_DIR / relpath).resolve(strict=True)
        except (OSError, RuntimeError):
            abort(404)
        if not real.is_relative_to(ASSETS_DIR) or not real.is_file() or real.name == "player.html":
            abort(404)
        mimetype = {".js": "text/javascript", ".html": "text/html", ".md": "text/plain"}.get(real.suffix,
                                                                                           "application/octet-stream")
        return send_file(real, mimetype=mimetype, conditional=False, etag=False, max_age=0)

    return bp


def register(app, report_dir: str | os.PathLike | None = None):
    """Register the browser routes on ``app`` (the video server's Flask app) once; returns ``app``.
    (player/server.py create_app registers them; a later call only sets ``report_dir``.)"""
    if "genet_browser" not in app.blueprints:
        app.register_blueprint(browser_blueprint(report_dir))
    elif report_dir is not None:
        app.config["genet.browser_reports"].set_dir(report_dir)
    return app


__all__ = ["browser_blueprint", "register", "ReportStore", "ReportLimitError", "dashjs_missing_reason",
           "DASHJS_VERSION", "URL_PREFIX"]
