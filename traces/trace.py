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

Limits every trace obeys (whatever file it came from; docs/security.md):
:data:`MAX_TRACE_DURATION_S`, :data:`MAX_TRACE_SAMPLES`,
:data:`MAX_BANDWIDTH_MBPS`, :data:`MAX_DELAY_MS`, :data:`MAX_QUEUE_PACKETS`.

**How long a run over a trace lasts** is defined once, by
:meth:`Trace.run_duration_s`, for the CC simulator (``genet eval cc``) and
emulation (``genet emulate cc``) alike: the requested duration when one is
given (the trace loops, as Mahimahi loops it, when shorter, and is cut when
longer: :meth:`Trace.looped_to`); otherwise the trace's own length, except for
a trace that only loops (a Mahimahi file, whose last value is a loop period,
not a length), which runs for :data:`DEFAULT_RUN_DURATION_S` (30 s, Pantheon's
default). A run shorter than :data:`MIN_RUN_DURATION_S` (1 s) is refused.

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

from foundation.errors import BadInputError
from traces.errors import TraceFormatError

#: Bytes of one Mahimahi delivery opportunity used for rate conversion: a
#: 1500-byte IP packet (the link itself counts 1504 bytes per opportunity,
#: TUN header included; testbeds.md §1.1).
from foundation.packets import PACKET_BYTES as MAHIMAHI_PACKET_BYTES  # noqa: E402  (defined once)
BITS_PER_OPPORTUNITY = MAHIMAHI_PACKET_BYTES * 8

#: Longest trace (last timestamp minus first) and longest run: one day, in seconds.
MAX_TRACE_DURATION_S = 86_400.0
#: Most samples a trace may hold (also bounds a trace looped to a run's length).
MAX_TRACE_SAMPLES = 10_000_000
#: Highest bandwidth a trace sample may have: 1 Tbit/s.
MAX_BANDWIDTH_MBPS = 1_000_000.0
#: Longest one-way delay a trace may state: 60 s.
MAX_DELAY_MS = 60_000.0
#: Largest bottleneck queue a trace may state, in packets.
MAX_QUEUE_PACKETS = 1_000_000_000
#: A run over a trace that only loops (a Mahimahi file) lasts this long unless asked otherwise:
#: Pantheon's default (``-t 30``).
DEFAULT_RUN_DURATION_S = 30.0
#: A run (simulated or emulated) shorter than this is refused.
MIN_RUN_DURATION_S = 1.0


#: Valid range of each optional link property: (low, high, high included).
LINK_PROPERTY_RANGES = {"delay_ms": (0.0, MAX_DELAY_MS, True), "loss_rate": (0.0, 1.0, False),
                        "queue_packets": (1.0, float(MAX_QUEUE_PACKETS), True)}


def check_link_property(key: str, value: Any, where: Any = None, line: int | None = None,
                        field: str | None = None) -> float | int | None:
    """A trace's ``delay_ms``, ``loss_rate`` or ``queue_packets`` checked (a finite number in its range
    of :data:`LINK_PROPERTY_RANGES`, else a one-line error naming ``where``, ``line`` and ``field``);
    None stays None and a queue is rounded to whole packets."""
    if value is None:
        return None
    lo, hi, hi_ok = LINK_PROPERTY_RANGES[key]
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise TraceFormatError(f"{key} must be a number", where, line, field) from None
    if not (math.isfinite(v) and lo <= v and (v <= hi if hi_ok else v < hi)):
        rng = f"[{lo:g}, {hi:g}{']' if hi_ok else ')'}"
        raise TraceFormatError(f"{key} must be a finite number in {rng}, got {v:.6g}", where, line, field)
    return int(round(v)) if key == "queue_packets" else v


def check_run_duration_s(duration_s: float, name: str = "duration_s") -> float:
    """``duration_s`` as a float when it is a valid run length, else a one-line error naming ``name``."""
    try:
        d = float(duration_s)
    except (TypeError, ValueError):
        raise BadInputError(f"{name} must be a number of seconds, got {duration_s!r}") from None
    given = f"{name} {d:g}" if name.startswith("-") else f"{name}={d:g}"
    if not math.isfinite(d) or d < MIN_RUN_DURATION_S:
        raise BadInputError(f"{given}: a run shorter than {MIN_RUN_DURATION_S:g} s is refused "
                            "(MIN_RUN_DURATION_S): it would measure nothing but start-up")
    if d > MAX_TRACE_DURATION_S:
        raise BadInputError(f"{given}: a run longer than {MAX_TRACE_DURATION_S:g} s (one day, "
                            "MAX_TRACE_DURATION_S) is refused")
    return d


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
        if t.size > MAX_TRACE_SAMPLES:
            raise TraceFormatError(f"{t.size:,} samples, above the limit of {MAX_TRACE_SAMPLES:,} "
                                   "(MAX_TRACE_SAMPLES)", where)
        if t[-1] - t[0] > MAX_TRACE_DURATION_S:
            raise TraceFormatError(f"trace lasts {t[-1] - t[0]:.6g} s, above the limit of {MAX_TRACE_DURATION_S:g} s "
                                   "(one day, MAX_TRACE_DURATION_S)", where)
        if np.any(bw > MAX_BANDWIDTH_MBPS):
            i = int(np.argmax(bw > MAX_BANDWIDTH_MBPS))
            raise TraceFormatError(f"bandwidth {bw[i]:.6g} Mbps at sample {i + 1} is above the limit of "
                                   f"{MAX_BANDWIDTH_MBPS:g} Mbps (MAX_BANDWIDTH_MBPS)", where)
        for key in LINK_PROPERTY_RANGES:
            check_link_property(key, getattr(self, key), where, field=key)

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

    @property
    def loops(self) -> bool:
        """True for a trace that only loops (read from a Mahimahi file: its last value is a loop
        period, not a length), so a run over it lasts DEFAULT_RUN_DURATION_S unless asked otherwise."""
        return self.meta.get("source_format") == "mahimahi"

    def run_duration_s(self, requested_s: float | None = None) -> float:
        """How long a run over this trace lasts, in seconds: the one definition used by the CC
        simulator (``genet eval cc``) and emulation (``genet emulate cc``).

        ``requested_s`` when given (``--duration-s``; the trace loops when shorter and is cut when
        longer, :meth:`looped_to`); else :data:`DEFAULT_RUN_DURATION_S` (30 s, Pantheon's default)
        for a trace that only loops (:attr:`loops`, a Mahimahi file), else the trace's own length.
        A run shorter than :data:`MIN_RUN_DURATION_S` (1 s) or longer than
        :data:`MAX_TRACE_DURATION_S` is refused with a one-line reason."""
        if requested_s is not None:
            return check_run_duration_s(requested_s)
        if self.loops:
            return DEFAULT_RUN_DURATION_S
        d = self.duration_s
        if d < MIN_RUN_DURATION_S:
            where = self.meta.get("path") or self.name or "<trace>"
            raise TraceFormatError(
                f"the trace lasts {d:g} s and a run shorter than {MIN_RUN_DURATION_S:g} s is refused "
                "(MIN_RUN_DURATION_S); ask for a longer run (--duration-s), over which the trace loops", where)
        return d

    def looped_to(self, duration_s: float) -> "Trace":
        """This trace lasting exactly ``duration_s`` seconds: cut when it is longer, looped (as
        Mahimahi loops a trace: the sample at time 0 follows the end) when it is shorter. Runs of
        equal bandwidth are merged when looping, so a constant trace stays two samples."""
        where = self.meta.get("path") or self.name or "<trace>"
        d = float(duration_s)
        if not (math.isfinite(d) and 0 < d <= MAX_TRACE_DURATION_S):
            raise TraceFormatError(f"cannot loop or cut a trace to {duration_s!r} s (expected 0 < s <= "
                                   f"{MAX_TRACE_DURATION_S:g})", where)
        own = self.duration_s
        if d == own:
            return self
        t0 = self.start_s
        t = self.timestamps_s - t0
        bw = self.bandwidth_mbps
        if own <= 0:
            raise TraceFormatError(f"the trace lasts 0 s, so it cannot loop to {d:g} s", where)
        if d > own:
            held = np.diff(t) > 0  # one period's intervals, less those that hold for 0 s
            pt, pbw = t[:-1][held], bw[:-1][held]
            merged = np.append(True, np.diff(pbw) != 0)  # then runs of one bandwidth as one interval
            pt, pbw = pt[merged], pbw[merged]
            loops = int(math.ceil(d / own))
            if np.all(pbw == pbw[0]):
                pt, pbw, loops = pt[:1], pbw[:1], 1
            elif loops * pt.size + 1 > MAX_TRACE_SAMPLES:
                raise TraceFormatError(
                    f"looping this trace ({pt.size} samples every {own:g} s) to {d:g} s needs more than "
                    f"{MAX_TRACE_SAMPLES:,} samples (MAX_TRACE_SAMPLES)", where)
            t = (pt[None, :] + own * np.arange(loops)[:, None]).reshape(-1)
            bw = np.tile(pbw, loops)
        keep = t < d
        new_t = np.append(t[keep], d) + t0
        new_bw = np.append(bw[keep], bw[keep][-1])
        return Trace(new_t, new_bw, name=self.name, delay_ms=self.delay_ms, loss_rate=self.loss_rate,
                     queue_packets=self.queue_packets, meta=dict(self.meta))

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
