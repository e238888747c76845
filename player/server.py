"""The video server: a Flask app on waitress (a production, multi-threaded WSGI server).

Routes (``genet player serve --video DIR --bind ADDR --port P``):

* ``GET /manifest.mpd``, ``GET /video.json``, ``GET /video<N>/<k>.m4s`` (and ``Header.m4s``): files
  of the video directory with exact ``Content-Length``. Only regular files under the directory are
  served: ``..``, absolute paths, NUL bytes, encoded traversal (``%2e%2e%2f``) and symlinks that
  leave the directory get 404 (400 for NUL bytes);
* ``POST /abr`` (and ``POST /``): Pensieve's ABR endpoint (player/abr.py: fields, session ids,
  replies); malformed bodies get 400 with a one-line message and the server keeps serving;
* ``GET /health``: ``ok`` (readiness probe).

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
from typing import Any

from genet.abr.qoe import REBUFFER_PENALTY_PENSIEVE
from player.abr import AbrDecider, AbrRequest, AbrRequestError, AbrServerSession
from player.content import INIT_NAME, MPD_NAME, load_content

#: Most concurrent ABR sessions a server keeps (the oldest is dropped beyond).
MAX_SESSIONS = 1024


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
    from flask import Flask, Response, abort, request, send_file

    content = load_content(video_dir)
    root = content.root.resolve()
    # fail now (unknown policy, bad model), and load the policy's kernels before /health answers
    AbrDecider(policy, content.video, rebuffer_penalty)
    app = Flask("genet-player", static_folder=None)
    from player.browser_routes import register as register_browser_page
    register_browser_page(app)  # the browser player's page and measurement endpoint (/player/)
    app.config["genet.log"] = logger = JsonlLog(log)
    sessions: dict[str, AbrServerSession] = {}
    sessions_lock = threading.Lock()

    def session_for(sid: str) -> AbrServerSession:
        with sessions_lock:
            s = sessions.get(sid)
            if s is None:
                if len(sessions) >= MAX_SESSIONS:
                    sessions.pop(next(iter(sessions)))
                s = sessions[sid] = AbrServerSession(AbrDecider(policy, content.video, rebuffer_penalty))
            return s

    @app.after_request
    def cors(resp):
        resp.headers["Access-Control-Allow-Origin"] = "*"
        return resp

    @app.get("/health")
    def health():
        return Response("ok", mimetype="text/plain")

    @app.route("/", methods=["POST"])
    @app.route("/abr", methods=["POST"])
    def abr():
        raw = request.get_data(cache=False, as_text=True)
        try:
            body = json.loads(raw)
        except ValueError:
            return Response(f"ABR request body is not JSON: {raw[:80]!r}\n", status=400, mimetype="text/plain")
        if isinstance(body, dict) and "pastThroughput" in body:  # dash.js end-of-load summary
            return Response("", mimetype="text/plain")
        sid = str(request.args.get("session") or request.headers.get("X-Session-Id")
                  or (body.get("session") if isinstance(body, dict) else None) or "default")
        try:
            req = AbrRequest.from_json(body, content.video.n_levels)
        except AbrRequestError as exc:
            return Response(f"{exc}\n", status=400, mimetype="text/plain")
        sess = session_for(sid)
        with sess.lock:
            reply, record = sess.handle(req)
        logger.write({"event": "decision", "t_s": time.time(), "session": sid, "policy": sess.decider.label,
                      "last_request": req.lastRequest, "last_quality": req.lastquality, **record})
        return Response(reply, mimetype="text/plain")

    @app.get("/")
    def index():
        return Response(f"genet player server: {MPD_NAME}, video.json, POST /abr\n", mimetype="text/plain")

    @app.get("/<path:relpath>")
    def files(relpath: str):
        if "\x00" in relpath:
            abort(400)
        parts = relpath.replace("\\", "/").split("/")
        if relpath.startswith("/") or any(p in ("..", "") for p in parts):
            _log_segment(logger, relpath, 0, 404)
            abort(404)
        path = (root / relpath)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            _log_segment(logger, relpath, 0, 404)
            abort(404)
        if not real.is_relative_to(root) or not real.is_file():
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

    return app


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
        from genet.errors import BadInputError
        raise BadInputError(f"--tcp-cc {name!r}: the kernel refused it ({e.strerror}); allowed here: "
                            f"{', '.join(allowed) or 'unknown'}") from None


def run_wsgi(app, bind: str = "127.0.0.1", port: int = 8000, threads: int = 16, ready_file: str | None = None,
             banner: str = "", tcp_cc: str = DEFAULT_TCP_CC) -> None:
    """Run a Flask app made by :func:`create_app` (or one that extends it) on waitress until interrupted;
    ``port`` 0 picks a free one (printed, and written to ``ready_file``). Every connection uses the TCP
    congestion control ``tcp_cc`` (set on the listening socket, which accepted sockets inherit)."""
    from waitress import create_server
    server = create_server(app, host=bind, port=port, threads=threads, channel_timeout=30,
                           connection_limit=256, ident="genet-player")
    set_tcp_congestion(server.socket, tcp_cc)
    banner = f"{banner} [TCP {tcp_cc}]".strip()
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
          tcp_cc: str = DEFAULT_TCP_CC) -> None:
    """Serve ``video_dir`` until interrupted (waitress, ``threads`` worker threads, TCP ``tcp_cc``)."""
    run_wsgi(create_app(video_dir, policy=policy, log=log), bind, port, threads, ready_file,
             f"({video_dir}, ABR policy {policy})", tcp_cc)


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m player.server", description="genet player video server")
    p.add_argument("--video", required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--policy", default="bba")
    p.add_argument("--log", default=None)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--tcp-cc", default=DEFAULT_TCP_CC, help="TCP congestion control of the server's connections")
    args = p.parse_args(argv)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from genet.errors import GenetError
    try:
        serve(args.video, args.bind, args.port, args.policy, args.log, args.threads, tcp_cc=args.tcp_cc)
    except GenetError as e:
        print(f"python -m player.server: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
