"""Pictures of traces: one trace's bandwidth over time, or a set's bandwidth CDF."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from traces.trace import Trace


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_trace(trace: Trace, out: str | os.PathLike) -> Path:
    """Step plot of bandwidth (Mbps) against time (s)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.step(trace.timestamps_s, trace.bandwidth_mbps, where="post", lw=1.2)
    ax.axhline(trace.mean_bandwidth_mbps, color="C1", ls="--", lw=1,
               label=f"mean {trace.mean_bandwidth_mbps:.2f} Mbps")
    props = [f"{k}={getattr(trace, k):g}" for k in ("delay_ms", "loss_rate", "queue_packets")
             if getattr(trace, k) is not None]
    ax.set_title(trace.name + (f"  ({', '.join(props)})" if props else ""), fontsize=10)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("bandwidth (Mbps)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    path = _save(fig, out)
    plt.close(fig)
    return path


def plot_dataset_cdf(traces: list[Trace], out: str | os.PathLike, name: str = "") -> Path:
    """CDFs over a set: time-weighted bandwidth of all samples, and per-trace mean bandwidth."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    bw = np.concatenate([t.bandwidth_mbps for t in traces])
    w = np.concatenate([t.interval_s for t in traces])
    if w.sum() <= 0:
        w = np.ones_like(bw)
    order = np.argsort(bw)
    ax.plot(bw[order], np.cumsum(w[order]) / w.sum(), label="bandwidth over time (all traces)")
    means = np.sort([t.mean_bandwidth_mbps for t in traces])
    ax.plot(means, np.arange(1, len(means) + 1) / len(means), label="per-trace mean bandwidth")
    from matplotlib.ticker import FuncFormatter
    ax.set_xscale("log")
    ax.set_xlim(left=max(1e-2, float(bw[order][np.searchsorted(np.cumsum(w[order]) / w.sum(), 0.001)]) / 1.5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("bandwidth (Mbps)")
    ax.set_ylabel("CDF")
    ax.set_title(f"{name or 'trace set'}: {len(traces)} traces", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    path = _save(fig, out)
    plt.close(fig)
    return path
