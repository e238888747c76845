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

Session ids: 1-64 characters of ``[A-Za-z0-9_.-]`` (anything else is 400: they name files).
Imports only flask and the standard library.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

#: The dash.js release the page loads (scripts/provision.sh installs this one, pinned by SHA-256).
DASHJS_VERSION = "5.2.1"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DASHJS_FILE = ASSETS_DIR / "vendor" / f"dashjs-{DASHJS_VERSION}" / "dash.all.min.js"
URL_PREFIX = "/player"
SESSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: Most sessions kept in memory (the oldest is dropped beyond), and events per session.
MAX_SESSIONS = 256
MAX_EVENTS_PER_SESSION = 200_000


def dashjs_missing_reason() -> str | None:
    """Why the page cannot load dash.js here (None when it can)."""
    if not DASHJS_FILE.is_file():
        return (f"dash.js {DASHJS_VERSION} is not installed at {DASHJS_FILE.relative_to(ASSETS_DIR.parent.parent)} "
                "(scripts/provision.sh installs it with npm)")
    return None


class ReportStore:
    """The measurement events the pages posted, per session (thread-safe)."""

    def __init__(self, report_dir: str | os.PathLike | None = None) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[dict[str, Any]]] = {}
        self.set_dir(report_dir)

    def set_dir(self, report_dir: str | os.PathLike | None) -> None:
        """Also append every session's events to ``report_dir/<session>.events.jsonl`` (None: memory only)."""
        self.report_dir = Path(report_dir) if report_dir is not None else None
        if self.report_dir is not None:
            self.report_dir.mkdir(parents=True, exist_ok=True)

    def add(self, session: str, events: list[dict[str, Any]]) -> int:
        with self._lock:
            if session not in self._events and len(self._events) >= MAX_SESSIONS:
                self._events.pop(next(iter(self._events)))
            kept = self._events.setdefault(session, [])
            room = MAX_EVENTS_PER_SESSION - len(kept)
            events = events[:max(room, 0)]
            kept.extend(events)
            if self.report_dir is not None and events:
                with open(self.report_dir / f"{session}.events.jsonl", "a", encoding="utf-8") as fh:
                    for ev in events:
                        fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
            return len(events)

    def get(self, session: str) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._events.get(session, []), key=lambda e: e.get("seq", 0))


def _bad(msg: str, status: int = 400):
    from flask import Response
    return Response(msg.rstrip("\n") + "\n", status=status, mimetype="text/plain")


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
        sid = request.args.get("session", "")
        if not SESSION_RE.match(sid):
            return _bad(f"report: session id {sid[:80]!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        try:
            body = json.loads(request.get_data(cache=False, as_text=True))
        except ValueError:
            return _bad("report: body is not JSON")
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list) or not all(isinstance(e, dict) and isinstance(e.get("type"), str)
                                                 and isinstance(e.get("seq"), int) for e in body):
            return _bad("report: body must be a JSON array of events, each with 'seq' (integer) and 'type' (string)")
        n = store.add(sid, body)
        return Response(f"{n}\n", mimetype="text/plain")

    @bp.get("/report/<sid>")
    def report_get(sid: str):
        if not SESSION_RE.match(sid):
            return _bad(f"report: session id {sid[:80]!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        return Response(json.dumps({"session": sid, "events": store.get(sid)}), mimetype="application/json")

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


__all__ = ["browser_blueprint", "register", "ReportStore", "dashjs_missing_reason", "DASHJS_VERSION", "URL_PREFIX"]
