"""The one in-memory trace type of genet-testbed.

A :class:`Trace` is a piecewise-constant bandwidth over time:

* ``timestamps_s[i]`` (seconds, non-decreasing) and ``bandwidth_mbps[i]``
  (megabits per second, >= 0);
* sample ``i`` holds from ``timestamps_s[i]`` until ``timestamps_s[i + 1]``;
  the trace ends at ``timestamps_s[-1]`` (the last sample only marks the end,
  as in Genet's CC ``Trace``; genet-simulators.md §4.1). So a constant
  5 Mbps trace of 30 s is ``([0, 30], [5, 5])`` (:meth:`Trace.constant`).
* optional link properties that travel with the trace: the minimum one-way
  propagation delay ``delay_ms``, the random loss rate ``loss_rate`` (0-1)
  and the bottleneck queue ``queue_packets``. ``None`` means "not specified
  by this trace" (the caller's default applies).

The ABR simulator reads the same arrays with Pensieve's convention (the sample
at ``t[i]`` covers the interval *ending* at ``t[i]``, genet-simulators.md §1.2);
that convention belongs to the simulator, which is why the arrays are kept
exactly as read and never resampled here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from traces.errors import TraceFormatError

#: Bytes of one Mahimahi delivery opportunity used for rate conversion: a
#: 1500-byte IP packet (the link itself counts 1504 bytes per opportunity,
#: TUN header included; testbeds.md §1.1).
from genet.packets import PACKET_BYTES as MAHIMAHI_PACKET_BYTES  # noqa: E402  (defined once)
BITS_PER_OPPORTUNITY = MAHIMAHI_PACKET_BYTES * 8


@dataclass(frozen=True, eq=False)
class Trace:
    """A bandwidth trace plus optional per-trace link properties.

    timestamps_s: sample times in seconds, non-decreasing (e.g. [0, 1, 2])
    bandwidth_mbps: rate in Mbit/s holding from each timestamp to the next
    name: a label, usually the file's stem ("" when unknown)
    delay_ms: minimum one-way propagation delay in ms (None: unspecified)
    loss_rate: random loss probability in [0, 1) (None: unspecified)
    queue_packets: bottleneck queue size in packets (None: unspecified)
    meta: free-form provenance (generator config, source format, ...)
    """

    timestamps_s: np.ndarray
    bandwidth_mbps: np.ndarray
    name: str = ""
    delay_ms: float | None = None
    loss_rate: float | None = None
    queue_packets: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = np.asarray(self.timestamps_s, dtype=np.float64).reshape(-1)
        bw = np.asarray(self.bandwidth_mbps, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "timestamps_s", t)
        object.__setattr__(self, "bandwidth_mbps", bw)
        where = self.meta.get("path") if isinstance(self.meta, dict) else None
        if t.size == 0:
            raise TraceFormatError("trace has no samples", where)
        if t.shape != bw.shape:
            raise TraceFormatError(
                f"{t.size} timestamps but {bw.size} bandwidth values", where)
        if not np.all(np.isfinite(t)) or not np.all(np.isfinite(bw)):
            raise TraceFormatError("non-finite timestamp or bandwidth", where)
        if t.size > 1 and np.any(np.diff(t) < 0):
            i = int(np.argmax(np.diff(t) < 0)) + 1
            raise TraceFormatError(
                f"timestamps decrease at sample {i + 1} ({t[i - 1]} s -> {t[i]} s)", where)
        if np.any(bw < 0):
            i = int(np.argmax(bw < 0))
            raise TraceFormatError(f"negative bandwidth {bw[i]} Mbps at sample {i + 1}", where)
        if self.delay_ms is not None and not (self.delay_ms >= 0 and math.isfinite(self.delay_ms)):
            raise TraceFormatError(f"delay_ms must be >= 0, got {self.delay_ms}", where, field="delay_ms")
        if self.loss_rate is not None and not (0 <= self.loss_rate < 1):
            raise TraceFormatError(f"loss_rate must be in [0, 1), got {self.loss_rate}", where, field="loss_rate")
        if self.queue_packets is not None and not (self.queue_packets >= 1):
            raise TraceFormatError(f"queue_packets must be >= 1, got {self.queue_packets}", where,
                                   field="queue_packets")

    # ----------------------------------------------------------- constructors
    @classmethod
    def constant(cls, bandwidth_mbps: float, duration_s: float, name: str = "", **props: Any) -> "Trace":
        """A constant-rate trace lasting ``duration_s`` seconds."""
        if duration_s <= 0:
            raise TraceFormatError(f"duration_s must be > 0, got {duration_s}")
        return cls(np.array([0.0, float(duration_s)]), np.array([bandwidth_mbps, bandwidth_mbps], float),
                   name=name or f"const-{bandwidth_mbps:g}mbps", **props)

    def replace(self, **changes: Any) -> "Trace":
        """A copy with some fields changed (dataclasses.replace)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------- properties
    def __len__(self) -> int:
        return int(self.timestamps_s.size)

    @property
    def start_s(self) -> float:
        return float(self.timestamps_s[0])

    @property
    def duration_s(self) -> float:
        """Length of the trace in seconds (last timestamp minus first)."""
        return float(self.timestamps_s[-1] - self.timestamps_s[0])

    @property
    def interval_s(self) -> np.ndarray:
        """How long each sample holds (the last sample holds for 0 s)."""
        return np.append(np.diff(self.timestamps_s), 0.0)

    @property
    def mean_bandwidth_mbps(self) -> float:
        """Time-weighted mean bandwidth (the sample mean for a zero-length trace)."""
        d = self.duration_s
        if d <= 0:
            return float(np.mean(self.bandwidth_mbps))
        return float(np.sum(self.bandwidth_mbps * self.interval_s) / d)

    @property
    def total_megabits(self) -> float:
        """Bits the link can carry over the whole trace, in Mbit."""
        return float(np.sum(self.bandwidth_mbps * self.interval_s))

    def __repr__(self) -> str:
        props = "".join(f", {k}={getattr(self, k)}" for k in ("delay_ms", "loss_rate", "queue_packets")
                        if getattr(self, k) is not None)
        return (f"Trace(name={self.name!r}, samples={len(self)}, duration_s={self.duration_s:.3f}, "
                f"mean_bandwidth_mbps={self.mean_bandwidth_mbps:.3f}{props})")


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float | np.ndarray) -> np.ndarray | float:
    """Percentile ``q`` (0-100) of ``values`` where each value counts ``weights`` times.

    Falls back to equal weights when all weights are zero.
    """
    values = np.asarray(values, float)
    weights = np.asarray(weights, float)
    if weights.sum() <= 0:
        weights = np.ones_like(values)
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cw = np.cumsum(w)
    target = np.asarray(q, float) / 100.0 * cw[-1]
    idx = np.clip(np.searchsorted(cw, target, side="left"), 0, v.size - 1)
    out = v[idx]
    return float(out) if np.ndim(out) == 0 else out
