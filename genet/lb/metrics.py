"""LB result columns (:data:`COLUMNS`) and the one way to compute them from jobs' records.

Time: Genet's and Park's LB time unit is abstract; genet-testbed takes **1 unit = 1 ms** (``traces/workload.py``),
so a completion time of 1,500 units is 1.5 s. The simulator (``genet/lb/simulator.py``) and the real balancer
(``balancer/``) both call :func:`metrics_from_jobs` with per-job arrival, start and finish times (ms) and workers:

* completion time (sojourn) of a job: finish - arrival;
* slowdown of a job: its completion time / its service time (finish - start, at least 1 ms): 1 when it never
  waited;
* utilisation of a worker: its busy time (sum of its jobs' service times) / the run's span (the first arrival to
  the last event);
* ``reward``: the episode's return, ``-sum(dt x jobs in the system)`` in ms x jobs: minus the total completion time
  when every job finished (Genet's LB README reports it / 1e9).

numpy only.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from foundation.metrics import Column, column_names, percentile

COLUMNS = (
    Column("reward", "ms x jobs", "reward",
           "the episode's return: -sum(dt x jobs in the system) = -total completion time when drained"),
    Column("mean_completion_time_s", "s", "mean completion time",
           "mean of finish - arrival over finished jobs (1 Genet time unit = 1 ms)"),
    Column("p95_completion_time_s", "s", "p95 completion time",
           "95th percentile of finish - arrival (foundation.metrics.percentile)", table=False),
    Column("p95_slowdown", "", "p95 slowdown",
           "95th percentile of completion time / service time (>= 1)"),
    Column("mean_slowdown", "", "mean slowdown", "mean of completion time / service time", table=False),
    Column("mean_utilisation", "", "mean utilisation",
           "mean over workers of busy time / the run's span (0-1)"),
    Column("min_utilisation", "", "min utilisation", "least busy worker's utilisation (0-1)", table=False),
    Column("max_utilisation", "", "max utilisation", "busiest worker's utilisation (0-1)", table=False),
    Column("jobs_finished", "jobs", "jobs finished", "jobs done by the end of the run", table=False),
    Column("jobs", "jobs", "jobs", "jobs of the workload", table=False),
)
COLUMN_NAMES = column_names(COLUMNS)
#: Beside :data:`COLUMNS` in every row: each worker's utilisation, space-separated, worker 0 first.
PER_WORKER_FIELD = "worker_utilisation"


def metrics_from_jobs(arrival_ms: Sequence[float], start_ms: Sequence[float], finish_ms: Sequence[float],
                      worker: Sequence[int], n_workers: int, *, reward: float | None = None,
                      end_ms: float | None = None, busy_ms: Sequence[float] | None = None) -> dict[str, Any]:
    """The :data:`COLUMNS` (plus :data:`PER_WORKER_FIELD`) of one run from its jobs' records.

    arrival_ms / start_ms / finish_ms: per job, ms (NaN: never started / not finished)
    worker: per job, the worker it went to (-1: never dispatched)
    reward: the run's return (None: minus the total completion time of the finished jobs)
    end_ms: the run's last event (None: the last finish, else the last arrival)
    busy_ms: per worker busy time (None: the sum of its finished jobs' service times)
    """
    arrival = np.asarray(arrival_ms, dtype=np.float64)
    start = np.asarray(start_ms, dtype=np.float64)
    finish = np.asarray(finish_ms, dtype=np.float64)
    wk = np.asarray(worker, dtype=np.int64)
    done = np.isfinite(finish) & np.isfinite(start)
    if end_ms is not None:
        done &= finish <= end_ms
    sojourn = finish[done] - arrival[done]
    service = np.maximum(finish[done] - start[done], 1.0)
    slowdown = sojourn / service
    if end_ms is None:
        end_ms = float(np.max(finish[done])) if done.any() else float(np.max(arrival)) if arrival.size else 0.0
    span = max(float(end_ms) - (float(arrival.min()) if arrival.size else 0.0), 1e-9)
    if busy_ms is None:
        busy = np.zeros(int(n_workers))
        np.add.at(busy, wk[done], finish[done] - start[done])
    else:
        busy = np.asarray(busy_ms, dtype=np.float64)
    util = np.minimum(busy / span, 1.0) if int(n_workers) else np.zeros(0)

    def mean(x: np.ndarray) -> float:
        return float(np.mean(x)) if x.size else math.nan
    return {
        "reward": float(reward) if reward is not None else -float(sojourn.sum()),
        "mean_completion_time_s": mean(sojourn) / 1000.0,
        "p95_completion_time_s": percentile(sojourn, 95) / 1000.0,
        "p95_slowdown": percentile(slowdown, 95),
        "mean_slowdown": mean(slowdown),
        "mean_utilisation": mean(util),
        "min_utilisation": float(util.min()) if util.size else math.nan,
        "max_utilisation": float(util.max()) if util.size else math.nan,
        "jobs_finished": int(done.sum()),
        "jobs": int(arrival.size),
        PER_WORKER_FIELD: " ".join(f"{u:.4f}" for u in util),
    }


def summarize(result: Any) -> dict[str, Any]:
    """The :data:`COLUMNS` of a simulated episode (a :class:`genet.lb.simulator.EpisodeResult`)."""
    return metrics_from_jobs(result.workload.arrival_times_ms, result.start_ms, result.finish_ms, result.worker,
                             len(result.service_rates), reward=result.reward, end_ms=result.end_ms,
                             busy_ms=None)


def reward(result: Any) -> float:
    """The reward of an episode (the use case's ``reward`` definition): its return, ms x jobs."""
    return float(result.reward)


__all__ = ["COLUMNS", "COLUMN_NAMES", "PER_WORKER_FIELD", "metrics_from_jobs", "summarize", "reward"]
