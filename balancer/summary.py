"""The summary of a real-server run: every job accounted for, and the LB use case's columns.

From the client's record (one :class:`balancer.client.ClientJob` per workload job) and the balancer's run record
(:class:`balancer.server.RunRecord` as JSON):

* accounting: ``jobs`` = ``jobs_finished`` + ``jobs_failed`` always (a job with no answer is failed with that
  reason), ``failure_reasons`` (count x reason), the workers that died (``dead_workers``, with the reason), the
  jobs each worker finished (``jobs_per_worker``, worker 0 first);
* the LB columns (:data:`genet.lb.metrics.COLUMNS`), computed by the one definition the simulator uses,
  :func:`genet.lb.metrics.metrics_from_jobs`, from per-job times in workload ms (wall-clock ms / the run's
  ``time_unit_ms``): arrival = when the client sent the job, finish = when its answer reached the client (both on
  the client's clock), start = finish - the service time the worker measured, busy time per worker = the sum of
  the service times it measured. A job's completion time thus holds what the simulator does not have: the links'
  delays there and back, the balancer's decision, the processes' scheduling.

numpy only.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from balancer.client import ClientJob
from balancer.wire import TIME_UNIT_MS


def job_times(jobs: Sequence[ClientJob], time_unit_ms: float = TIME_UNIT_MS) -> dict:
    """Per job (workload ms; NaN where it has none): ``arrival_ms`` (sent), ``start_ms``, ``finish_ms`` (answered,
    finished jobs only), ``worker`` (-1: never dispatched)."""
    nan = float("nan")
    arrival, start, finish, worker = [], [], [], []
    for j in jobs:
        arrival.append((j.sent_ms if j.sent_ms is not None else j.arrival_ms) / time_unit_ms)
        ok = j.status == "finished" and j.answered_ms is not None and j.sent_ms is not None
        f = j.answered_ms / time_unit_ms if ok else nan
        finish.append(f)
        start.append(f - (j.service_ms or 0.0) / time_unit_ms if ok else nan)
        worker.append(j.worker if j.worker is not None else -1)
    return {"arrival_ms": np.array(arrival), "start_ms": np.array(start), "finish_ms": np.array(finish),
            "worker": np.array(worker, dtype=np.int64)}


def summarize(jobs: Sequence[ClientJob], record: dict | None, n_workers: int,
              time_unit_ms: float = TIME_UNIT_MS) -> dict:
    """The row of one run (see the module docstring)."""
    from genet.lb.metrics import metrics_from_jobs
    t = job_times(jobs, time_unit_ms)
    busy = None
    if record is not None and record.get("workers"):
        busy = np.zeros(n_workers)
        for w in record["workers"]:
            busy[int(w["index"])] = float(w.get("busy_ms") or 0.0) / time_unit_ms
    answered = [j.answered_ms for j in jobs if j.answered_ms is not None]
    end_ms = max(answered) / time_unit_ms if answered else None
    row = metrics_from_jobs(t["arrival_ms"], t["start_ms"], t["finish_ms"], t["worker"], n_workers, end_ms=end_ms,
                            busy_ms=busy)
    failed = [j for j in jobs if j.status != "finished"]
    row["jobs_failed"] = len(failed)
    done = t["worker"][np.isfinite(t["finish_ms"])]
    row["jobs_per_worker"] = " ".join(str(int(np.sum(done == i))) for i in range(n_workers))
    reasons = Counter(_short(j.reason) for j in failed)
    row["failure_reasons"] = "; ".join(f"{c} x {r}" for r, c in reasons.most_common())
    row["dead_workers"] = ""
    if record is not None:
        dead = [w for w in record.get("workers", []) if not w.get("alive", True)]
        row["dead_workers"] = "; ".join(str(w.get("died_reason")) for w in dead)
        row["decide_p99_us"] = record.get("decide_p99_us")
    return row


def _short(reason: str | None) -> str:
    return (reason or "unknown")[:200]


def accounting_problems(jobs: Sequence[ClientJob], n_workload_jobs: int) -> list[str]:
    """What is wrong with a run's account (empty: every workload job has exactly one final record, and every
    failed job its reason)."""
    problems = []
    ids = sorted(j.id for j in jobs)
    if ids != list(range(n_workload_jobs)):
        problems.append(f"the record holds {len(ids)} jobs ({len(set(ids))} distinct) for a workload of "
                        f"{n_workload_jobs}")
    if any(j.status not in ("finished", "failed") for j in jobs):
        problems.append("a job has no final status")
    if any(not j.reason for j in jobs if j.status == "failed"):
        problems.append("a failed job has no reason")
    return problems


__all__ = ["summarize", "job_times", "accounting_problems"]
