"""LB observations and actions: the one definition the simulator, the Gymnasium environment, training and the real
balancer (``balancer/``) all use.

**What a dispatcher sees** at a decision, :class:`LbState` (batched: ``n`` sessions x ``W`` workers), in the units of
``traces/workload.py`` (time in ms, sizes in work units, service rates in work units per ms):

* ``queued_work``: total size of the jobs *waiting* in each worker's queue (not the one in service);
* ``jobs_in_system``: jobs at each worker, waiting plus the one in service;
* ``in_service_remaining_ms``: time until the job in service finishes (0 when idle);
* ``service_rates``: each worker's service rate;
* ``job_size``: the size of the job to dispatch now.

The simulator fills it exactly; the real balancer fills it from what it sees (the sizes it dispatched, the
completions it observed, its estimate of the job in service).

**Layouts** (the ``observation_layout`` of a :class:`genet.policy.PolicySpec`; ``W`` is the number of workers):

* ``lb.genet-Ww`` (:func:`genet_layout`; Genet's model, ``W + 1`` values): per worker
  ``min(queued_work / 1000 / 5, 20)``, then ``min(job_size / 1000, 10)`` (``load_balance_actor_agent.py``
  ``get_action``: waiting work only, not the job in service);
* ``lb.park-Ww`` (Park's ``LoadBalanceEnv.observe``, ``W + 1`` values): per worker ``queued_work +
  in_service_remaining_ms`` (Park adds the remaining *time* of the job in service to the waiting *work*; we keep
  its definition), then ``job_size``, each capped at 500,000 (``load_balance_obs_high``);
* ``lb.state-Ww`` (``4 W + 1`` values, unnormalised): ``queued_work``, ``jobs_in_system``,
  ``in_service_remaining_ms``, ``service_rates`` (W each), then ``job_size``: what rule-based baselines read
  (:func:`state_from_observations` unpacks it).

**Actions** (``lb.worker-index``): the index of the worker that gets the job, ``0 .. W-1``.

A caller turns a state into what a policy reads with :func:`observe` (``observe(state,
policy.spec.observation_layout)``), so one call serves every policy. numpy only (plus ``genet.policy``'s
:class:`PolicySpec`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from foundation.errors import BadInputError
from genet.policy import PolicySpec

#: Genet's normalisation (``param.py`` ``job_size_norm_factor``, the extra / 5 of the actor agent, the caps).
GENET_WORK_NORM = 1000.0
GENET_QUEUE_DIVISOR = 5.0
GENET_QUEUE_CAP = 20.0
GENET_SIZE_CAP = 10.0
#: Park's observation cap (``load_balance_obs_high``).
PARK_OBS_HIGH = 500000.0
ACTION_SEMANTICS = "lb.worker-index"
LAYOUT_KINDS = ("genet", "park", "state")
#: Workers a layout may name (the largest setting in the tree has 10).
MAX_WORKERS = 64
_LAYOUT = re.compile(r"lb\.(genet|park|state)-([1-9][0-9]*)w")


class LbObservationError(BadInputError):
    """A layout name or a state that does not fit (the message says which)."""


@dataclass(frozen=True, eq=False)
class LbState:
    """What a dispatcher knows at a decision, for ``n`` sessions at once (see the module docstring).

    queued_work: (n, W) waiting work per worker, work units
    jobs_in_system: (n, W) jobs per worker (waiting + in service)
    in_service_remaining_ms: (n, W) time until the job in service finishes, ms (0: idle)
    service_rates: (n, W) or (W,) service rates, work units per ms
    job_size: (n,) size of the job to dispatch, work units
    """

    queued_work: np.ndarray
    jobs_in_system: np.ndarray
    in_service_remaining_ms: np.ndarray
    service_rates: np.ndarray
    job_size: np.ndarray

    def __post_init__(self) -> None:
        q = np.atleast_2d(np.asarray(self.queued_work, dtype=np.float64))
        n, w = q.shape
        fields = {"queued_work": q}
        for name in ("jobs_in_system", "in_service_remaining_ms", "service_rates"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.ndim == 1:
                a = np.broadcast_to(a, (n, a.shape[0]))
            if a.shape != (n, w):
                raise LbObservationError(f"LbState.{name} has shape {a.shape}, expected ({n}, {w}) like queued_work")
            fields[name] = a
        s = np.asarray(self.job_size, dtype=np.float64).reshape(-1)
        if s.shape != (n,):
            raise LbObservationError(f"LbState.job_size has {s.size} entries, expected {n} (one per session)")
        fields["job_size"] = s
        for name, a in fields.items():
            object.__setattr__(self, name, a)

    @classmethod
    def single(cls, queued_work, jobs_in_system, in_service_remaining_ms, service_rates, job_size) -> "LbState":
        """The state of one session (a batch of one) from per-worker sequences."""
        return cls(np.asarray(queued_work, dtype=np.float64)[None], np.asarray(jobs_in_system)[None],
                   np.asarray(in_service_remaining_ms)[None], np.asarray(service_rates, dtype=np.float64),
                   np.asarray([job_size], dtype=np.float64))

    @property
    def n_sessions(self) -> int:
        return int(self.queued_work.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.queued_work.shape[1])


def parse_layout(name: str) -> tuple[str, int]:
    """(kind, n_workers) of a layout name such as ``"lb.genet-3w"`` (one-line error otherwise)."""
    m = _LAYOUT.fullmatch(str(name))
    if not m or not 1 <= int(m.group(2)) <= MAX_WORKERS:
        raise LbObservationError(f"unknown LB observation layout {name!r}; layouts are lb.genet-Ww, lb.park-Ww, "
                                 f"lb.state-Ww with W workers (1..{MAX_WORKERS}), e.g. lb.genet-3w")
    return m.group(1), int(m.group(2))


def layout_name(kind: str, n_workers: int) -> str:
    name = f"lb.{kind}-{int(n_workers)}w"
    parse_layout(name)
    return name


def genet_layout(n_workers: int = 3) -> str:
    return layout_name("genet", n_workers)


def park_layout(n_workers: int = 10) -> str:
    return layout_name("park", n_workers)


def state_layout(n_workers: int) -> str:
    return layout_name("state", n_workers)


def observation_size(layout: str) -> int:
    kind, w = parse_layout(layout)
    return 4 * w + 1 if kind == "state" else w + 1


def policy_spec(layout: str, output: str = "probabilities") -> PolicySpec:
    """The :class:`PolicySpec` of a policy reading ``layout`` and choosing a worker."""
    _, w = parse_layout(layout)
    return PolicySpec(use_case="lb", observation_layout=layout, observation_shape=(observation_size(layout),),
                      action_semantics=ACTION_SEMANTICS, n_actions=w, output=output)


def genet_observation(queued_work: np.ndarray, job_size: np.ndarray) -> np.ndarray:
    """Genet's observation from arrays: (..., W) waiting work and (...) job sizes -> (..., W + 1) float32."""
    q = np.asarray(queued_work, dtype=np.float64)
    s = np.asarray(job_size, dtype=np.float64)
    out = np.empty(q.shape[:-1] + (q.shape[-1] + 1,), dtype=np.float32)
    out[..., :-1] = np.minimum(q / GENET_WORK_NORM / GENET_QUEUE_DIVISOR, GENET_QUEUE_CAP)
    out[..., -1] = np.minimum(s / GENET_WORK_NORM, GENET_SIZE_CAP)
    return out


def observe(state: LbState, layout: str) -> np.ndarray:
    """(n, observation_size(layout)) float32: what a policy reading ``layout`` sees of ``state``."""
    kind, w = parse_layout(layout)
    if w != state.n_workers:
        raise LbObservationError(f"layout {layout} is for {w} workers but the state has {state.n_workers}")
    if kind == "genet":
        return genet_observation(state.queued_work, state.job_size)
    if kind == "park":
        out = np.empty((state.n_sessions, w + 1), dtype=np.float32)
        out[:, :-1] = np.minimum(state.queued_work + state.in_service_remaining_ms, PARK_OBS_HIGH)
        out[:, -1] = np.minimum(state.job_size, PARK_OBS_HIGH)
        return out
    return np.concatenate([state.queued_work, state.jobs_in_system, state.in_service_remaining_ms,
                           state.service_rates, state.job_size[:, None]], axis=1).astype(np.float32)


def state_from_observations(observations: np.ndarray) -> LbState:
    """The :class:`LbState` packed in a batch of ``lb.state-Ww`` observations, (n, 4 W + 1)."""
    obs = np.asarray(observations, dtype=np.float64)
    if obs.ndim != 2 or (obs.shape[1] - 1) % 4 != 0 or obs.shape[1] < 5:
        raise LbObservationError(f"an lb.state-Ww observation batch is (n, 4 W + 1); got shape {obs.shape}")
    w = (obs.shape[1] - 1) // 4
    return LbState(obs[:, :w], obs[:, w:2 * w], obs[:, 2 * w:3 * w], obs[:, 3 * w:4 * w], obs[:, -1])


__all__ = ["LbState", "LbObservationError", "observe", "genet_observation", "state_from_observations",
           "parse_layout", "layout_name", "genet_layout", "park_layout", "state_layout", "observation_size",
           "policy_spec", "ACTION_SEMANTICS", "GENET_WORK_NORM", "GENET_QUEUE_DIVISOR", "GENET_QUEUE_CAP",
           "GENET_SIZE_CAP", "PARK_OBS_HIGH"]
