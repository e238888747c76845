"""Statistics and graphs of an ``mm-link`` log (ours or Mahimahi's), as ``mm-throughput-graph`` computes them.

Definitions (testbeds.md §1.6, ``mahimahi:scripts/mm-throughput-graph``):

* every event time has the ``# base timestamp`` subtracted (the header is required);
* duration = (last event time - first event time) / 1000 s;
* average capacity = bits of all ``#`` opportunities (1504 bytes each) / duration;
* average throughput = bits of all ``-`` departures / duration (utilisation = throughput / capacity);
* 95th-percentile per-packet queueing delay over the departure delays;
* 95th-percentile signal delay: for every arrival ms ``a = T - DELAY`` keep the smallest DELAY,
  fill ms without one backwards as (next ms's value + 1), take the 95th percentile.

Deviations: Mahimahi's script dies on ``d`` (drop) lines; here they are counted. Our netns link also
writes ``T l PKTS BYTES`` lines (same shape as ``d``) for its random (Bernoulli, ``mm-loss``) losses, which
Mahimahi never logs: on the uplink these packets left the link (they have ``-`` lines) and were lost after
it; on the downlink they were lost before it (no ``+`` line). They are appended when the link closes
(their own time order), so they count as losses but not as link events (duration, first/last time). Percentiles follow
the project's one rule (:func:`foundation.metrics.percentile`, Pantheon's numpy "nearest") where
mm-throughput-graph takes element ``floor(0.95 N)``: at most one rank apart.
The log is reduced in one streaming pass (Pantheon's ``TunnelGraph`` style);
:func:`plot_link_log` draws the throughput and delay graphs separately.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: numpy is imported where it is used
    import numpy as np

from foundation.errors import BadInputError

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from foundation.metrics import percentile
from traces.errors import TraceFormatError


@dataclass
class LinkLog:
    """The events of one log, times in ms relative to the base timestamp.

    opportunity_ms: time of every ``#`` line
    arrivals: (time_ms, size_bytes) of ``+`` lines
    departures: (time_ms, size_bytes, delay_ms) of ``-`` lines
    drops: (time_ms, packets, bytes) of ``d`` lines
    random_losses: (time_ms, packets, bytes) of ``l`` lines (random loss; see the module notes)
    header: the ``#`` header lines, key -> value (e.g. "queue" -> "droptail [packets=20]")
    """

    opportunity_ms: list[int] = field(default_factory=list)
    opportunity_bytes: int = 0
    arrivals: list[tuple[int, int]] = field(default_factory=list)
    departures: list[tuple[int, int, int]] = field(default_factory=list)
    drops: list[tuple[int, int, int]] = field(default_factory=list)
    random_losses: list[tuple[int, int, int]] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    first_ms: int | None = None
    last_ms: int | None = None


@dataclass
class LinkLogStats:
    """mm-throughput-graph's figures for one log.

    duration_s: last event - first event, s
    capacity_mbps: average capacity (``#`` lines), Mbit/s
    throughput_mbps: average departure rate, Mbit/s
    ingress_mbps: average arrival rate, Mbit/s
    utilization: throughput / capacity (0-1; nan without capacity)
    p95_queueing_delay_ms: 95th-percentile per-packet delay inside the link, ms
    p95_signal_delay_ms: 95th-percentile signal delay, ms
    arrived_packets, departed_packets, dropped_packets: counts
    """

    duration_s: float
    capacity_mbps: float
    throughput_mbps: float
    ingress_mbps: float
    utilization: float
    p95_queueing_delay_ms: float
    p95_signal_delay_ms: float
    arrived_packets: int
    departed_packets: int
    dropped_packets: int

    def format(self) -> str:
        return "\n".join([
            f"Average capacity: {self.capacity_mbps:.2f} Mbits/s",
            f"Average throughput: {self.throughput_mbps:.2f} Mbits/s ({100 * self.utilization:.1f}% utilization)",
            f"95th percentile per-packet queueing delay: {self.p95_queueing_delay_ms:.0f} ms",
            f"95th percentile signal delay: {self.p95_signal_delay_ms:.0f} ms",
            f"Duration: {self.duration_s:.3f} s; packets arrived {self.arrived_packets}, "
            f"departed {self.departed_packets}, dropped {self.dropped_packets}",
        ])


def read_link_log(path: str | os.PathLike) -> LinkLog:
    """Parse an mm-link log; errors name the file and line."""
    path = Path(path)
    log = LinkLog()
    base: int | None = None
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith("#"):
                body = line[1:].strip()
                if ":" in body:
                    k, v = body.split(":", 1)
                    log.header[k.strip()] = v.strip()
                    if k.strip() == "base timestamp":
                        try:
                            base = int(v.strip())
                        except ValueError:
                            raise TraceFormatError(f"bad base timestamp {v.strip()!r}", path, lineno) from None
                continue
            parts = line.split()
            if not parts:
                continue
            if base is None:
                raise TraceFormatError("event before the '# base timestamp:' header line (required, as "
                                       "mm-throughput-graph)", path, lineno)
            kind = parts[1] if len(parts) > 1 else ""
            if kind not in ("#", "+", "-", "d", "l"):
                raise TraceFormatError(f"unknown event type {kind!r} (expected #, +, -, d or l)", path, lineno)
            try:
                t = int(parts[0]) - base
                if kind == "#":
                    log.opportunity_ms.append(t)
                    log.opportunity_bytes += int(parts[2])
                elif kind == "+":
                    log.arrivals.append((t, int(parts[2])))
                elif kind == "-":
                    log.departures.append((t, int(parts[2]), int(parts[3])))
                elif kind == "l":
                    log.random_losses.append((t, int(parts[2]), int(parts[3])))
                    continue  # not a link event: first/last time unchanged
                else:
                    log.drops.append((t, int(parts[2]), int(parts[3])))
            except (IndexError, ValueError):
                raise TraceFormatError(f"malformed event line {line.strip()!r} (expected 'T # BYTES', 'T + SIZE', "
                                       "'T - SIZE DELAY', 'T d PKTS BYTES' or 'T l PKTS BYTES')", path, lineno) from None
            if log.first_ms is None:
                log.first_ms = t
            log.last_ms = t
    if base is None:
        raise TraceFormatError("no '# base timestamp:' header line: not an mm-link log", path)
    return log


def _p95(values: list[int]) -> float:
    return percentile(values, 95)


def signal_delays(departures: list[tuple[int, int, int]]) -> list[int]:
    """Mahimahi's signal delay per arrival ms (min delay per ms, gaps filled backwards with +1)."""
    best: dict[int, int] = {}
    for t, _size, delay in departures:
        a = t - delay
        if a not in best or delay < best[a]:
            best[a] = delay
    if not best:
        return []
    lo, hi = min(best), max(best)
    out = [0] * (hi - lo + 1)
    nxt = best[hi]
    for ms in range(hi, lo - 1, -1):
        v = best.get(ms)
        if v is None:
            v = nxt + 1
        out[ms - lo] = v
        nxt = v
    return out


def link_log_stats(log: LinkLog) -> LinkLogStats:
    if log.first_ms is None:
        duration_s = 0.0
    else:
        duration_s = (log.last_ms - log.first_ms) / 1000.0

    def rate(bits: float) -> float:
        return bits / duration_s / 1e6 if duration_s > 0 else math.nan

    cap = rate(log.opportunity_bytes * 8)
    thr = rate(sum(d[1] for d in log.departures) * 8)
    ing = rate(sum(a[1] for a in log.arrivals) * 8)
    util = thr / cap if cap and cap > 0 and not math.isnan(cap) else math.nan
    return LinkLogStats(
        duration_s=duration_s, capacity_mbps=cap, throughput_mbps=thr, ingress_mbps=ing, utilization=util,
        p95_queueing_delay_ms=_p95([d[2] for d in log.departures]),
        p95_signal_delay_ms=_p95(signal_delays(log.departures)),
        arrived_packets=len(log.arrivals), departed_packets=len(log.departures),
        dropped_packets=sum(d[1] for d in log.drops))


def binned_rates_mbps(log: LinkLog, ms_per_bin: int = 1000) -> dict[str, list[float]]:
    """Per-bin capacity / ingress / egress in Mbit/s; bin k covers [k, k+1) x ms_per_bin after the base time."""
    if ms_per_bin < 1:
        raise BadInputError(f"ms_per_bin must be >= 1, got {ms_per_bin}")
    last = max([log.last_ms or 0, 0])
    n = last // ms_per_bin + 1
    cap, ing, egr = [0.0] * n, [0.0] * n, [0.0] * n
    per_opp = log.opportunity_bytes / len(log.opportunity_ms) if log.opportunity_ms else 0
    for t in log.opportunity_ms:
        if t >= 0:
            cap[t // ms_per_bin] += per_opp * 8
    for t, size in log.arrivals:
        if t >= 0:
            ing[t // ms_per_bin] += size * 8
    for t, size, _d in log.departures:
        if t >= 0:
            egr[t // ms_per_bin] += size * 8
    scale = 1e6 * ms_per_bin / 1000.0
    return {"start_s": [k * ms_per_bin / 1000.0 for k in range(n)],
            "capacity_mbps": [c / scale for c in cap], "ingress_mbps": [c / scale for c in ing],
            "throughput_mbps": [c / scale for c in egr]}


def plot_link_log(log: LinkLog, png_path: str | os.PathLike, ms_per_bin: int = 500, title: str = "") -> Path:
    """Throughput (capacity, arrivals, departures) and per-packet delay graphs in one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rates = binned_rates_mbps(log, ms_per_bin)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    x = rates["start_s"]
    ax1.fill_between(x, rates["capacity_mbps"], step="post", alpha=0.3, label="capacity")
    ax1.step(x, rates["ingress_mbps"], where="post", label="traffic ingress")
    ax1.step(x, rates["throughput_mbps"], where="post", label="throughput (egress)")
    ax1.set_ylabel(f"Mbit/s ({ms_per_bin} ms bins)")
    ax1.legend(loc="upper right")
    if log.departures:
        ax2.scatter([(t - d) / 1000.0 for t, _s, d in log.departures], [d for _t, _s, d in log.departures], s=1)
    ax2.set_ylabel("per-packet queueing delay (ms)")
    ax2.set_xlabel("time (s) since base timestamp (delay plotted at arrival)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


@dataclass
class LinkLogArrays:
    """The parts of an mm-link log that per-run metrics need, as numpy arrays (times in ms since the base
    timestamp): every ``#`` opportunity's time, ``+`` arrivals' (time, size), ``-`` departures' (time,
    size, delay), drop counts, random-loss (``l``) counts. Read by :func:`read_link_log_arrays` with regular expressions over the
    whole file (C speed: a 15-s, 100 Mbit/s log in a fraction of a second)."""

    opportunity_ms: "np.ndarray"
    arrival_ms: "np.ndarray"
    arrival_bytes: "np.ndarray"
    departure_ms: "np.ndarray"
    departure_bytes: "np.ndarray"
    departure_delay_ms: "np.ndarray"
    dropped_packets: int
    random_lost_packets: int = 0
    random_lost_bytes: int = 0


def read_link_log_arrays(path: str | os.PathLike) -> LinkLogArrays:
    """Fast reader of an mm-link log for metrics; malformed files raise TraceFormatError naming the file."""
    import re

    import numpy as np
    path = Path(path)
    data = path.read_bytes()
    m = re.search(rb"^# base timestamp: *(-?\d+)\s*$", data, re.M)
    if not m:
        raise TraceFormatError("no '# base timestamp:' header line: not an mm-link log", path)
    base = int(m.group(1))

    def ints(pattern: bytes, groups: int) -> "np.ndarray":
        found = re.findall(pattern, data, re.M)
        if not found:
            return np.zeros((0, groups), np.int64)
        return np.array(found, dtype=np.bytes_).astype(np.int64).reshape(-1, groups)

    opp = ints(rb"^(-?\d+) # \d+\r?$", 1)[:, 0] - base
    arr = ints(rb"^(-?\d+) \+ (\d+)\r?$", 2)
    dep = ints(rb"^(-?\d+) - (\d+) (-?\d+)\r?$", 3)
    drops = ints(rb"^-?\d+ d (\d+) \d+\r?$", 1)
    rand = ints(rb"^-?\d+ l (\d+) (\d+)\r?$", 2)
    return LinkLogArrays(opp, arr[:, 0] - base, arr[:, 1], dep[:, 0] - base, dep[:, 1], dep[:, 2],
                         int(drops.sum()), int(rand[:, 0].sum()), int(rand[:, 1].sum()))
