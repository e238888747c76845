"""Summary statistics of a trace set (a directory of traces is a named set)."""

from __future__ import annotations

from foundation.errors import BadInputError

from dataclasses import asdict, dataclass

import numpy as np

from traces.trace import Trace, weighted_percentile


@dataclass(frozen=True)
class DatasetStats:
    """Bandwidth figures are time-weighted over all traces pooled (every second
    of every trace counts once); ``per_trace_mean_*`` describe trace means."""

    name: str
    count: int
    total_duration_s: float
    mean_duration_s: float
    mean_bandwidth_mbps: float
    median_bandwidth_mbps: float
    p10_bandwidth_mbps: float
    p90_bandwidth_mbps: float
    min_trace_mean_mbps: float
    max_trace_mean_mbps: float
    mean_delay_ms: float | None

    def as_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        lines = [
            f"dataset           {self.name}",
            f"traces            {self.count}",
            f"total duration    {self.total_duration_s:,.1f} s ({self.total_duration_s / 3600:.2f} h); "
            f"mean {self.mean_duration_s:.1f} s per trace",
            f"bandwidth (Mbps)  mean {self.mean_bandwidth_mbps:.3f}  median {self.median_bandwidth_mbps:.3f}  "
            f"p10 {self.p10_bandwidth_mbps:.3f}  p90 {self.p90_bandwidth_mbps:.3f}",
            f"trace means       {self.min_trace_mean_mbps:.3f} .. {self.max_trace_mean_mbps:.3f} Mbps",
        ]
        if self.mean_delay_ms is not None:
            lines.append(f"one-way delay     mean {self.mean_delay_ms:.1f} ms (traces that carry one)")
        return "\n".join(lines)


def dataset_stats(traces: list[Trace], name: str = "") -> DatasetStats:
    if not traces:
        raise BadInputError("no traces to summarise")
    bw = np.concatenate([t.bandwidth_mbps for t in traces])
    w = np.concatenate([t.interval_s for t in traces])
    durations = np.array([t.duration_s for t in traces])
    means = np.array([t.mean_bandwidth_mbps for t in traces])
    delays = [t.delay_ms for t in traces if t.delay_ms is not None]
    total = float(durations.sum())
    mean_bw = float((bw * w).sum() / w.sum()) if w.sum() > 0 else float(bw.mean())
    p10, p50, p90 = weighted_percentile(bw, w, [10, 50, 90])
    return DatasetStats(name=name, count=len(traces), total_duration_s=total, mean_duration_s=float(durations.mean()),
                        mean_bandwidth_mbps=mean_bw, median_bandwidth_mbps=float(p50),
                        p10_bandwidth_mbps=float(p10), p90_bandwidth_mbps=float(p90),
                        min_trace_mean_mbps=float(means.min()), max_trace_mean_mbps=float(means.max()),
                        mean_delay_ms=float(np.mean(delays)) if delays else None)
