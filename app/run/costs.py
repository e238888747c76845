"""The cost model of a run (docs/cost-model.md): what each planned item costs, in which shape, and how long a
stage takes on W workers.

Every item of the plan with parts (training, simulate, emulate, deploy; app/run/plan.py) gets a :class:`Work`
(the others, one task of their ``est_s``: ``Item.cost``): phases that run one after another, each phase
``tasks`` independent tasks of ``task_s`` seconds. A ``cpu`` task keeps one worker (a core) busy for its
seconds; a ``real`` task (an emulated or deployed run) lasts its seconds of real time whatever the workers and
takes no worker of its own — how many run at once is its phase's ``cap`` (emulated links: the config's
``jobs`` per 2 cores, :func:`links_at_once`; a deploy campaign's paths: one at a time). The per-item figures
are the planner's estimates, kept here, in one place (:data:`TRAIN_STEPS_PER_S`, :data:`TRIAL_ENV_S`,
:data:`SIM_EVAL_S`, ...): ``Work.serial_s`` is the item's ``est_s``, so the plan on one worker is the
`genet run --dry-run` estimate. ``benchmarks/cost_model.py`` measures the same figures on this machine.

What the plan serialises (the :class:`Work` shapes):

* a training run: start-up, then its PPO updates, one chain (rollouts and updates alternate; the measured
  2-worker PPO speed-up is about 1, issue 29, so a run is one worker's work). A curriculum's rounds are
  sequential (train, search, promote, train); in a round the ``random_trials`` random BO trials are
  independent, the GP-guided ones go ``--trial-batch`` at a time (default 1: one after another);
* a simulator evaluation: start-up, then one task per (trace, policy);
* an emulation: start-up, then one real-time run per (trace, policy, repetition), :func:`links_at_once`;
* a deploy campaign: set-up, then its paths' runs back to back per path; paths one after another
  (``parallel = "none"``, today's only mode in a run config) or all at once (``disjoint-paths``);
* the items of one stage are independent of each other (except a `from` trace set, after its source);
  the stages run one after another.

:func:`stage_wall_s` schedules a stage's items on W workers: an item starts when a worker is free (longest
first); it runs its tasks on that worker and on any other worker free at the time (a phase at most ``cap``
at once); a finished task's worker goes to an item waiting to start first, then to the running items' tasks.
Standard library only.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

#: Environment steps per second of one training run (PPO rollouts and updates together), the shipped models'
#: measured rates (models/*/*.json); ABR's rate grows with its vectorised environments up to 10 k steps/s.
TRAIN_STEPS_PER_S = {"abr": 10000.0, "cc": 8000.0, "lb": 15000.0}
#: ABR steps per second per environment below the cap above.
ABR_STEPS_PER_S_PER_ENV = 350.0
#: Seconds to start a training run (imports, environments, the first rollout).
TRAIN_START_S = 6.0
#: Seconds of one BO-trial environment (the model's and the baseline's episodes) per use case.
TRIAL_ENV_S = {"abr": 0.02, "cc": 0.1, "lb": 1.0}
#: Seconds of one simulator evaluation, per trace (or episode) and policy, and a `genet eval`'s start-up.
SIM_EVAL_S = {"abr": 0.01, "cc": 0.05, "lb": 0.02}
SIM_START_S = {"abr": 4.0, "cc": 4.0, "lb": 8.0}
#: An emulated run: its real time x this, plus the command's start-up.
EMU_OVERHEAD = 1.1
EMU_START_S = 5.0
#: Seconds of an LB emulated run beyond its workload (servers up and down).
LB_EMU_RUN_EXTRA_S = 3.0
#: A deploy campaign: set-up (testbed, push), then per run its real time plus this.
DEPLOY_SETUP_S = 30.0
DEPLOY_RUN_EXTRA_S = {"abr": 3.0, "cc": 3.0, "lb": 5.0}
#: Paths a campaign is estimated to cover (the local testbed's three).
DEPLOY_PATHS = 3
#: Cores the runs' `jobs` (emulated links at once) are sized for: this machine's.
JOBS_SIZED_FOR_CORES = 2


@dataclass(frozen=True)
class Phase:
    """``tasks`` independent tasks of ``task_s`` seconds; ``kind`` ``cpu`` (a worker each) or ``real`` (real
    time, no worker); at most ``cap`` at once (0: as many as there are workers; a ``real`` phase needs one)."""
    what: str
    tasks: int
    task_s: float
    kind: str = "cpu"
    cap: int = 0

    def __post_init__(self):
        if self.kind not in ("cpu", "real"):
            raise ValueError(f"a phase's kind is cpu or real, got {self.kind!r}")
        if self.tasks < 0 or self.task_s < 0 or self.cap < 0:
            raise ValueError(f"a phase needs tasks, task_s and cap >= 0, got {self}")
        if self.kind == "real" and self.tasks and not self.cap:
            raise ValueError(f"a real-time phase needs a cap (runs at once): {self.what}")

    @property
    def serial_s(self) -> float:
        """Seconds on one worker (a real phase: its cap of runs at once, in waves)."""
        if self.kind == "real":
            return math.ceil(self.tasks / self.cap) * self.task_s
        return self.tasks * self.task_s


@dataclass(frozen=True)
class Work:
    """One item's cost: phases one after another. ``real_cap_grows``: its real phases' runs at once grow with
    the workers (emulated links: :func:`links_at_once` of ``real_jobs``); otherwise their caps stay."""
    phases: tuple[Phase, ...] = ()
    real_cap_grows: bool = False
    real_jobs: int = 0

    @property
    def serial_s(self) -> float:
        """Seconds on one worker: the planner's estimate (``Item.est_s``)."""
        return sum(p.serial_s for p in self.phases)

    def on(self, workers: int) -> "Work":
        """This work as it runs among ``workers`` workers (the real phases' caps set)."""
        if not self.real_cap_grows:
            return self
        cap = links_at_once(self.real_jobs, workers)
        return Work(tuple(Phase(p.what, p.tasks, p.task_s, p.kind, cap) if p.kind == "real" else p
                          for p in self.phases))


def links_at_once(jobs: int, workers: int) -> int:
    """Emulated links at once on ``workers`` cores: the config's ``jobs`` are sized for a 2-core node
    (:data:`JOBS_SIZED_FOR_CORES`), so each further pair of cores carries as many (never fewer than ``jobs``)."""
    return max(jobs, jobs * workers // JOBS_SIZED_FOR_CORES)


# the planner's items ---------------------------------------------------------------------------------------
def single(what: str, seconds: float) -> Work:
    """An item that is one task (a trace set, an export, the report)."""
    return Work((Phase(what, 1, seconds),))


def train_work(uc: str, steps: int, n_envs: int | None, method: str, rounds: int | None = None,
               trials: int | None = None, random_trials: int | None = None, envs_per_trial: int | None = None,
               trial_batch: int = 1) -> Work:
    """A training run: start-up, then its updates in ``rounds + 1`` phases (the warm-up and one per round),
    a curriculum's BO trials between them."""
    n_envs = n_envs or (32 if uc == "abr" else 2)
    rate = min(TRAIN_STEPS_PER_S["abr"], ABR_STEPS_PER_S_PER_ENV * n_envs) if uc == "abr" \
        else TRAIN_STEPS_PER_S.get(uc, TRAIN_STEPS_PER_S["cc"])
    train_s = steps / rate
    phases = [Phase("start-up", 1, TRAIN_START_S)]
    if method not in ("genet", "cl2", "cl3"):
        return Work(tuple(phases + [Phase("PPO updates", 1, train_s)]))
    rounds = rounds if rounds is not None else 9
    trials = trials if trials is not None else 15
    n_random = min(trials, random_trials if random_trials is not None else 10)
    trial_s = (envs_per_trial if envs_per_trial is not None else 10) * TRIAL_ENV_S[uc]
    batch = max(1, trial_batch)
    phases.append(Phase("PPO updates (warm-up)", 1, train_s / (rounds + 1)))
    for r in range(rounds):
        if n_random:
            phases.append(Phase(f"round {r}: random BO trials", n_random, trial_s))
        left = trials - n_random
        while left > 0:
            k = min(batch, left)
            phases.append(Phase(f"round {r}: guided BO trials", k, trial_s))
            left -= k
        phases.append(Phase(f"round {r}: PPO updates", 1, train_s / (rounds + 1)))
    return Work(tuple(phases))


def simulate_work(uc: str, evaluations: int) -> Work:
    """`genet eval`: start-up, then ``evaluations`` (trace or episode x policy) simulator runs."""
    return Work((Phase("start-up", 1, SIM_START_S[uc]), Phase("evaluations", evaluations, SIM_EVAL_S[uc])))


def emulate_work(sessions: int, run_s: float, jobs: int) -> Work:
    """`genet emulate`: start-up, then ``sessions`` real-time runs of ``run_s`` seconds (times the overhead),
    ``jobs`` at once per 2 cores."""
    return Work((Phase("start-up", 1, EMU_START_S),
                 Phase("emulated runs", sessions, run_s * EMU_OVERHEAD, "real", max(1, jobs))),
                real_cap_grows=True, real_jobs=max(1, jobs))


def lb_emulate_work(runs: int, run_s: float) -> Work:
    """`genet emulate lb`: start-up, then its runs one after another (real time)."""
    return Work((Phase("start-up", 1, EMU_START_S),
                 Phase("emulated runs", runs, LB_EMU_RUN_EXTRA_S + run_s, "real", 1)))


def deploy_work(uc: str, session_s: float, n_schemes: int, repetitions: int, parallel: str = "none") -> Work:
    """A campaign: set-up, then on each of :data:`DEPLOY_PATHS` paths every scheme ``repetitions`` times, back
    to back; the paths one after another (``none``) or at once (``disjoint-paths``)."""
    per_path_s = n_schemes * repetitions * (session_s + DEPLOY_RUN_EXTRA_S[uc])
    cap = DEPLOY_PATHS if parallel == "disjoint-paths" else 1
    return Work((Phase("set-up", 1, DEPLOY_SETUP_S), Phase("paths", DEPLOY_PATHS, per_path_s, "real", cap)))


# the scheduler -----------------------------------------------------------------------------------------------
@dataclass
class _Running:
    work: Work
    phase: int = -1
    left: int = 0  # tasks of the phase not started
    busy: int = 0  # tasks of the phase running
    slots: int = 0  # workers held (its own one included)
    done: bool = False
    order: int = 0
    deps: list = field(default_factory=list)


def stage_wall_s(items: list, workers: int) -> float:
    """Seconds a stage takes on ``workers`` workers. ``items``: :class:`Work`, or ``(name, Work, deps)`` with
    ``deps`` the names of items of the same stage it must wait for. See the module's docstring for the rules."""
    if workers < 1:
        raise ValueError(f"need at least one worker, got {workers}")
    named = [(str(i), it, ()) if isinstance(it, Work) else it for i, it in enumerate(items)]
    names = [n for n, _, _ in named]
    state = {n: _Running(w.on(workers), order=k, deps=[d for d in deps if d in names])
             for k, (n, w, deps) in enumerate(named)}
    waiting = sorted(names, key=lambda n: (-state[n].work.serial_s, state[n].order))  # longest first
    free = workers
    now = 0.0
    events: list = []  # (end time, seq, item name, kind)
    seq = 0

    def start_phase(n: str) -> None:
        st = state[n]
        st.phase += 1
        while st.phase < len(st.work.phases) and st.work.phases[st.phase].tasks == 0:
            st.phase += 1
        if st.phase >= len(st.work.phases):
            st.done = True
            return
        st.left, st.busy = st.work.phases[st.phase].tasks, 0

    def launch() -> None:
        nonlocal free, seq
        for n in list(waiting):  # items waiting to start first
            if free == 0:
                break
            if any(not state[d].done for d in state[n].deps):
                continue
            waiting.remove(n)
            free -= 1
            state[n].slots = 1
            start_phase(n)
            if state[n].done:
                free += 1
                state[n].slots = 0
        progress = True
        while progress:  # then the tasks of running items, in plan order
            progress = False
            for n in sorted(state, key=lambda m: state[m].order):
                st = state[n]
                if st.done or st.slots == 0 or st.left == 0:
                    continue
                ph = st.work.phases[st.phase]
                if ph.kind == "real":
                    k = min(st.left, ph.cap - st.busy)
                else:
                    cap = ph.cap or workers
                    idle_own = st.slots - st.busy
                    k = min(st.left, cap - st.busy, idle_own + free)
                    extra = max(0, k - idle_own)
                    free -= extra
                    st.slots += extra
                for _ in range(max(0, k)):
                    heapq.heappush(events, (now + ph.task_s, seq, n))
                    seq += 1
                if k > 0:
                    st.left -= k
                    st.busy += k
                    progress = True

    launch()
    while events:
        now, _, n = heapq.heappop(events)
        st = state[n]
        st.busy -= 1
        if st.left == 0 and st.busy == 0:  # the phase is over
            start_phase(n)
            if st.done:
                free += st.slots
                st.slots = 0
            else:  # the item keeps one worker, gives back the rest
                free += st.slots - 1
                st.slots = 1
        elif st.left == 0 and st.work.phases[st.phase].kind == "cpu" and st.slots > max(1, st.busy):
            st.slots -= 1  # a worker the phase no longer needs
            free += 1
        launch()
    if waiting:
        raise ValueError(f"items wait for items not in the stage or in a cycle: {', '.join(waiting)}")
    return now


def plan_wall_s(stages: dict, workers: int) -> dict:
    """``{stage: seconds}`` on ``workers`` workers; ``stages``: ``{stage: [items as stage_wall_s takes]}``;
    the stages one after another."""
    return {s: stage_wall_s(items, workers) for s, items in stages.items()}


def prediction_text(stages: dict, workers: list[int]) -> str:
    """A table: each stage's predicted wall time at each worker count, and the total."""
    from app.run.progress import fmt_s
    walls = {w: plan_wall_s(stages, w) for w in workers}
    head = f"  {'stage':<9}" + "".join(f"{f'{w} worker' + ('s' if w > 1 else ''):>13}" for w in workers)
    lines = [head]
    for s in stages:
        lines.append(f"  {s:<9}" + "".join(f"{fmt_s(walls[w][s]):>13}" for w in workers))
    lines.append(f"  {'total':<9}" + "".join(f"{fmt_s(sum(walls[w].values())):>13}" for w in workers))
    return "\n".join(lines)
