"""What the balancer knows of its workers, and what a decision sees: :class:`WorkerSpec` (address, declared
rate), :class:`WorkerView` (the jobs it dispatched there and has not seen finish), :class:`BalancerView` (every
worker's view and the time), and the ``decide(view, job_size) -> worker index`` signature (:data:`Decide`).

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from balancer.wire import TIME_UNIT_MS
from foundation.errors import BadInputError


@dataclass(frozen=True)
class WorkerSpec:
    """A worker as the balancer knows it: address, its declared service rate (work units per time unit: the
    rule-based policies that use rates, e.g. shortest expected delay, read it), a name for records."""

    host: str
    port: int
    rate: float
    name: str = ""

    @classmethod
    def parse(cls, text: str, index: int = 0) -> "WorkerSpec":
        """``HOST:PORT:RATE`` (e.g. ``10.0.0.2:7000:0.5``)."""
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[0]:
            raise BadInputError(f"--worker {text!r}: expected HOST:PORT:RATE, e.g. 127.0.0.1:7000:0.5")
        try:
            port, rate = int(parts[1]), float(parts[2])
        except ValueError:
            raise BadInputError(f"--worker {text!r}: PORT must be an integer and RATE a number") from None
        if not 0 < port < 65536:
            raise BadInputError(f"--worker {text!r}: port must be 1-65535")
        if not (0 < rate < float("inf")):
            raise BadInputError(f"--worker {text!r}: rate must be a positive number")
        return cls(parts[0], port, rate, f"w{index}")


@dataclass
class WorkerView:
    """What the balancer sees of one worker: the jobs it dispatched there and has not seen finish."""

    index: int
    spec: WorkerSpec
    alive: bool = True
    queued: dict = field(default_factory=dict)      # job id -> size, dispatched and not yet started (FIFO)
    in_service: int | None = None                   # the job reported started and not yet finished
    in_service_size: float = 0.0
    in_service_since_ms: float | None = None
    finished: int = 0
    busy_ms: float = 0.0                            # the sum of its finished jobs' service times
    died_ms: float | None = None
    died_reason: str | None = None

    @property
    def queued_work(self) -> float:
        """Work units dispatched here and not yet started (Genet's observation: the queue's work)."""
        return float(sum(self.queued.values()))

    @property
    def outstanding_work(self) -> float:
        """Work units dispatched and not seen finish (queue + the job in service, whole)."""
        return self.queued_work + (self.in_service_size if self.in_service is not None else 0.0)

    def remaining_work(self, now_ms: float, time_unit_ms: float) -> float:
        """Queued work plus the estimated remainder of the job in service (its size minus what the worker's
        rate has done since it started)."""
        rest = 0.0
        if self.in_service is not None and self.in_service_since_ms is not None:
            done = (now_ms - self.in_service_since_ms) / time_unit_ms * self.spec.rate
            rest = max(0.0, self.in_service_size - done)
        return self.queued_work + rest

    @property
    def n_jobs(self) -> int:
        """Jobs dispatched here and not seen finish."""
        return len(self.queued) + (self.in_service is not None)


@dataclass
class BalancerView:
    """The balancer's view when it decides: every worker's :class:`WorkerView`, the time (ms since start)."""

    workers: list[WorkerView]
    now_ms: float
    time_unit_ms: float = TIME_UNIT_MS

    @property
    def rates(self) -> list[float]:
        return [w.spec.rate for w in self.workers]

    @property
    def alive(self) -> list[bool]:
        return [w.alive for w in self.workers]


#: ``decide(view, job_size) -> worker index``
Decide = Callable[[BalancerView, float], int]




__all__ = ["WorkerSpec", "WorkerView", "BalancerView", "Decide"]
