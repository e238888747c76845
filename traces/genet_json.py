"""Genet ``Trace`` JSON: the Pantheon-derived CC traces and our own JSON dumps.

Fields (genet-simulators.md §4.1, §7.3): ``timestamps`` (s), ``bandwidths``
(Mbps), ``delays`` (one-way ms; one value or one per timestamp), ``loss``,
``queue`` (packets), ``delay_noise`` (ms), ``T_s`` (s).

Pantheon-derived files (``*_datalink_run*.json``) carry placeholder ``loss``
(0) and ``queue`` (10) that describe nothing measured (§7.3): they are read as
"unspecified" (``None``) and the placeholder values kept in ``meta``. The
delay is real: the minimum of ``delays`` becomes ``delay_ms``.

Files written by genet-testbed add ``"name"`` and ``"genet_testbed": 1`` and
write ``null`` for unspecified properties, so they read back exactly.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from foundation.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.textfile import read_trace_text
from traces.trace import MAX_BANDWIDTH_MBPS, Trace, check_link_property

PANTHEON_NAME = re.compile(r".*_datalink_run\d+\.json$")
REQUIRED_FIELDS = ("timestamps", "bandwidths")


def _number_list(data: dict, key: str, path: Path) -> np.ndarray:
    value = data[key]
    if _is_number(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise TraceFormatError("must be a non-empty list of numbers", path, field=key)
    for i, v in enumerate(value):
        if not _is_number(v):
            raise TraceFormatError(f"element {i} is not a number (it is {_json_kind(v)})", path, field=key)
    try:
        out = np.asarray(value, dtype=float)
    except OverflowError:  # an integer beyond a float's range
        out = None
    if out is None or not np.all(np.isfinite(out)):
        i = next(k for k, v in enumerate(value) if not math.isfinite(_as_float(v)))
        raise TraceFormatError(f"element {i} is not a finite number (nan, inf or beyond 1.8e308)", path, field=key)
    return out


def _optional_number(data: dict, key: str, path: Path) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if not _is_number(v):
        raise TraceFormatError(f"must be a number or null, not {_json_kind(v)}", path, field=key)
    f = _as_float(v)
    if not math.isfinite(f):
        raise TraceFormatError("must be a finite number (not nan, inf or beyond 1.8e308)", path, field=key)
    return f


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_float(v) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf


def _json_kind(v) -> str:
    """What a JSON value is, without repeating it (a trace path may point at a file of secrets)."""
    return {str: "a string", bool: "a boolean", list: "a list", dict: "an object", type(None): "null"}.get(
        type(v), "another value")


def read_genet_json(path: str | os.PathLike, name: str | None = None) -> Trace:
    """Read a Genet Trace JSON file. Errors name the file and the field (or JSON line), never the
    file's text."""
    path = Path(path)
    text = read_trace_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"invalid JSON: {exc.msg}", path, exc.lineno) from None
    except RecursionError:
        raise TraceFormatError("invalid JSON: nested too deeply", path) from None
    except ValueError:  # an integer of more than 4,300 digits (sys.set_int_max_str_digits)
        raise TraceFormatError("invalid JSON: a number too long to read (more than 4,300 digits)", path) from None
    if not isinstance(data, dict):
        raise TraceFormatError("expected a JSON object with 'timestamps' and 'bandwidths'", path)
    for key in REQUIRED_FIELDS:
        if key not in data:
            raise TraceFormatError("missing required field", path, field=key)
    t = _number_list(data, "timestamps", path)
    bw = _number_list(data, "bandwidths", path)
    if t.size != bw.size:
        raise TraceFormatError(f"has {bw.size} values but 'timestamps' has {t.size}", path, field="bandwidths")
    if np.any(np.diff(t) < 0):
        i = int(np.argmax(np.diff(t) < 0)) + 1
        raise TraceFormatError(f"timestamps decrease at index {i} ({t[i - 1]} -> {t[i]})", path, field="timestamps")
    if np.any(bw < 0):
        i = int(np.argmax(bw < 0))
        raise TraceFormatError(f"negative bandwidth {bw[i]} Mbps at index {i}", path, field="bandwidths")
    if np.any(bw > MAX_BANDWIDTH_MBPS):
        i = int(np.argmax(bw > MAX_BANDWIDTH_MBPS))
        raise TraceFormatError(f"bandwidth {bw[i]:.6g} Mbps at index {i} is above the limit of {MAX_BANDWIDTH_MBPS:g} "
                               "Mbps (MAX_BANDWIDTH_MBPS)", path, field="bandwidths")
    delay_ms = None
    if data.get("delays") is not None:
        delays = _number_list(data, "delays", path)
        if np.any(delays < 0):
            raise TraceFormatError("negative delay", path, field="delays")
        delay_ms = check_link_property("delay_ms", float(delays.min()), path, field="delays")
    meta: dict = {}
    loss = _optional_number(data, "loss", path)
    queue = _optional_number(data, "queue", path)
    is_ours = bool(data.get("genet_testbed"))
    if PANTHEON_NAME.match(path.name) and not is_ours:
        meta.update(placeholder_loss=loss, placeholder_queue=queue)
        loss = queue = None
    for key in ("delay_noise", "T_s"):
        if data.get(key) is not None:
            meta[key] = _optional_number(data, key, path)
    if isinstance(data.get("meta"), dict):
        meta = {**data["meta"], **meta}
    # where the trace came from is ours to say: a file's own "meta" cannot change it
    meta.update(source_format="json", path=str(path))
    if loss is not None and not (0 <= loss < 1):
        raise TraceFormatError(f"loss must be in [0, 1), got {loss}", path, field="loss")
    if queue is not None and queue < 1:
        raise TraceFormatError(f"queue must be >= 1 packet, got {queue}", path, field="queue")
    queue_packets = check_link_property("queue_packets", queue, path, field="queue")
    own_name = data.get("name")
    if own_name is not None and not isinstance(own_name, str):
        raise TraceFormatError(f"must be a string, not {_json_kind(own_name)}", path, field="name")
    trace_name = name if name is not None else (own_name or path.stem)
    return Trace(t, bw, name=trace_name, delay_ms=delay_ms, loss_rate=loss, queue_packets=queue_packets, meta=meta)


def trace_to_json_dict(trace: Trace) -> dict:
    meta = {k: v for k, v in trace.meta.items() if k not in ("path", "source_format")}
    out = {
        "genet_testbed": 1,
        "name": trace.name,
        "timestamps": [round(float(x), 6) for x in trace.timestamps_s],
        "bandwidths": [round(float(x), 6) for x in trace.bandwidth_mbps],
        "delays": [trace.delay_ms] if trace.delay_ms is not None else None,
        "loss": trace.loss_rate,
        "queue": trace.queue_packets,
        "delay_noise": meta.pop("delay_noise", 0),
        "T_s": meta.pop("T_s", 0),
    }
    if meta:
        out["meta"] = _jsonable(meta)
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def write_genet_json(trace: Trace, path: str | os.PathLike) -> None:
    with atomic_text_writer(path) as fh:
        json.dump(trace_to_json_dict(trace), fh, indent=None)
        fh.write("\n")
