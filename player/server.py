"""The video server: a Flask app on waitress (a production, multi-threaded WSGI server).

Routes (``genet player serve --video DIR --bind ADDR --port P``):

* ``GET /manifest.mpd``, ``GET /video.json``, ``GET /video<N>/<k>.m4s`` (and ``Header.m4s``): files
  of the video directory with exact ``Content-Length``. Only regular files under the directory are
  served: ``..``, absolute paths, NUL bytes, encoded traversal (``%2e%2e%2f``) and symlinks that
  leave the directory get 404 (400 for NUL bytes);
* ``POST /abr`` (and ``POST /``): Pensieve's ABR endpoint (player/abr.py: fields, session ids,
  replies); malformed bodies get 400 with a one-line message and the server keeps serving;
* ``GET /health``: ``ok`` (readiness probe).

Limits (player/request_limits.py lists them with their values): request bodies of at most
``MAX_REQUEST_BYTES`` (the ABR endpoint ``MAX_ABR_REQUEST_BYTES``; 413 beyond, refused by waitress before
the body is read), JSON bodies checked by ``parse_json_body`` (400 with a one-line reason for anything
malformed: never a 5xx), up to ``MAX_CONNECTIONS`` connections polled with poll(2), and a request that has
not fully arrived ``REQUEST_RECEIVE_DEADLINE_S`` after its first byte closes its connection (slow clients
hold no worker thread: waitress reads bodies in its event loop). ABR sessions: at most :data:`MAX_SESSIONS`
(the oldest is dropped), ids of at most :data:`MAX_SESSION_ID_CHARS` characters; an ONNX policy is loaded
once per server and shared by every session (onnxruntime's ``run`` is thread-safe; the network is
stateless), a rule-based policy is built per session (RobustMPC keeps a per-session history).

Logging (``--log FILE``, JSON lines, flushed per line): ``{"event": "segment", "t_s", "path", "bytes",
"status", "client"}`` for every file request and ``{"event": "decision", "t_s", "session", "policy",
"reply", ...}`` for every ABR decision (player/abr.py ``AbrServerSession.handle`` lists the fields).
``t_s`` is epoch seconds.

Imports only flask, waitress, numpy (and onnxruntime for ``.onnx`` policies).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE
from player.abr import AbrDecider, AbrRequest, AbrRequestError, AbrServerSession, shared_policy
from player.content import INIT_NAME, MPD_NAME, load_content
from player.request_limits import (CHANNEL_IDLE_TIMEOUT_S, CONNECTION_SWEEP_INTERVAL_S, INBUF_MEMORY_BYTES,
                                   LISTEN_BACKLOG, MAX_ABR_REQUEST_BYTES, MAX_REQUEST_BYTES,
                                   MAX_REQUEST_HEADER_BYTES, REQUEST_RECEIVE_DEADLINE_S, RequestBodyError,
                                   connection_limit, error_response, parse_json_body,
                                   raise_open_files_limit)

#: Most concurrent ABR sessions a server keeps (the oldest is dropped beyond).
MAX_SESSIONS = 1024
#: Most connections accepted per wake-up of the event loop.
ACCEPTS_PER_WAKEUP = 64
#: Longest ABR session id (query parameter, X-Session-Id header or body field), characters (400 beyond).
MAX_SESSION_ID_CHARS = 128


class JsonlLog:
    """Thread-safe JSON-lines log (one line per event, flushed; None path: discard)."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self._lock = threading.Lock()
        self._fh = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


#: Cache-Control max-age of init segments (the only files a client may cache), s.
INIT_MAX_AGE_S = 3600


def create_app(video_dir: str | os.PathLike, policy: str = "bba", log: str | os.PathLike | None = None,
               rebuffer_penalty: float = REBUFFER_PENALTY_PENSIEVE):
    """The Flask app serving ``video_dir`` with ``policy`` behind the ABR endpoint."""
    from flask import Flask

    content = load_content(video_dir)
    root = content.root.resolve()
    # fail now (unknown policy, bad model), and load the policy's kernels before /health answers; an ONNX
    # model is loaded here once and shared by every session
    policy_obj, label = shared_policy(policy, rebuffer_penalty)
    AbrDecider(policy_obj, content.video, rebuffer_penalty, label=label)
    app = Flask("genet-player", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES  # 413 beyond (waitress refuses them first)
    from player.browser_routes import register as register_browser_page
    register_browser_page(app)  # the browser player's page and measurement endpoint (/player/)
    app.config["genet.log"] = logger = JsonlLog(log)
    # built outside the sessions' lock (cheap: the model is shared, the kernels warm), so a new session never
    # holds up the others
    sessions = _AbrSessions(lambda: AbrServerSession(AbrDecider(policy_obj, content.video, rebuffer_penalty,
                                                               label=label, warm_up=False)))
    _add_health_routes(app)
    _add_abr_routes(app, sessions, content.video, logger)
    _add_file_routes(app, root, logger)
    return app


class _AbrSessions:
    """A server's ABR sessions by id, made by ``new()`` on first use; at most :data:`MAX_SESSIONS` (the oldest is
    dropped beyond). Thread-safe; ``new()`` runs outside the lock."""

    def __init__(self, new: Callable[[], AbrServerSession]) -> None:
        self._new = new
        self._sessions: dict[str, AbrServerSession] = {}
        self._lock = threading.Lock()

    def get(self, sid: str) -> AbrServerSession:
        with self._lock:
            s = self._sessions.get(sid)
        if s is not None:
            return s
        fresh = self._new()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                if len(self._sessions) >= MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
                s = self._sessions[sid] = fresh
            return s


def _add_health_routes(app) -> None:
    """CORS on every response; ``GET /health``, the readiness probe."""
    from flask import Response

    @app.after_request
    def cors(resp):
        resp.headers["Access-Control-Allow-Origin"] = "*"
        return resp

    @app.get("/health")
    def health():
        return Response("ok", mimetype="text/plain")


def _add_abr_routes(app, sessions: _AbrSessions, video, logger: JsonlLog) -> None:
    """``POST /abr`` (and ``POST /``): Pensieve's ABR endpoint; each decision is logged."""
    from flask import Response, request

    @app.route("/", methods=["POST"])
    @app.route("/abr", methods=["POST"])
    def abr():
        request.max_content_length = MAX_ABR_REQUEST_BYTES  # 413 beyond
        try:
            body = parse_json_body(request.get_data(cache=False), "ABR request")
        except RequestBodyError as exc:
            return error_response(str(exc))
        if isinstance(body, dict) and "pastThroughput" in body:  # dash.js end-of-load summary
            return Response("", mimetype="text/plain")
        sid, error = _session_id(request, body)
        if error:
            return error_response(error)
        try:
            req = AbrRequest.from_json(body, video.n_levels)
        except AbrRequestError as exc:
            return error_response(str(exc))
        sess = sessions.get(sid)
        with sess.lock:
            reply, record = sess.handle(req)
        logger.write({"event": "decision", "t_s": time.time(), "session": sid, "policy": sess.decider.label,
                      "last_request": req.lastRequest, "last_quality": req.lastquality, **record})
        return Response(reply, mimetype="text/plain")


def _session_id(request, body: Any) -> tuple[str, str]:
    """(session id, "") of an ABR request: its ``session`` query parameter, else its X-Session-Id header, else its
    body's ``session`` field, else "default"; ("", the reason) for a bad one."""
    sid = request.args.get("session") or request.headers.get("X-Session-Id")
    if not sid and isinstance(body, dict):
        sid = body.get("session")
        if isinstance(sid, int) and not isinstance(sid, bool):
            sid = str(sid)
        elif sid is not None and not isinstance(sid, str):
            return "", f"ABR request: field 'session' must be a string, got {type(sid).__name__}"
    sid = sid or "default"
    if len(sid) > MAX_SESSION_ID_CHARS:
        return "", f"ABR request: session id of {len(sid)} characters (at most {MAX_SESSION_ID_CHARS})"
    return sid, ""


def _add_file_routes(app, root: Path, logger: JsonlLog) -> None:
    """``GET /`` (what the server offers) and ``GET /<path>``: the regular files under ``root``, each logged."""
    from flask import Response, abort, send_file

    @app.get("/")
    def index():
        return Response(f"genet player server: {MPD_NAME}, video.json, POST /abr\n", mimetype="text/plain")

    @app.get("/<path:relpath>")
    def files(relpath: str):
        if "\x00" in relpath:
            abort(400)
        real = _file_under(root, relpath)
        if real is None:
            _log_segment(logger, relpath, 0, 404)
            abort(404)
        size = real.stat().st_size
        mimetype = "application/dash+xml" if real.name.endswith(".mpd") else (
            "application/json" if real.suffix == ".json" else "video/mp4")
        # init segments never change within a video directory: a browser may keep them (dash.js re-requests
        # the init segment on every quality switch; from Chromium's cache that costs no round trip)
        resp = send_file(real, mimetype=mimetype, conditional=False, etag=False,
                         max_age=INIT_MAX_AGE_S if real.name == INIT_NAME else 0)
        resp.headers["Content-Length"] = str(size)
        _log_segment(logger, relpath, size, 200)
        return resp


def _file_under(root: Path, relpath: str) -> Path | None:
    """The regular file ``relpath`` names under ``root`` (symlinks resolved), or None: an absolute path, a ``..``
    or empty part, a missing file or one that resolves outside ``root``."""
    parts = relpath.replace("\\", "/").split("/")
    if relpath.startswith("/") or any(p in ("..", "") for p in parts):
        return None
    try:
        real = (root / relpath).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(root) or not real.is_file():
        return None
    return real


def _log_segment(logger: JsonlLog, path: str, size: int, status: int) -> None:
    from flask import request
    logger.write({"event": "segment", "t_s": time.time(), "path": path, "bytes": size, "status": status,
                  "client": request.remote_addr})


#: The server's TCP congestion control unless told otherwise: Cubic, the Linux default Pensieve's and Genet's
#: Apache servers ran with (Ubuntu 16.04/18.04); named, never the machine's default (BBR on some machines).
DEFAULT_TCP_CC = "cubic"


def set_tcp_congestion(sock, name: str) -> None:
    """Set ``name`` (cubic, bbr, reno, ...) on a TCP socket; a listening socket passes it to every accepted
    connection. Raises BadInputError naming the allowed algorithms when the kernel refuses it."""
    import socket
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
    except OSError as e:
        try:
            allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read_text().split()
        except OSError:
            allowed = []
        from foundation.errors import BadInputError
        raise BadInputError(f"--tcp-cc {name!r}: the kernel refused it ({e.strerror}); allowed here: "
                            f"{', '.join(allowed) or 'unknown'}") from None


def make_wsgi_server(app, bind: str = "127.0.0.1", port: int = 8000, threads: int = 16,
                     request_deadline_s: float = REQUEST_RECEIVE_DEADLINE_S):
    """A waitress server for ``app`` on one address, with the limits of player/request_limits.py: request
    sizes, at most :func:`~player.request_limits.connection_limit` connections (the soft descriptor limit is
    raised to the hard one first), poll(2), idle connections closed after ``CHANNEL_IDLE_TIMEOUT_S`` and
    requests not fully received ``request_deadline_s`` after their first byte closed too."""
    from waitress.adjustments import Adjustments
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer
    from foundation.errors import BadInputError

    if not request_deadline_s > 0:
        raise BadInputError(f"request deadline must be > 0 s, got {request_deadline_s!r}")

    class Channel(HTTPChannel):
        #: monotonic time of the first byte of the request being received (None: no request in progress)
        receiving_since = None

        def received(self, data):
            if self.request is None:
                self.receiving_since = time.monotonic()
            try:
                return super().received(data)
            finally:
                if self.request is None:
                    self.receiving_since = None

    class Server(TcpWSGIServer):
        channel_class = Channel

        def handle_accept(self):
            # up to ACCEPTS_PER_WAKEUP connections per wake-up (waitress takes one): a burst of connections
            # drains from the backlog in a few loop turns, so a new client is not queued behind all of them
            for _ in range(ACCEPTS_PER_WAKEUP):
                n = len(self._map)
                if n >= self.adj.connection_limit:
                    return
                super().handle_accept()
                if len(self._map) == n:  # nothing left to accept (or a failed accept)
                    return

        def maintenance(self, now):
            super().maintenance(now)  # idle connections
            cutoff = time.monotonic() - request_deadline_s
            for channel in list(self.active_channels.values()):
                since = getattr(channel, "receiving_since", None)
                if since is not None and since < cutoff and not channel.requests:
                    channel.will_close = True  # a request trickling in for too long (a slow-body client)

    open_files = raise_open_files_limit()
    adj = Adjustments(host=bind, port=port, threads=threads, ident="genet-player",
                      connection_limit=connection_limit(open_files), channel_timeout=CHANNEL_IDLE_TIMEOUT_S,
                      cleanup_interval=CONNECTION_SWEEP_INTERVAL_S, asyncore_use_poll=True,
                      backlog=LISTEN_BACKLOG, max_request_body_size=MAX_REQUEST_BYTES + 1,  # waitress: >= is refused
                      max_request_header_size=MAX_REQUEST_HEADER_BYTES, inbuf_overflow=INBUF_MEMORY_BYTES)
    if len(adj.listen) != 1:
        raise BadInputError(f"--bind {bind!r} resolves to {len(adj.listen)} addresses; give one address")
    return Server(app, map={}, adj=adj, sockinfo=adj.listen[0])


def run_wsgi(app, bind: str = "127.0.0.1", port: int = 8000, threads: int = 16, ready_file: str | None = None,
             banner: str = "", tcp_cc: str = DEFAULT_TCP_CC,
             request_deadline_s: float = REQUEST_RECEIVE_DEADLINE_S) -> None:
    """Run a Flask app made by :func:`create_app` (or one that extends it) on waitress until interrupted;
    ``port`` 0 picks a free one (printed, and written to ``ready_file``). Every connection uses the TCP
    congestion control ``tcp_cc`` (set on the listening socket, which accepted sockets inherit); the
    server's limits: :func:`make_wsgi_server`."""
    server = make_wsgi_server(app, bind, port, threads, request_deadline_s)
    set_tcp_congestion(server.socket, tcp_cc)
    banner = f"{banner} [TCP {tcp_cc}; up to {server.adj.connection_limit} connections]".strip()
    print(f"serving on http://{bind}:{server.effective_port}/ {banner}".rstrip(), flush=True)
    if ready_file:
        Path(ready_file).write_text(str(server.effective_port))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        app.config["genet.log"].close()


def serve(video_dir: str | os.PathLike, bind: str = "127.0.0.1", port: int = 8000, policy: str = "bba",
          log: str | os.PathLike | None = None, threads: int = 16, ready_file: str | None = None,
          tcp_cc: str = DEFAULT_TCP_CC, request_deadline_s: float = REQUEST_RECEIVE_DEADLINE_S) -> None:
    """Serve ``video_dir`` until interrupted (waitress, ``threads`` worker threads, TCP ``tcp_cc``)."""
    run_wsgi(create_app(video_dir, policy=policy, log=log), bind, port, threads, ready_file,
             f"({video_dir}, ABR policy {policy})", tcp_cc, request_deadline_s)


class ServerProcess:
    """``python -m player.server`` as a child process (context manager), ready when ``/health`` answers.

    args: extra server arguments (e.g. ["--policy", "mpc"]); video_dir, bind, port (0: a free one)
    ready_timeout_s: how long to wait for the health probe (30)
    """

    def __init__(self, video_dir: str | os.PathLike, bind: str = "127.0.0.1", port: int = 0,
                 args: list[str] | None = None, ready_timeout_s: float = 30.0, module: str = "player.server") -> None:
        import socket
        import subprocess
        import sys
        if port == 0:
            with socket.socket() as sock:
                sock.bind((bind, 0))
                port = sock.getsockname()[1]
        self.bind, self.port = bind, port
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--video", str(video_dir), "--bind", bind,
                                      "--port", str(port), *(args or [])], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        if not wait_healthy(self.url, ready_timeout_s, self.proc):
            out = self.stop()
            raise RuntimeError(f"video server on {self.url} not ready within {ready_timeout_s} s: {out[-500:]}")

    @property
    def url(self) -> str:
        return f"http://{self.bind}:{self.port}/"

    def stop(self) -> str:
        """SIGTERM (then SIGKILL after 10 s); returns what the server printed."""
        import subprocess
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self.proc.stdout.read() if self.proc.stdout else ""
        if self.proc.stdout:
            self.proc.stdout.close()
        return out

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_healthy(url: str, timeout_s: float, proc=None) -> bool:
    """Poll ``url + "health"`` until it answers 200 (False after ``timeout_s`` or when ``proc`` exits)."""
    import urllib.request
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=1.0) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def run_serve(args: argparse.Namespace) -> int:
    """Serve as the options of :mod:`player.serve_options` say, until Ctrl-C or SIGTERM; returns 0."""
    import signal
    from player.content import write_sized_video
    if threading.current_thread() is threading.main_thread():  # SIGTERM ends the server as Ctrl-C does
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    video = args.video
    if video == "sized":
        video = str(write_sized_video(args.sized_dir).root)
    try:
        serve(video, args.bind, args.port, args.policy, args.log, args.threads, tcp_cc=args.tcp_cc,
              request_deadline_s=args.request_deadline_s)
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m player.server ARGS``: ``genet player serve ARGS`` (the same options)."""
    from foundation.errors import GenetError
    from player.serve_options import serve_arguments
    p = argparse.ArgumentParser(prog="python -m player.server", description="genet player video server")
    serve_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_serve(args)
    except GenetError as e:
        print(f"python -m player.server: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
