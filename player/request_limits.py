"""What the video server accepts from a client: request sizes, connections, and JSON bodies.

Every limit of the server (player/server.py, player/browser_routes.py) that a client can run into is
here, with its unit. The server trusts no client: every request is read within these bounds, and a body
that breaks them gets a 4xx reply with a one-line reason, never a 5xx and never a traceback.

Request size
    :data:`MAX_REQUEST_BYTES` for any request body (waitress refuses larger ones with 413 before the
    application sees them; Flask refuses them too, so the app alone is safe under another WSGI server),
    :data:`MAX_ABR_REQUEST_BYTES` for the ABR endpoint, :data:`MAX_REQUEST_HEADER_BYTES` for the request
    line and headers (431 beyond). A body is held in memory up to :data:`INBUF_MEMORY_BYTES` while it
    arrives, beyond that in a temporary file.

Connections (waitress)
    up to :data:`MAX_CONNECTIONS` open at once (fewer when the process's file-descriptor limit cannot hold
    :data:`FDS_PER_CONNECTION` per connection plus :data:`FD_RESERVE`: :func:`connection_limit`), polled
    with poll(2) (select(2) cannot watch descriptors above 1023); a connection idle for
    :data:`CHANNEL_IDLE_TIMEOUT_S` is closed, and so is one whose request (headers and body) has not fully
    arrived :data:`REQUEST_RECEIVE_DEADLINE_S` after its first byte, however steadily it trickles.
    Request bodies are read by the event loop, not by a worker thread, so slow clients hold no worker.

JSON bodies (:func:`parse_json_body`)
    UTF-8; no ``NaN``/``Infinity`` or numbers that overflow a double (``1e999``); integers within 64 bits;
    nesting at most :data:`MAX_JSON_DEPTH` deep.

Standard library only (Flask for :func:`error_response`, imported when called).
"""

from __future__ import annotations

import json
import math
from typing import Any

from foundation.errors import BadInputError

KIB = 1024
MIB = 1024 * KIB

#: Largest request body any endpoint accepts, bytes (413 beyond). A report batch of ~700 events fits (the page
#: posts at most 200 at a time); parsing a body this size takes at most ~6 MiB (24x for ``[{},{},...]``), so
#: the worker threads together hold at most threads x 6 MiB of parsed bodies.
MAX_REQUEST_BYTES = 256 * KIB
#: Largest ABR request body, bytes (Pensieve's request is ~300 bytes, dash.js's end-of-load summary a few KB).
MAX_ABR_REQUEST_BYTES = 64 * KIB
#: Largest request line plus headers, bytes (431 beyond; a browser's request to the server is ~1 KB).
MAX_REQUEST_HEADER_BYTES = 16 * KIB
#: Body bytes a connection keeps in memory while its request arrives; the rest goes to a temporary file.
#: With the header limit, what arriving requests hold is at most MAX_CONNECTIONS x 32 KiB (128 MiB).
INBUF_MEMORY_BYTES = 16 * KIB
#: Most connections open at once (fewer when the descriptor limit is lower, see :func:`connection_limit`).
MAX_CONNECTIONS = 4096
#: File descriptors one connection may need: its socket and the temporary file of a large body.
FDS_PER_CONNECTION = 2
#: File descriptors kept for everything else (listening socket, log files, model, worker threads' files).
FD_RESERVE = 256
#: Pending connections the kernel queues before the server accepts them.
LISTEN_BACKLOG = 2048
#: An idle connection (no request in progress, nothing received or sent) is closed after this, s.
CHANNEL_IDLE_TIMEOUT_S = 30.0
#: A request whose headers and body have not all arrived this long after its first byte: connection closed, s.
REQUEST_RECEIVE_DEADLINE_S = 60.0
#: How often the server looks for idle and overdue connections, s.
CONNECTION_SWEEP_INTERVAL_S = 1.0
#: Deepest nesting of arrays/objects in a JSON body.
MAX_JSON_DEPTH = 32
#: Integers in JSON bodies lie in [-2**63, 2**63).
MAX_JSON_INT = 2**63


class RequestBodyError(BadInputError):
    """A request body the server cannot take (the message names the endpoint and what is wrong)."""


def _parse_int(text: str) -> int:
    v = int(text)  # json's own grammar: digits only; Python refuses more than 4,300 digits (ValueError)
    if not -MAX_JSON_INT <= v < MAX_JSON_INT:
        raise ValueError(f"integer {text[:24]}{'...' if len(text) > 24 else ''} does not fit in 64 bits")
    return v


def _parse_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:24]}{'...' if len(text) > 24 else ''} overflows a double")
    return v


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion on hostile input)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        deepest = max(deepest, d)
        if d > MAX_JSON_DEPTH:
            return d
        stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return deepest


def parse_json_body(raw: bytes, what: str) -> Any:
    """The JSON value of a request body, or :class:`RequestBodyError` naming ``what`` (e.g. "ABR request")
    and the reason: not UTF-8, not JSON, a non-finite or overflowing number, a 64-bit-overflowing integer,
    or nesting deeper than :data:`MAX_JSON_DEPTH`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestBodyError(f"{what}: body is not UTF-8 text (byte {e.start})") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except RecursionError:
        raise RequestBodyError(f"{what}: body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, and the parse hooks' refusals
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise RequestBodyError(f"{what}: body is not valid JSON ({reason}); starts {text[:60]!r}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise RequestBodyError(f"{what}: body nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def error_response(message: str, status: int = 400):
    """A one-line ``text/plain`` error reply (Flask) for a client's request."""
    from flask import Response
    return Response(message.splitlines()[0] + "\n" if message else "\n", status=status, mimetype="text/plain")


def connection_limit(open_files_limit: int) -> int:
    """Connections the server takes at once with ``open_files_limit`` file descriptors (at least 1)."""
    return max(1, min(MAX_CONNECTIONS, (int(open_files_limit) - FD_RESERVE) // FDS_PER_CONNECTION))


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (capped at what :data:`MAX_CONNECTIONS`
    needs); returns the soft limit in force afterwards."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_CONNECTIONS * FDS_PER_CONNECTION + FD_RESERVE
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else want


__all__ = ["MAX_REQUEST_BYTES", "MAX_ABR_REQUEST_BYTES", "MAX_REQUEST_HEADER_BYTES", "INBUF_MEMORY_BYTES",
           "MAX_CONNECTIONS", "FDS_PER_CONNECTION", "FD_RESERVE", "LISTEN_BACKLOG", "CHANNEL_IDLE_TIMEOUT_S",
           "REQUEST_RECEIVE_DEADLINE_S", "CONNECTION_SWEEP_INTERVAL_S", "MAX_JSON_DEPTH", "MAX_JSON_INT",
           "RequestBodyError", "parse_json_body", "error_response", "connection_limit", "raise_open_files_limit"]
