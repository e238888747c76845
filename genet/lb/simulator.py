"""The LB simulator: jobs arrive, a policy sends each to one of ``W`` workers, every worker serves its queue.

**Semantics** (Genet's ``genet-lb-fig-upload/load_balance/``, itself Park's ``park/envs/load_balance/`` plus a
queue shuffle); units of ``traces/workload.py``: time in ms (Genet's abstract integer time unit, taken as 1 ms),
sizes in work units, service rates in work units per ms.

* Events are job arrivals (from the workload) and job completions, popped in time order. At equal times Genet
  pops *arrivals first* (it pushes every arrival at reset, before any completion, and its heap breaks ties by
  push order) and completions in the order they were pushed. Park pushes each arrival lazily, right after the
  previous decision, so at equal times it pops the completions pushed before that decision, then the arrival,
  then the later completions (``event_order="park"``).
* A decision is taken at each arrival: the job joins the chosen worker's queue. A worker that is idle (no job
  in service, or its job in service finishes at this very ms and its completion is not popped yet) takes the
  next job at once: before each dequeue Genet walks the queue from its end and, with probability
  ``queue_shuffle_prob``, swaps position ``i`` with a uniformly random ``j < i`` (``conditional_fy``), then takes
  the head. A job of size ``s`` on a worker of rate ``r`` is served for ``int(s / r)`` ms. At each completion the
  worker takes its next job the same way.
* Reward of a decision: ``-sum(dt x jobs in the system)`` over the events up to the next decision (jobs waiting
  plus jobs in service). A drained episode's return is therefore minus the total sojourn time of its jobs
  (ms x jobs; Genet reports the return / 1e9).
* Testing (``reset_prob == 0``) runs until every job is done. Training episodes end at a horizon drawn as
  ``Geometric(reset_prob)`` ms (Genet's ``generate_coin_flips``): the first event at or past it ends the episode
  (its interval is still counted in the reward) and is not processed.

**Quirks of Genet not copied** (documented here, see also ``traces/workload.py``): Genet's queue shuffle draws from
Python's unseeded ``random`` module, and its job sizes from the global ``np.random``; here every episode is seeded:
its workload from a :class:`numpy.random.Generator`, its shuffles from a per-episode 48-bit linear congruential
stream (java.util.Random's constants) seeded from that Generator, so the same seed gives the same episode bit for
bit, compiled or not. Genet's ``NUM_JOBS`` BO dimension sets a field nothing reads; our ``num_jobs`` dimension
sets the episode's number of jobs.

**Settings**: :data:`GENET` (3 workers of rates 0.5, 1, 2; 2000 jobs of uniform size in [10, 10000]; Exp(100) ms
gaps; shuffle 0.5; Genet's ``lb.genet-3w`` observation) and :data:`PARK` (Park's defaults: 10 workers of rates
0.15 ... 1.05, 1000 Pareto(1.5) x 100 jobs, Exp(55) ms gaps, no shuffle, Park's ``lb.park-10w`` observation,
Park's event order). :func:`setting_from_config` maps a point of ``traces/spaces/lb.json`` to a setting.

**Batched core**: :class:`LbBatch` steps ``B`` independent episodes in lockstep, with the event loop compiled by
numba when it is installed (``genet/abr/jit.py``: plain Python otherwise, the same results). :func:`simulate` runs a
policy over workloads and returns one :class:`EpisodeResult` per workload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from foundation.errors import BadInputError
from genet.abr.jit import jitable, lazy_njit
from genet.lb.observations import LbState, genet_observation, layout_name, observe
from traces.workload import Workload, WorkloadConfig, generate_workload, park_workload_config

EVENT_ORDERS = ("genet", "park")
#: Largest batch :func:`simulate` allocates at once (bytes); more episodes run in consecutive batches.
MAX_BATCH_BYTES = 256 * 1024 * 1024
_LCG_MULT = 0x5DEECE66D
_LCG_INC = 0xB
_LCG_MASK = (1 << 48) - 1


class LbSettingError(BadInputError):
    """An LB setting or config value that cannot be simulated (the message names the field)."""


@dataclass(frozen=True)
class LbSetting:
    """One LB environment.

    name: label ("genet", "park", "rl2-0007")
    service_rates: per worker, work units per ms ((0.5, 1.0, 2.0))
    workload: how episodes' jobs are drawn (:class:`traces.workload.WorkloadConfig`; Genet's defaults)
    queue_shuffle_prob: probability of each swap of the pre-dequeue shuffle, 0-1 (0.5)
    reset_prob: per-ms probability of the geometric training horizon; 0: run until every job is done (0)
    observation: layout kind a learned policy reads: "genet" or "park" ("genet")
    event_order: tie order of arrivals and completions at the same ms: "genet" or "park" ("genet")
    """

    name: str = "genet"
    service_rates: tuple[float, ...] = (0.5, 1.0, 2.0)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    queue_shuffle_prob: float = 0.5
    reset_prob: float = 0.0
    observation: str = "genet"
    event_order: str = "genet"

    def __post_init__(self) -> None:
        rates = tuple(float(r) for r in self.service_rates)
        object.__setattr__(self, "service_rates", rates)
        if not 1 <= len(rates) <= 64:
            raise LbSettingError(f"LB setting {self.name!r}: service_rates needs 1 to 64 workers, got {len(rates)}")
        if not all(math.isfinite(r) and r > 0 for r in rates):
            raise LbSettingError(f"LB setting {self.name!r}: service_rates must be finite and > 0 work units/ms, "
                                 f"got {list(rates)}")
        if not 0.0 <= float(self.queue_shuffle_prob) <= 1.0:
            raise LbSettingError(f"LB setting {self.name!r}: queue_shuffle_prob must be in [0, 1], "
                                 f"got {self.queue_shuffle_prob!r}")
        if not 0.0 <= float(self.reset_prob) < 1.0:
            raise LbSettingError(f"LB setting {self.name!r}: reset_prob must be in [0, 1), got {self.reset_prob!r}")
        if self.observation not in ("genet", "park"):
            raise LbSettingError(f"LB setting {self.name!r}: observation must be 'genet' or 'park', "
                                 f"got {self.observation!r}")
        if self.event_order not in EVENT_ORDERS:
            raise LbSettingError(f"LB setting {self.name!r}: event_order must be one of {EVENT_ORDERS}, "
                                 f"got {self.event_order!r}")

    @property
    def n_workers(self) -> int:
        return len(self.service_rates)

    @property
    def layout(self) -> str:
        """The observation layout a learned policy of this setting reads (``lb.genet-3w``)."""
        return layout_name(self.observation, self.n_workers)

    def workload_for(self, seed: int | np.random.Generator, name: str | None = None) -> Workload:
        return generate_workload(self.workload, seed, name=name)

    def to_dict(self) -> dict:
        from dataclasses import asdict
        d = asdict(self)
        d["service_rates"] = list(self.service_rates)
        return d


#: Genet's LB environment (``genet-lb-fig-upload/param.py``), testing form (every job runs to completion).
GENET = LbSetting()
#: Park's defaults (``park/param.py``).
PARK = LbSetting(name="park", service_rates=(0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.05),
                 workload=park_workload_config(), queue_shuffle_prob=0.0, observation="park", event_order="park")
SETTINGS = {"genet": GENET, "park": PARK}


def named_setting(name: str) -> LbSetting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise LbSettingError(f"unknown LB setting {name!r}; settings are {', '.join(SETTINGS)}") from None


def expand_service_rate(value: float, base_rates: Sequence[float]) -> tuple[float, ...]:
    """The workers' service rates for the config value ``value``: ``base_rates`` scaled so that the middle worker
    (index ``W // 2``) serves at ``value``. Genet's default rates (0.5, 1, 2) give ``(v / 2, v, 2 v)``."""
    base = tuple(float(r) for r in base_rates)
    mid = base[len(base) // 2]
    return tuple(float(value) * r / mid for r in base)


def setting_from_config(config: dict, name: str = "config", base: LbSetting = GENET) -> LbSetting:
    """The setting of a point of ``traces/spaces/lb.json`` (missing dimensions keep ``base``'s values).

    ``service_rate_per_ms`` ``v`` is the middle worker's rate; the others keep the base's ratios
    (:func:`expand_service_rate`: ``(v / 2, v, 2 v)`` on Genet's setting, so the space's default point, v = 1, is
    Genet's default setting; Genet's ``rl_test.py`` BO expanded its ``SERVICE_RATES`` value to ``(v / 3, v, 3 v)``
    instead, which leaves its own default outside the expansion). ``job_size_max_work``, ``job_interval_ms``,
    ``num_jobs`` (rounded) and ``queue_shuffle_prob`` set theirs."""
    known = {"service_rate_per_ms", "job_size_max_work", "job_interval_ms", "num_jobs", "queue_shuffle_prob"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise LbSettingError(f"unknown LB config dimension(s) {unknown}; dimensions are {sorted(known)}")
    wl = base.workload
    kw: dict[str, Any] = {}
    if "job_size_max_work" in config:
        wl = replace(wl, job_size_max_work=float(config["job_size_max_work"]))
    if "job_interval_ms" in config:
        wl = replace(wl, job_interval_ms=float(config["job_interval_ms"]))
    if "num_jobs" in config:
        wl = replace(wl, num_jobs=max(1, int(round(float(config["num_jobs"])))))
    if "service_rate_per_ms" in config:
        v = float(config["service_rate_per_ms"])
        kw["service_rates"] = expand_service_rate(v, base.service_rates)
    if "queue_shuffle_prob" in config:
        kw["queue_shuffle_prob"] = float(config["queue_shuffle_prob"])
    return replace(base, name=name, workload=wl, **kw)


# --------------------------------------------------------------------------------------------------------------
# The compiled core. One episode's state is row ``b`` of the arrays of an LbBatch; see LbBatch for their meaning.

@jitable
def _lcg_next(s):
    """The next state of an episode's 48-bit LCG (java.util.Random's constants)."""
    return (s * 25214903917 + 11) & 281474976710655


@jitable
def _lcg_unit(s):
    """The uniform in [0, 1) that LCG state ``s`` stands for (its top 32 bits)."""
    return (s >> 16) / 4294967296.0


@jitable
def _heap_push(heap_t, heap_c, heap_j, heap_n, b, t, c, j):
    i = heap_n[b]
    heap_n[b] = i + 1
    while i > 0:
        parent = (i - 1) // 2
        pt = heap_t[b, parent]
        if pt < t or (pt == t and heap_c[b, parent] < c):
            break
        heap_t[b, i] = pt
        heap_c[b, i] = heap_c[b, parent]
        heap_j[b, i] = heap_j[b, parent]
        i = parent
    heap_t[b, i] = t
    heap_c[b, i] = c
    heap_j[b, i] = j


@jitable
def _heap_pop(heap_t, heap_c, heap_j, heap_n, b):
    """Remove the top (smallest time, then push counter); returns its job index."""
    top = heap_j[b, 0]
    n = heap_n[b] - 1
    heap_n[b] = n
    if n > 0:
        t = heap_t[b, n]
        c = heap_c[b, n]
        j = heap_j[b, n]
        i = 0
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            child = left
            right = left + 1
            if right < n and (heap_t[b, right] < heap_t[b, left] or
                              (heap_t[b, right] == heap_t[b, left] and heap_c[b, right] < heap_c[b, left])):
                child = right
            ct = heap_t[b, child]
            if t < ct or (t == ct and c < heap_c[b, child]):
                break
            heap_t[b, i] = ct
            heap_c[b, i] = heap_c[b, child]
            heap_j[b, i] = heap_j[b, child]
            i = child
        heap_t[b, i] = t
        heap_c[b, i] = c
        heap_j[b, i] = j
    return top


@jitable
def _process(b, w, now, size, rates, shuffle_p, rng_state, queue, qhead, qtail, queued_work, curr, curr_finish,
             busy_ms, start_ms, finish_ms, counter, heap_t, heap_c, heap_j, heap_n):
    """Genet's ``Worker.process``: an idle worker (or one whose job ends now) takes its next job."""
    if (curr[b, w] < 0 or curr_finish[b, w] <= now) and qtail[b, w] > qhead[b, w]:
        head = qhead[b, w]
        p = shuffle_p[b]
        if p > 0.0:  # the stream's state is a local during the walk (rng_state[b] read and written once)
            length = qtail[b, w] - head
            s = int(rng_state[b])
            for i in range(length - 1, 0, -1):
                s = _lcg_next(s)
                if _lcg_unit(s) < p:
                    s = _lcg_next(s)
                    k = int(_lcg_unit(s) * i)
                    tmp = queue[b, w, head + i]
                    queue[b, w, head + i] = queue[b, w, head + k]
                    queue[b, w, head + k] = tmp
            rng_state[b] = s
        j = queue[b, w, head]
        qhead[b, w] = head + 1
        queued_work[b, w] -= size[b, j]
        duration = math.floor(size[b, j] / rates[b, w])
        start_ms[b, j] = now
        finish_ms[b, j] = now + duration
        busy_ms[b, w] += duration
        curr[b, w] = j
        curr_finish[b, w] = now + duration
        c = counter[b]
        counter[b] = c + 1
        _heap_push(heap_t, heap_c, heap_j, heap_n, b, now + duration, c, j)


@lazy_njit
def _step_batch(actions, active, rewards, done, park_order, arrival_ms, size, n_jobs, rates, shuffle_p, max_time,
                now, next_job, incoming, counter, arrival_counter, rng_state, queue, qhead, qtail, queued_work, curr,
                curr_finish, busy_ms, start_ms, finish_ms, worker_of, n_finished, heap_t, heap_c, heap_j, heap_n):
    """One decision for every active episode with a pending job: dispatch it to ``actions[b]`` and run the events
    up to the next arrival (Genet's ``LoadBalanceEnvironment.step``)."""
    n_workers = queued_work.shape[1]
    for b in range(actions.shape[0]):
        rewards[b] = 0.0
        if not active[b] or done[b] or incoming[b] < 0:
            continue
        w = actions[b]
        j = incoming[b]
        queue[b, w, qtail[b, w]] = j
        qtail[b, w] += 1
        queued_work[b, w] += size[b, j]
        worker_of[b, j] = w
        t_now = now[b]
        _process(b, w, t_now, size, rates, shuffle_p, rng_state, queue, qhead, qtail, queued_work, curr,
                 curr_finish, busy_ms, start_ms, finish_ms, counter, heap_t, heap_c, heap_j, heap_n)
        incoming[b] = -1
        if park_order and next_job[b] < n_jobs[b]:
            arrival_counter[b] = counter[b]
            counter[b] += 1
        reward = 0.0
        while True:
            has_arrival = next_job[b] < n_jobs[b]
            has_completion = heap_n[b] > 0
            if not has_arrival and not has_completion:
                break
            is_arrival = False
            if has_arrival:
                ta = arrival_ms[b, next_job[b]]
                if not has_completion:
                    is_arrival = True
                else:
                    tc = heap_t[b, 0]
                    is_arrival = ta < tc or (ta == tc and arrival_counter[b] < heap_c[b, 0])
            t = arrival_ms[b, next_job[b]] if is_arrival else heap_t[b, 0]
            active_jobs = 0
            for v in range(n_workers):
                active_jobs += qtail[b, v] - qhead[b, v]
                if curr[b, v] >= 0:
                    active_jobs += 1
            reward -= (t - t_now) * active_jobs
            t_now = t
            if is_arrival:
                jn = next_job[b]
                next_job[b] = jn + 1
            else:
                jn = _heap_pop(heap_t, heap_c, heap_j, heap_n, b)
            if t >= max_time[b]:  # the training horizon: this event is not processed
                break
            if is_arrival:
                incoming[b] = jn
                break
            v = worker_of[b, jn]
            n_finished[b] += 1
            if curr[b, v] == jn:
                curr[b, v] = -1
            _process(b, v, t_now, size, rates, shuffle_p, rng_state, queue, qhead, qtail, queued_work, curr,
                     curr_finish, busy_ms, start_ms, finish_ms, counter, heap_t, heap_c, heap_j, heap_n)
        now[b] = t_now
        rewards[b] = reward
        if (incoming[b] < 0 and next_job[b] >= n_jobs[b] and heap_n[b] == 0) or t_now >= max_time[b]:
            done[b] = True


# --------------------------------------------------------------------------------------------------------------

class LbBatch:
    """``n_envs`` LB episodes stepped in lockstep (the batched core).

    n_envs: episodes at once; n_workers: workers of every episode; max_jobs: most jobs of one episode
    event_order: "genet" or "park" (see the module docstring)

    :meth:`load` starts episode ``i`` on a workload (jumping to its first arrival, as Genet's ``reset``);
    :meth:`state` is what every episode's dispatcher sees now (an :class:`LbState`); :meth:`step` dispatches the
    pending job of each active episode and returns its reward; :attr:`done` marks finished episodes;
    :attr:`pending` the episodes waiting for a decision.
    """

    def __init__(self, n_envs: int, n_workers: int, max_jobs: int, event_order: str = "genet") -> None:
        if event_order not in EVENT_ORDERS:
            raise LbSettingError(f"event_order must be one of {EVENT_ORDERS}, got {event_order!r}")
        B, W, N = int(n_envs), int(n_workers), max(1, int(max_jobs))
        self.n_envs, self.n_workers, self.max_jobs = B, W, N
        self.park_order = event_order == "park"
        self.arrival_ms = np.zeros((B, N))
        self.size = np.ones((B, N))
        self.n_jobs = np.zeros(B, np.int64)
        self.rates = np.ones((B, W))
        self.shuffle_p = np.zeros(B)
        self.max_time = np.full(B, np.inf)
        self.now = np.zeros(B)
        self.next_job = np.zeros(B, np.int64)
        self.incoming = np.full(B, -1, np.int64)
        self.counter = np.zeros(B, np.int64)
        self.arrival_counter = np.full(B, -1, np.int64)
        self.rng_state = np.zeros(B, np.int64)
        self.queue = np.zeros((B, W, N), np.int32)
        self.qhead = np.zeros((B, W), np.int64)
        self.qtail = np.zeros((B, W), np.int64)
        self.queued_work = np.zeros((B, W))
        self.curr = np.full((B, W), -1, np.int64)
        self.curr_finish = np.zeros((B, W))
        self.busy_ms = np.zeros((B, W))
        self.start_ms = np.full((B, N), np.nan)
        self.finish_ms = np.full((B, N), np.nan)
        self.worker_of = np.full((B, N), -1, np.int32)
        self.n_finished = np.zeros(B, np.int64)
        self.heap_t = np.zeros((B, N))
        self.heap_c = np.zeros((B, N), np.int64)
        self.heap_j = np.zeros((B, N), np.int64)
        self.heap_n = np.zeros(B, np.int64)
        self.done = np.ones(B, dtype=np.bool_)
        self.first_arrival_ms = np.zeros(B)
        self._rewards = np.zeros(B)
        self._all = np.ones(B, dtype=np.bool_)
        self._core_args = (self.park_order, self.arrival_ms, self.size, self.n_jobs, self.rates, self.shuffle_p,
                           self.max_time, self.now, self.next_job, self.incoming, self.counter, self.arrival_counter,
                           self.rng_state, self.queue, self.qhead, self.qtail, self.queued_work, self.curr,
                           self.curr_finish, self.busy_ms, self.start_ms, self.finish_ms, self.worker_of,
                           self.n_finished, self.heap_t, self.heap_c, self.heap_j, self.heap_n)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_core_args", None)  # views of the arrays above: rebuilt on load
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._core_args = (self.park_order, self.arrival_ms, self.size, self.n_jobs, self.rates, self.shuffle_p,
                           self.max_time, self.now, self.next_job, self.incoming, self.counter, self.arrival_counter,
                           self.rng_state, self.queue, self.qhead, self.qtail, self.queued_work, self.curr,
                           self.curr_finish, self.busy_ms, self.start_ms, self.finish_ms, self.worker_of,
                           self.n_finished, self.heap_t, self.heap_c, self.heap_j, self.heap_n)

    def load(self, i: int, workload: Workload, service_rates: Sequence[float], queue_shuffle_prob: float,
             rng: np.random.Generator, reset_prob: float = 0.0) -> None:
        """Start episode ``i`` on ``workload``: the shuffle stream and the horizon (``Geometric(reset_prob)`` ms;
        0: none) are drawn from ``rng``; time jumps to the first arrival."""
        n = workload.n_jobs
        if n > self.max_jobs:
            raise LbSettingError(f"workload {workload.name!r} has {n} jobs, more than this batch holds "
                                 f"({self.max_jobs})")
        if len(service_rates) != self.n_workers:
            raise LbSettingError(f"{len(service_rates)} service rates for a batch of {self.n_workers} workers")
        self.arrival_ms[i, :n] = workload.arrival_times_ms
        self.size[i, :n] = workload.job_sizes_work
        self.n_jobs[i] = n
        self.rates[i] = service_rates
        self.shuffle_p[i] = float(queue_shuffle_prob)
        self.rng_state[i] = int(rng.integers(0, 1 << 48))
        self.max_time[i] = float(rng.geometric(reset_prob)) if reset_prob > 0 else np.inf
        self.qhead[i] = 0
        self.qtail[i] = 0
        self.queued_work[i] = 0.0
        self.curr[i] = -1
        self.curr_finish[i] = 0.0
        self.busy_ms[i] = 0.0
        self.start_ms[i] = np.nan
        self.finish_ms[i] = np.nan
        self.worker_of[i] = -1
        self.n_finished[i] = 0
        self.heap_n[i] = 0
        self.counter[i] = 1  # Park's initial arrival took counter 0
        self.arrival_counter[i] = -1
        self.now[i] = workload.arrival_times_ms[0]
        self.first_arrival_ms[i] = workload.arrival_times_ms[0]
        self.incoming[i] = 0
        self.next_job[i] = 1
        self.done[i] = False

    @property
    def pending(self) -> np.ndarray:
        """(n_envs,) bool: episodes waiting for a decision."""
        return (self.incoming >= 0) & ~self.done

    def state(self) -> LbState:
        """What each episode's dispatcher sees now (finished episodes: their last state, job size 0)."""
        busy = self.curr >= 0
        jobs = (self.qtail - self.qhead) + busy
        remaining = np.where(busy, np.maximum(self.curr_finish - self.now[:, None], 0.0), 0.0)
        inc = np.maximum(self.incoming, 0)
        job_size = np.where(self.incoming >= 0, self.size[np.arange(self.n_envs), inc], 0.0)
        return LbState(self.queued_work.copy(), jobs, remaining, self.rates.copy(), job_size)

    def step(self, actions: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Dispatch each active pending episode's job to ``actions[b]``; returns the rewards (0 elsewhere)."""
        acts = np.asarray(actions, dtype=np.int64).reshape(-1)
        if acts.shape != (self.n_envs,):
            raise LbSettingError(f"{acts.size} actions for {self.n_envs} episodes")
        act_mask = self._all if active is None else np.asarray(active, dtype=np.bool_)
        use = act_mask & self.pending
        if np.any((acts[use] < 0) | (acts[use] >= self.n_workers)):
            raise LbSettingError(f"an action is not a worker index 0..{self.n_workers - 1}: "
                                 f"{sorted(set(acts[use].tolist()))}")
        _step_batch(acts, act_mask, self._rewards, self.done, *self._core_args)
        return self._rewards.copy()

    def genet_observation(self, i: int = 0) -> np.ndarray:
        """Episode ``i``'s ``lb.genet-Ww`` observation straight from the arrays (what :func:`observe` gives of
        :meth:`state`, without building the whole state: the single-episode environment's fast path)."""
        j = self.incoming[i]
        return genet_observation(self.queued_work[i], self.size[i, j] if j >= 0 else 0.0)

    def truncated(self, i: int) -> bool:
        """Whether episode ``i`` ended at its training horizon (not every job done)."""
        return bool(self.done[i] and self.now[i] >= self.max_time[i])


@dataclass(frozen=True, eq=False)
class EpisodeResult:
    """One simulated episode.

    workload: its jobs; service_rates: work units per ms
    reward: the episode's return (minus total sojourn time when drained), ms x jobs
    decisions: dispatch decisions taken
    start_ms / finish_ms: (n,) per job (NaN: never started / not finished when the episode ended)
    worker: (n,) worker index per job (-1: never dispatched)
    busy_ms: (W,) time each worker spent serving
    end_ms: the episode's last event time; truncated: ended at the training horizon
    """

    workload: Workload
    service_rates: tuple[float, ...]
    reward: float
    decisions: int
    start_ms: np.ndarray
    finish_ms: np.ndarray
    worker: np.ndarray
    busy_ms: np.ndarray
    end_ms: float
    truncated: bool = False

    @property
    def finished(self) -> np.ndarray:
        """(n,) bool: jobs done by the episode's end."""
        return np.isfinite(self.finish_ms) & (self.finish_ms <= self.end_ms)

    @property
    def sojourn_ms(self) -> np.ndarray:
        """Completion time (finish - arrival) of every finished job, ms."""
        f = self.finished
        return self.finish_ms[f] - self.workload.arrival_times_ms[f]


def _result(batch: LbBatch, i: int, workload: Workload, reward: float, decisions: int) -> EpisodeResult:
    n = workload.n_jobs
    return EpisodeResult(workload=workload, service_rates=tuple(batch.rates[i].tolist()), reward=float(reward),
                         decisions=int(decisions), start_ms=batch.start_ms[i, :n].copy(),
                         finish_ms=batch.finish_ms[i, :n].copy(), worker=batch.worker_of[i, :n].astype(np.int64),
                         busy_ms=batch.busy_ms[i].copy(), end_ms=float(batch.now[i]), truncated=batch.truncated(i))


def episode_seeds(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent Generators of one evaluation seed (episode ``k`` uses the ``k``-th)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(int(n))]


def simulate(policy: Any, workloads: Sequence[Workload], setting: LbSetting = GENET,
             seeds: Sequence[int | np.random.Generator] | int = 0, *, layout: str | None = None,
             reset_prob: float | None = None) -> list[EpisodeResult]:
    """Run ``policy`` (a :class:`genet.policy.Policy`) on every workload at once (one batch, ``policy.act``
    batched over the episodes still running); returns one :class:`EpisodeResult` per workload.

    setting: service rates, shuffle probability, event order (its ``workload`` config is not used here)
    seeds: per workload (an int or a Generator; each drives its shuffle stream and horizon), or one int for all
        (spawned per episode with :func:`episode_seeds`)
    layout: what the policy reads (None: ``policy.spec.observation_layout``)
    reset_prob: the training horizon (None: the setting's)
    """
    workloads = list(workloads)
    if not workloads:
        return []
    if isinstance(seeds, (int, np.integer)):
        rngs = episode_seeds(int(seeds), len(workloads))
    else:
        rngs = [s if isinstance(s, np.random.Generator) else np.random.default_rng(int(s)) for s in seeds]
        if len(rngs) != len(workloads):
            raise LbSettingError(f"{len(rngs)} seeds for {len(workloads)} workloads")
    layout = layout or policy.spec.observation_layout
    rp = setting.reset_prob if reset_prob is None else float(reset_prob)
    from genet.lb.registry import LbContext
    policy.bind(LbContext(setting.service_rates))
    out: list[EpisodeResult] = []
    for lo, hi in _memory_groups([w.n_jobs for w in workloads], setting.n_workers):
        group = workloads[lo:hi]
        batch = LbBatch(len(group), setting.n_workers, max(w.n_jobs for w in group), setting.event_order)
        for i, (w, rng) in enumerate(zip(group, rngs[lo:hi])):
            batch.load(i, w, setting.service_rates, setting.queue_shuffle_prob, rng, rp)
        policy.reset()
        returns = np.zeros(len(group))
        decisions = np.zeros(len(group), np.int64)
        while True:
            pending = batch.pending
            if not pending.any():
                break
            actions = policy.act(observe(batch.state(), layout), pending)
            returns += batch.step(actions, pending)
            decisions += pending
        out += [_result(batch, i, w, returns[i], decisions[i]) for i, w in enumerate(group)]
    return out


def no_wait_return(workload: Workload, service_rates: Sequence[float]) -> float:
    """The *no-wait bound*: an upper bound on the drained return of every dispatcher on ``workload`` (ms x jobs),
    LB's stand-in for the optimum CL2 and CL3 compare with (Genet's LB code has none; this is our definition).

    Every job is served the moment it arrives by the fastest worker, as if that worker were free for it alone:
    ``-sum(floor(size / max(service_rates)))`` over the jobs. It bounds every policy because a job's completion
    time (finish - arrival) is at least its service time ``floor(size / rate)`` on the worker it went to, which is
    at least ``floor(size / max rate)``; the drained return is minus the sum of completion times. It is reached
    when the fastest worker is always free at each arrival (light load), and loose under heavy load, where any
    dispatcher must make jobs wait or use slower workers: so ``bound - policy`` is the policy's total waiting plus
    slower-service time, the part of its completion time that a perfect dispatcher could at most remove. Like
    Genet's CC ``trace.optimal_reward`` (an ideal sender at the mean bandwidth and the minimum RTT), it is a closed
    form computable per environment without running a policy, not an achievable optimum."""
    rates = np.asarray(service_rates, dtype=np.float64)
    if rates.size == 0 or not np.all(np.isfinite(rates) & (rates > 0)):
        raise LbSettingError(f"no_wait_return: service rates must be finite and > 0 work units/ms, got "
                             f"{list(rates)}")
    sizes = np.asarray(workload.job_sizes_work, dtype=np.float64)
    return -float(np.sum(np.floor(sizes / float(rates.max()))))


def batch_bytes(n_envs: int, n_workers: int, max_jobs: int) -> int:
    """Memory of an :class:`LbBatch` (its per-job arrays and the per-worker queues), bytes."""
    return int(n_envs) * int(max_jobs) * (4 * int(n_workers) + 8 * 8)


def _memory_groups(n_jobs: Sequence[int], n_workers: int) -> list[tuple[int, int]]:
    """Consecutive groups of episodes whose batch stays within :data:`MAX_BATCH_BYTES` (one episode at least)."""
    groups, lo, longest = [], 0, 0
    for i, n in enumerate(n_jobs):
        longest2 = max(longest, n)
        if i > lo and batch_bytes(i + 1 - lo, n_workers, longest2) > MAX_BATCH_BYTES:
            groups.append((lo, i))
            lo, longest2 = i, n
        longest = longest2
    groups.append((lo, len(n_jobs)))
    return groups


__all__ = ["LbSetting", "LbSettingError", "GENET", "PARK", "SETTINGS", "named_setting", "setting_from_config",
           "expand_service_rate", "batch_bytes", "MAX_BATCH_BYTES",
           "LbBatch", "EpisodeResult", "simulate", "episode_seeds", "no_wait_return", "EVENT_ORDERS"]
