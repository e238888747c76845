"""Load-balancing workloads: the LB analogue of a trace (a list of jobs, each an arrival time and a size).

A workload is what the LB simulator (``genet/lb/simulator.py``) consumes and what the real balancer's client
replays open-loop (``balancer/``), so the same jobs run in both.

**Units.** Genet's and Park's LB environments count time in abstract integer units. genet-testbed fixes
**1 time unit = 1 ms** (Genet's mean inter-arrival time ``job_interval`` = 100 is then 100 ms, and a worker of
service rate 1 finishes its largest job, 10,000 work units, in 10 s). Job sizes are in *work units*; a worker of
service rate ``r`` (work units per ms) serves a job of size ``s`` in ``int(s / r)`` ms (Genet's truncation).

**File format** (UTF-8 text, suffix :data:`WORKLOAD_SUFFIX`)::

    # genet-testbed LB workload v1: one job per line, "<arrival_ms> <size_work>"
    37 5120
    112 804.5

* one job per line: its arrival time in ms since the start of the workload (a number >= 0; the arrival times
  are non-decreasing down the file) and its size in work units (a number > 0), separated by blanks or one comma;
* blank lines and lines starting with ``#`` are ignored;
* at least one job, at most :data:`MAX_WORKLOAD_JOBS`.

:func:`read_workload` names the file and line of the first problem (:class:`WorkloadFormatError`, one line,
never echoing the line itself: a path may point at a file of secrets, docs/security.md), :func:`write_workload`
writes the format atomically, :func:`read_workloads` reads every ``*.workload`` file of a directory.

**Generator.** :func:`generate_workload` draws Genet's job stream (``genet-lb-fig-upload/load_balance/
job_generator.py``): per job a size ``int(U(job_size_min, job_size_max))`` (or ``int((Pareto(shape) + 1) x
scale)``, capped at ``job_size_max`` when ``cap_job_size``) and an inter-arrival gap ``int(Exp(job_interval_ms))``;
arrival times are the running sums of the gaps. Differences from Genet, on purpose:

* it is seeded (a :class:`numpy.random.Generator` from the ``seed``); Genet draws from the global
  ``np.random`` state. ``legacy_seed=True`` draws exactly as Genet does after ``np.random.seed(seed)``
  (interleaved size/gap draws from a legacy ``RandomState``), which is how the tests compare our simulator
  with Genet's on the same jobs;
* Genet's ``--param_name NUM_JOBS`` sets ``args.num_jobs``, a field nothing reads (the environment reads
  ``num_stream_jobs``); here ``num_jobs`` is the number of jobs generated.

Standard library and numpy only (the real balancer imports this).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from foundation.atomic import atomic_write_bytes
from traces.errors import TraceFormatError
from traces.textfile import describe_token, read_trace_text, split_lines

#: Suffix of workload files (``--workloads DIR`` reads every ``DIR/*.workload``).
WORKLOAD_SUFFIX = ".workload"
#: Most jobs one workload file may hold (Genet's largest configuration has 10,000).
MAX_WORKLOAD_JOBS = 1_000_000
#: First line :func:`write_workload` writes.
HEADER = '# genet-testbed LB workload v1: one job per line, "<arrival_ms> <size_work>"'
JOB_DISTRIBUTIONS = ("uniform", "pareto")
_FIELD_SEPARATOR = re.compile(r"\s*,\s*|\s+")


class WorkloadFormatError(TraceFormatError):
    """A workload file or workload value is malformed (``path:line: what``)."""


@dataclass(frozen=True, eq=False)
class Workload:
    """One workload: jobs in arrival order.

    name: label (the file's stem for files), e.g. "seed-3"
    arrival_times_ms: (n,) float64 arrival times, ms since the workload's start, non-decreasing, >= 0
    job_sizes_work: (n,) float64 job sizes in work units, > 0
    """

    name: str
    arrival_times_ms: np.ndarray
    job_sizes_work: np.ndarray
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.arrival_times_ms, dtype=np.float64).reshape(-1)
        s = np.ascontiguousarray(self.job_sizes_work, dtype=np.float64).reshape(-1)
        where = self.source or f"workload {self.name!r}"
        if t.shape != s.shape:
            raise WorkloadFormatError(f"{t.size} arrival times but {s.size} job sizes", where)
        if t.size == 0:
            raise WorkloadFormatError("no jobs", where)
        if t.size > MAX_WORKLOAD_JOBS:
            raise WorkloadFormatError(f"{t.size:,} jobs, above the limit of {MAX_WORKLOAD_JOBS:,} "
                                      "(MAX_WORKLOAD_JOBS)", where)
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(s))):
            raise WorkloadFormatError("arrival times and job sizes must be finite numbers", where)
        if t[0] < 0 or np.any(np.diff(t) < 0):
            raise WorkloadFormatError("arrival times must be >= 0 and non-decreasing", where)
        if np.any(s <= 0):
            raise WorkloadFormatError("job sizes must be > 0 work units", where)
        t.setflags(write=False)
        s.setflags(write=False)
        object.__setattr__(self, "arrival_times_ms", t)
        object.__setattr__(self, "job_sizes_work", s)

    @property
    def n_jobs(self) -> int:
        return int(self.arrival_times_ms.size)

    @property
    def duration_ms(self) -> float:
        """The last arrival time (ms)."""
        return float(self.arrival_times_ms[-1])

    @property
    def total_work(self) -> float:
        return float(self.job_sizes_work.sum())

    def head(self, n_jobs: int) -> "Workload":
        """The first ``n_jobs`` jobs."""
        return replace(self, arrival_times_ms=self.arrival_times_ms[:n_jobs],
                       job_sizes_work=self.job_sizes_work[:n_jobs])


@dataclass(frozen=True)
class WorkloadConfig:
    """How :func:`generate_workload` draws a job stream (defaults: Genet's LB ``param.py``).

    num_jobs: number of jobs (Genet ``num_stream_jobs``; 2000)
    job_interval_ms: mean of the exponential inter-arrival gap, ms (Genet ``job_interval``; 100)
    job_distribution: "uniform" or "pareto" ("uniform")
    job_size_min_work / job_size_max_work: uniform size bounds, work units (10, 10000)
    pareto_shape / pareto_scale_work: Pareto sizes ``(Pareto(shape) + 1) x scale`` (2.0, 100.0)
    cap_job_size: cap sizes at ``job_size_max_work`` (Genet ``cap_job_size``; False)
    """

    num_jobs: int = 2000
    job_interval_ms: float = 100.0
    job_distribution: str = "uniform"
    job_size_min_work: float = 10.0
    job_size_max_work: float = 10000.0
    pareto_shape: float = 2.0
    pareto_scale_work: float = 100.0
    cap_job_size: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, what: str) -> WorkloadFormatError:
            return WorkloadFormatError(f"{what}, got {getattr(self, name)!r}", "workload config", field=name)
        if isinstance(self.num_jobs, bool) or not isinstance(self.num_jobs, (int, np.integer)) \
                or not 1 <= self.num_jobs <= MAX_WORKLOAD_JOBS:
            raise bad("num_jobs", f"must be an integer in [1, {MAX_WORKLOAD_JOBS}]")
        for name in ("job_interval_ms", "job_size_min_work", "job_size_max_work", "pareto_shape",
                     "pareto_scale_work"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) or v <= 0:
                raise bad(name, "must be a finite number > 0")
        if self.job_size_min_work > self.job_size_max_work:
            raise bad("job_size_min_work", f"must be <= job_size_max_work ({self.job_size_max_work:g})")
        if self.job_distribution not in JOB_DISTRIBUTIONS:
            raise bad("job_distribution", f"must be one of {', '.join(JOB_DISTRIBUTIONS)}")
        if self.job_distribution == "uniform" and self.job_size_max_work < 1:
            raise bad("job_size_max_work", "must be >= 1 for uniform sizes (sizes are truncated to integers)")


def park_workload_config() -> WorkloadConfig:
    """Park's defaults (``park/param.py``): 1000 jobs, Pareto(1.5) x 100 sizes, Exp(55) ms gaps."""
    return WorkloadConfig(num_jobs=1000, job_interval_ms=55.0, job_distribution="pareto", pareto_shape=1.5,
                          pareto_scale_work=100.0)


def generate_workload(config: WorkloadConfig | None = None, seed: int | np.random.Generator = 0, *,
                      name: str | None = None, legacy_seed: bool = False) -> Workload:
    """Genet's job stream (see the module docstring), seeded.

    seed: an integer or a :class:`numpy.random.Generator` (drawn from, so consecutive calls differ)
    legacy_seed: draw as Genet does after ``np.random.seed(seed)`` (an integer seed; slow, per-job loop)
    """
    cfg = config or WorkloadConfig()
    n = int(cfg.num_jobs)
    if legacy_seed:
        if not isinstance(seed, (int, np.integer)):
            raise WorkloadFormatError("legacy_seed needs an integer seed", "workload config", field="seed")
        rs = np.random.RandomState(int(seed))
        sizes = np.empty(n)
        gaps = np.empty(n)
        for i in range(n):
            if cfg.job_distribution == "uniform":
                sizes[i] = int(rs.uniform(cfg.job_size_min_work, cfg.job_size_max_work))
            else:
                sizes[i] = int((rs.pareto(cfg.pareto_shape) + 1) * cfg.pareto_scale_work)
            if cfg.cap_job_size:
                sizes[i] = min(int(cfg.job_size_max_work), sizes[i])
            gaps[i] = int(rs.exponential(cfg.job_interval_ms))
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))
        if cfg.job_distribution == "uniform":
            sizes = np.floor(rng.uniform(cfg.job_size_min_work, cfg.job_size_max_work, n))
        else:
            sizes = np.floor((rng.pareto(cfg.pareto_shape, n) + 1.0) * cfg.pareto_scale_work)
        if cfg.cap_job_size:
            sizes = np.minimum(np.floor(cfg.job_size_max_work), sizes)
        gaps = np.floor(rng.exponential(cfg.job_interval_ms, n))
    # a size of 0 (uniform bounds below 1) would be no job at all: at least 1 work unit
    sizes = np.maximum(sizes, 1.0)
    label = name if name is not None else (f"seed-{int(seed)}" if isinstance(seed, (int, np.integer)) else "generated")
    return Workload(label, np.cumsum(gaps), sizes)


def _parse_number(token: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise WorkloadFormatError(f"{what} is not a number ({describe_token(token)})", path, line) from None
    if not math.isfinite(value):
        raise WorkloadFormatError(f"{what} is not a finite number", path, line)
    return value


def parse_workload_text(text: str, path: str | os.PathLike = "<workload>", name: str | None = None) -> Workload:
    """A :class:`Workload` from the text of a workload file (errors name ``path:line``)."""
    path = Path(path)
    times: list[float] = []
    sizes: list[float] = []
    last = 0.0
    for lineno, raw in enumerate(split_lines(text), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _FIELD_SEPARATOR.split(stripped)
        if len(fields) != 2:
            raise WorkloadFormatError(f"expected 2 fields '<arrival_ms> <size_work>', got {len(fields)}",
                                      path, lineno)
        t = _parse_number(fields[0], path, lineno, "arrival time (field 1)")
        s = _parse_number(fields[1], path, lineno, "job size (field 2)")
        if t < 0:
            raise WorkloadFormatError(f"arrival time {t:g} ms is negative", path, lineno)
        if t < last:
            raise WorkloadFormatError(f"arrival time {t:g} ms is before the previous job's ({last:g} ms); "
                                      "arrival times must be non-decreasing", path, lineno)
        if s <= 0:
            raise WorkloadFormatError(f"job size {s:g} work units must be > 0", path, lineno)
        if len(times) >= MAX_WORKLOAD_JOBS:
            raise WorkloadFormatError(f"more than {MAX_WORKLOAD_JOBS:,} jobs (MAX_WORKLOAD_JOBS)", path, lineno)
        last = t
        times.append(t)
        sizes.append(s)
    if not times:
        raise WorkloadFormatError("no jobs (every line is blank or a comment)", path)
    return Workload(name if name is not None else path.stem, np.asarray(times), np.asarray(sizes),
                    source=str(path))


def read_workload(path: str | os.PathLike, name: str | None = None) -> Workload:
    """Read a workload file (see the module docstring); :class:`WorkloadFormatError` names file and line."""
    path = Path(path)
    try:
        text = read_trace_text(path)
    except WorkloadFormatError:
        raise
    except TraceFormatError as exc:
        raise WorkloadFormatError(exc.reason, exc.path, exc.line) from None
    return parse_workload_text(text, path, name)


def format_number(x: float) -> str:
    """Integers without a decimal point; other values with repr precision (round-trips exactly)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def write_workload(workload: Workload, path: str | os.PathLike) -> Path:
    """Write ``workload`` to ``path`` (atomically); returns the path. :func:`read_workload` reads it back exactly."""
    path = Path(path)
    lines = [HEADER]
    lines += [f"{format_number(t)} {format_number(s)}"
              for t, s in zip(workload.arrival_times_ms.tolist(), workload.job_sizes_work.tolist())]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def list_workload_files(directory: str | os.PathLike) -> list[Path]:
    """The ``*.workload`` files of a directory, sorted by name (one-line error when there are none)."""
    d = Path(directory)
    if not d.is_dir():
        raise WorkloadFormatError("not a directory of workload files", d)
    files = sorted(p for p in d.iterdir() if p.suffix == WORKLOAD_SUFFIX and p.is_file()
                   and not p.name.startswith("."))
    if not files:
        raise WorkloadFormatError(f"no *{WORKLOAD_SUFFIX} files in the directory", d)
    return files


def read_workloads(directory: str | os.PathLike) -> list[Workload]:
    """Every workload of a directory (:func:`list_workload_files`), in name order."""
    return [read_workload(p) for p in list_workload_files(directory)]


__all__ = ["Workload", "WorkloadConfig", "WorkloadFormatError", "generate_workload", "park_workload_config",
           "read_workload", "parse_workload_text", "write_workload", "read_workloads", "list_workload_files",
           "WORKLOAD_SUFFIX", "MAX_WORKLOAD_JOBS", "HEADER"]
