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
import os
import re
from pathlib import Path

import numpy as np

from genet.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.trace import Trace

PANTHEON_NAME = re.compile(r".*_datalink_run\d+\.json$")
REQUIRED_FIELDS = ("timestamps", "bandwidths")


def _number_list(data: dict, key: str, path: Path) -> np.ndarray:
    value = data[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise TraceFormatError("must be a non-empty list of numbers", path, field=key)
    for i, v in enumerate(value):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TraceFormatError(f"element {i} is not a number ({v!r})", path, field=key)
    return np.asarray(value, dtype=float)


def _optional_number(data: dict, key: str, path: Path) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise TraceFormatError(f"must be a number or null, got {v!r}", path, field=key)
    return float(v)


def read_genet_json(path: str | os.PathLike, name: str | None = None) -> Trace:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"invalid JSON: {exc.msg}", path, exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise TraceFormatError(f"not a text file ({exc.reason})", path) from None
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
    delay_ms = None
    if data.get("delays") is not None:
        delays = _number_list(data, "delays", path)
        if np.any(delays < 0):
            raise TraceFormatError("negative delay", path, field="delays")
        delay_ms = float(delays.min())
    meta: dict = {"source_format": "json", "path": str(path)}
    loss = _optional_number(data, "loss", path)
    queue = _optional_number(data, "queue", path)
    is_ours = bool(data.get("genet_testbed"))
    if PANTHEON_NAME.match(path.name) and not is_ours:
        meta.update(placeholder_loss=loss, placeholder_queue=queue)
        loss = queue = None
    for key in ("delay_noise", "T_s"):
        if data.get(key) is not None:
            meta[key] = data[key]
    if isinstance(data.get("meta"), dict):
        meta.update(data["meta"])
    if loss is not None and not (0 <= loss < 1):
        raise TraceFormatError(f"loss must be in [0, 1), got {loss}", path, field="loss")
    if queue is not None and queue < 1:
        raise TraceFormatError(f"queue must be >= 1 packet, got {queue}", path, field="queue")
    trace_name = name if name is not None else str(data.get("name") or path.stem)
    return Trace(t, bw, name=trace_name, delay_ms=delay_ms, loss_rate=loss,
                 queue_packets=int(round(queue)) if queue is not None else None, meta=meta)


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
