"""Mahimahi delivery-opportunity traces (``mm-link`` files).

Semantics follow testbeds.md §1.1 exactly:

* one non-negative integer per line: a millisecond offset at which ONE
  delivery opportunity (1504 bytes on the TUN device, i.e. one 1500-byte IP
  packet) happens; repeated values mean several opportunities in that ms;
* values never decrease, no empty lines, the last value must be > 0;
* the trace loops: after the last entry the schedule restarts with the base
  time advanced by the LAST value (not last + 1). So ``1`` is one opportunity
  every ms (12 Mbps) and ``0 1 2 3 4`` is 5 opportunities every 4 ms (15 Mbps).

:func:`opportunity_times_ms` gives the looped schedule; :func:`read_mahimahi`
turns a file into the equivalent rate :class:`~traces.trace.Trace` (one
steady-state period, binned); :func:`write_mahimahi` does the reverse,
carrying fractional packets over between intervals so that the looped file's
long-run rate equals the trace's mean rate (to within half a packet per period).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from foundation.atomic import atomic_text_writer
from traces.errors import TraceFormatError
from traces.textfile import MAX_TRACE_LINES, describe_token, read_trace_text
from traces.trace import BITS_PER_OPPORTUNITY, MAX_TRACE_DURATION_S, MAX_TRACE_SAMPLES, Trace

#: Default width of the rate bins when reading a Mahimahi file.
DEFAULT_BIN_MS = 1000
#: Largest millisecond value (loop period) a Mahimahi file may hold: one day.
MAX_TRACE_DURATION_MS = int(MAX_TRACE_DURATION_S * 1000)
#: Most delivery opportunities in one period of a Mahimahi file (read or written).
MAX_OPPORTUNITIES = MAX_TRACE_LINES
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = len(str(MAX_TRACE_DURATION_MS))


def parse_mahimahi_schedule(path: str | os.PathLike) -> np.ndarray:
    """Read and validate a Mahimahi file; return its ms timestamps (int64).

    Refused before anything is allocated for them: a value that is not ASCII digits, a value
    above :data:`MAX_TRACE_DURATION_MS` (one day), more than :data:`MAX_OPPORTUNITIES` lines.
    Errors name the file and line and never repeat the line's text (a trace path may be a
    symlink to a file of secrets)."""
    path = Path(path)
    text = read_trace_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline (a file without one also works)
    if not lines:
        raise TraceFormatError("empty Mahimahi trace (no delivery opportunities)", path)
    if len(lines) > MAX_OPPORTUNITIES:
        raise TraceFormatError(f"{len(lines):,} delivery opportunities, above the limit of {MAX_OPPORTUNITIES:,} "
                               "per period (MAX_OPPORTUNITIES)", path)
    values = np.empty(len(lines), dtype=np.int64)
    prev = -1
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            raise TraceFormatError("invalid empty line", path, i + 1)
        if not _DIGITS.fullmatch(s):
            raise TraceFormatError("expected a non-negative integer millisecond timestamp (digits 0-9), got "
                                   f"{describe_token(s)}", path, i + 1)
        if len(s) > _MAX_DIGITS or int(s) > MAX_TRACE_DURATION_MS:
            raise TraceFormatError(f"timestamp above {MAX_TRACE_DURATION_MS:,} ms, the longest trace allowed "
                                   "(one day, MAX_TRACE_DURATION_MS)", path, i + 1)
        v = int(s)
        if v < prev:
            raise TraceFormatError(f"timestamp {v} ms is before the previous one ({prev} ms)", path, i + 1)
        values[i] = prev = v
    if values[-1] <= 0:
        raise TraceFormatError("trace must last for a nonzero amount of time (last timestamp is 0)",
                               path, len(lines))
    return values


def opportunity_times_ms(schedule_ms: np.ndarray, until_ms: int) -> np.ndarray:
    """All delivery-opportunity times in [0, until_ms] of a looping schedule."""
    schedule_ms = np.asarray(schedule_ms, dtype=np.int64)
    period = int(schedule_ms[-1])
    loops = until_ms // period + 1
    times = (schedule_ms[None, :] + period * np.arange(loops, dtype=np.int64)[:, None]).reshape(-1)
    return times[times <= until_ms]


def schedule_to_trace(schedule_ms: np.ndarray, bin_ms: int = DEFAULT_BIN_MS, name: str = "",
                      meta: dict | None = None) -> Trace:
    """The rate trace equivalent to a looping Mahimahi schedule.

    One steady-state period P (= the last value) is binned into ``bin_ms``
    bins (the last one may be shorter; one bin when P < bin_ms). In steady
    state an entry at 0 coincides with the previous period's last value, so
    it is counted at P; every period then holds exactly len(schedule) opportunities.
    """
    schedule_ms = np.asarray(schedule_ms, dtype=np.int64)
    period = int(schedule_ms[-1])
    where = (meta or {}).get("path") or name or "<trace>"
    if not 0 < period <= MAX_TRACE_DURATION_MS:
        raise TraceFormatError(f"loop period of {period} ms is outside 1..{MAX_TRACE_DURATION_MS:,} ms "
                               "(MAX_TRACE_DURATION_MS)", where)
    if period // bin_ms + 2 > MAX_TRACE_SAMPLES:
        raise TraceFormatError(f"a {period} ms period in {bin_ms} ms bins needs more than {MAX_TRACE_SAMPLES:,} "
                               "samples (MAX_TRACE_SAMPLES); use wider bins", where)
    steady = np.where(schedule_ms == 0, period, schedule_ms)
    edges = np.arange(0, period, bin_ms, dtype=np.int64)
    edges = np.append(edges, period)
    # opportunity at ms t belongs to bin (edge_k, edge_{k+1}]
    counts = np.histogram(steady, bins=edges.astype(float) + 0.5)[0] if edges.size > 1 else np.array([])
    # histogram with edges+0.5 puts value t into [e_k+0.5, e_{k+1}+0.5) == (e_k, e_{k+1}] for integers;
    # values <= 0.5 cannot occur (zeros were moved to P).
    width_ms = np.diff(edges).astype(float)
    mbps = counts * BITS_PER_OPPORTUNITY / (width_ms * 1000.0)
    t = edges / 1000.0
    bw = np.append(mbps, mbps[-1])
    return Trace(t, bw, name=name, meta={"source_format": "mahimahi", "opportunities_per_period": int(len(schedule_ms)),
                                        "period_ms": period, **(meta or {})})


def read_mahimahi(path: str | os.PathLike, name: str | None = None, bin_ms: int = DEFAULT_BIN_MS) -> Trace:
    """Read a Mahimahi file as its equivalent rate trace (Mbps per ``bin_ms`` bin)."""
    path = Path(path)
    if bin_ms < 1:
        raise TraceFormatError(f"bin_ms must be >= 1, got {bin_ms}", path)
    schedule = parse_mahimahi_schedule(path)
    return schedule_to_trace(schedule, bin_ms, name=name if name is not None else path.stem,
                             meta={"path": str(path)})


def trace_to_schedule(trace: Trace) -> np.ndarray:
    """Delivery-opportunity ms timestamps for one period of ``trace``.

    The cumulative deliverable bits are carried across sample boundaries (no
    per-interval rounding as in Pensieve's converter). With N = round(total
    bits / 12000) opportunities over the trace's D ms, opportunity k is placed
    at the first ms by which k/N of the trace's capacity has been offered, so
    the last one lands exactly on D: the looping period is D and the long-run
    rate is N·12000 bits / D ms.
    """
    duration_ms = int(round(trace.duration_s * 1000))
    where = trace.meta.get("path") or trace.name
    if duration_ms <= 0:
        raise TraceFormatError("cannot write a Mahimahi trace shorter than 1 ms", where)
    if duration_ms > MAX_TRACE_DURATION_MS:
        raise TraceFormatError(f"cannot write a Mahimahi trace longer than {MAX_TRACE_DURATION_MS:,} ms "
                               "(MAX_TRACE_DURATION_MS)", where)
    total_bits = trace.total_megabits * 1e6
    n = int(round(total_bits / BITS_PER_OPPORTUNITY))
    if n > MAX_OPPORTUNITIES:
        raise TraceFormatError(f"trace carries {n:,} packets in one period, above the limit of {MAX_OPPORTUNITIES:,} "
                               "delivery opportunities of a Mahimahi file (MAX_OPPORTUNITIES)", where)
    if n < 1:
        raise TraceFormatError(
            f"trace carries less than one packet ({total_bits:.0f} bits over {duration_ms} ms); "
            "a Mahimahi file needs at least one delivery opportunity", where)
    t = trace.timestamps_s - trace.timestamps_s[0]
    cum_bits = np.concatenate([[0.0], np.cumsum(trace.bandwidth_mbps[:-1] * np.diff(t))]) * 1e6
    targets = np.arange(1, n + 1) * (total_bits / n)
    # segment containing each target: last breakpoint with cum < target
    seg = np.clip(np.searchsorted(cum_bits, targets, side="left") - 1, 0, len(t) - 2 if len(t) > 1 else 0)
    rate_bps = trace.bandwidth_mbps[seg] * 1e6
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # tiny rates: inf, clipped below
        t_hit = t[seg] + np.where(rate_bps > 0, (targets - cum_bits[seg]) / rate_bps, 0.0)
    t_hit = np.clip(np.nan_to_num(t_hit, nan=t[-1], posinf=t[-1]), 0.0, t[-1])
    ms = np.ceil(np.round(t_hit * 1000.0, 6)).astype(np.int64)
    ms = np.clip(ms, 1, duration_ms)
    ms = np.maximum.accumulate(ms)
    ms[-1] = duration_ms
    return ms


def write_mahimahi(trace: Trace, path: str | os.PathLike) -> None:
    """Write ``trace`` as a Mahimahi file whose looping rate matches the trace."""
    schedule = trace_to_schedule(trace)
    with atomic_text_writer(path) as fh:
        fh.write("\n".join(map(str, schedule.tolist())))
        fh.write("\n")
