"""The LB policy registry: a name or a path to an ``.onnx`` file gives a policy that picks a worker per job.

=============  =================================================================================================
name           policy (``W`` workers; every rule reads the ``lb.state-Ww`` layout of genet/lb/observations.py)
=============  =================================================================================================
least_work     least work left (Genet's ``LeastWorkAgent``): the worker with the least *waiting* work (the job in
               service not counted); ties: the lowest index (Genet's strict ``<`` scan)
sed            shortest expected delay: the worker where the new job would finish first,
               ``(queued_work + job_size) / rate + in_service_remaining_ms`` (Genet's
               ``ShortestProcessingTimeAgent`` divides the waiting work alone by the rate)
jsq            join the shortest queue: fewest jobs (waiting + in service); ties: uniformly at random
power_of_two   power of two choices: two distinct workers drawn uniformly, the one with fewer jobs (ties: the
               first drawn)
round_robin    workers 0, 1, ..., W-1, 0, ... per session (``reset`` restarts at 0; only ``active`` sessions move)
random         a worker uniformly at random
PATH.onnx      an exported LB policy (layouts ``lb.genet-Ww``, ``lb.park-Ww`` or ``lb.state-Ww``)
=============  =================================================================================================

:data:`POLICIES` is a :class:`foundation.registry.Registry` filled by :func:`register_builtins`, the one place LB
policies are registered. :func:`make_policy` is what the simulator's evaluation, the Gymnasium wrapper, training
and the real balancer call, with ``n_workers`` (the workers the policy dispatches to), ``seed`` (the policy's own
:class:`numpy.random.Generator` for random choices and ONNX sampling) and ``deterministic`` (ONNX argmax).

Every policy follows genet/policy.py's protocol: ``bind(context)``, ``reset(mask)``, ``act(observations,
active)`` batched over sessions. The caller computes what a policy reads with
``genet.lb.observations.observe(state, policy.spec.observation_layout)`` from an
:class:`~genet.lb.observations.LbState` (the simulator exactly; the real balancer from what it sees), so the same
code drives every policy. ``bind`` takes an :class:`LbContext` (the workers' service rates); the rule-based
baselines read everything they need from the ``lb.state`` observation and ignore it.

numpy and the standard library only (onnxruntime for ``PATH.onnx``, on first use).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from foundation.registry import Registry, UnknownNameError
from genet.lb.observations import (LAYOUT_KINDS, LbObservationError, parse_layout, policy_spec,
                                   state_from_observations, state_layout)
from genet.policy import PolicyBase, PolicyMismatchError, PolicySpec

BASELINES = ("least_work", "sed", "jsq", "power_of_two", "round_robin", "random")


class UnknownPolicyError(UnknownNameError):
    """A policy name that is neither registered nor an existing ``.onnx`` file."""


@dataclass(frozen=True)
class LbContext:
    """What ``bind`` gets: the workers the sessions dispatch to.

    service_rates: per worker, work units per ms (e.g. (0.5, 1.0, 2.0))
    """

    service_rates: tuple[float, ...]

    @property
    def n_workers(self) -> int:
        return len(self.service_rates)


class StateBaseline(PolicyBase):
    """A rule-based LB policy reading the ``lb.state-Ww`` layout; subclasses define :meth:`choose`."""

    name = "baseline"

    def __init__(self, n_workers: int = 3, seed: int | None = None) -> None:
        self.n_workers = int(n_workers)
        self.spec: PolicySpec = policy_spec(state_layout(self.n_workers))
        self.rng = np.random.default_rng(seed)

    def bind(self, context: Any) -> None:
        if isinstance(context, LbContext) and context.n_workers != self.n_workers:
            raise PolicyMismatchError(f"LB policy {self.name} was made for {self.n_workers} workers, "
                                      f"bound to {context.n_workers}")

    def act(self, observations: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        obs = np.asarray(observations)
        if obs.ndim != 2 or obs.shape[1] != self.spec.observation_shape[0]:
            raise PolicyMismatchError(f"LB policy {self.name}: observation batch has shape {obs.shape}, expected "
                                      f"(n, {self.spec.observation_shape[0]}) [{self.spec.observation_layout}]")
        return np.asarray(self.choose(state_from_observations(obs), active), dtype=np.int64)

    def choose(self, state, active: np.ndarray | None) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def _argmin_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmin, ties broken uniformly at random."""
    is_min = values == values.min(axis=1, keepdims=True)
    noise = rng.random(values.shape)
    return np.argmax(np.where(is_min, noise, -1.0), axis=1)


class LeastWork(StateBaseline):
    name = "least_work"

    def choose(self, state, active):
        return np.argmin(state.queued_work, axis=1)


class ShortestExpectedDelay(StateBaseline):
    name = "sed"

    def choose(self, state, active):
        delay = (state.queued_work + state.job_size[:, None]) / state.service_rates + state.in_service_remaining_ms
        return np.argmin(delay, axis=1)


class JoinShortestQueue(StateBaseline):
    name = "jsq"

    def choose(self, state, active):
        return _argmin_random_ties(state.jobs_in_system, self.rng)


class PowerOfTwo(StateBaseline):
    name = "power_of_two"

    def choose(self, state, active):
        n, w = state.n_sessions, state.n_workers
        if w == 1:
            return np.zeros(n, dtype=np.int64)
        first = self.rng.integers(0, w, size=n)
        second = (first + self.rng.integers(1, w, size=n)) % w   # a different worker, uniformly
        rows = np.arange(n)
        take_second = state.jobs_in_system[rows, second] < state.jobs_in_system[rows, first]
        return np.where(take_second, second, first)


class RoundRobin(StateBaseline):
    name = "round_robin"

    def __init__(self, n_workers: int = 3, seed: int | None = None) -> None:
        super().__init__(n_workers, seed)
        self.next_worker = np.zeros(0, dtype=np.int64)

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self.next_worker = np.zeros(0, dtype=np.int64)
        elif self.next_worker.size:
            m = np.asarray(mask, dtype=bool)
            self.next_worker[m[:self.next_worker.size]] = 0

    def choose(self, state, active):
        n = state.n_sessions
        if self.next_worker.size < n:
            self.next_worker = np.concatenate([self.next_worker, np.zeros(n - self.next_worker.size, np.int64)])
        actions = self.next_worker[:n] % self.n_workers
        moved = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        self.next_worker[:n][moved] = (actions[moved] + 1) % self.n_workers
        return actions.copy()


class RandomWorker(StateBaseline):
    name = "random"

    def choose(self, state, active):
        return self.rng.integers(0, state.n_workers, size=state.n_sessions)


_CLASSES = {c.name: c for c in (LeastWork, ShortestExpectedDelay, JoinShortestQueue, PowerOfTwo, RoundRobin,
                                RandomWorker)}


def _baseline(name: str):
    def factory(*, n_workers: int = 3, seed: int | None = None, **_: Any):
        return _CLASSES[name](n_workers=n_workers, seed=seed)
    factory.__name__ = f"_{name}"
    return factory


def _onnx(path: str, *, n_workers: int | None = None, deterministic: bool = True, seed: int | None = None,
          **_: Any):
    return load_onnx_lb(path, n_workers=n_workers, deterministic=deterministic, seed=seed)


def register_builtins(registry: Registry) -> Registry:
    """Register the LB policies in ``registry`` (the one place they are registered); returns it."""
    registry.register("least_work", _baseline("least_work"),
                      description="least waiting work (Genet's rule; ties: lowest index)")
    registry.register("sed", _baseline("sed"),
                      description="shortest expected delay: (queued work + job size) / rate + in-service remainder")
    registry.register("jsq", _baseline("jsq"), description="join the shortest queue (fewest jobs; random ties)")
    registry.register("power_of_two", _baseline("power_of_two"),
                      description="power of two choices (two random workers, fewer jobs)")
    registry.register("round_robin", _baseline("round_robin"), description="round robin over the workers")
    registry.register("random", _baseline("random"), description="a uniformly random worker")
    registry.register("onnx", _onnx, suffix=".onnx",
                      description="an exported LB policy (layout lb.genet-Ww, lb.park-Ww or lb.state-Ww)")
    return registry


#: The LB policies: least_work, sed, jsq, power_of_two, round_robin, random, PATH.onnx.
POLICIES: Registry = register_builtins(Registry("LB policy"))


def is_onnx(policy: Any) -> bool:
    return str(policy).endswith(".onnx")


def policy_label(policy: Any) -> str:
    """Short label: the name, an ONNX file's stem, or the object's ``name``."""
    if isinstance(policy, (str, Path)):
        return Path(policy).stem if is_onnx(policy) else str(policy)
    return getattr(policy, "name", type(policy).__name__)


def load_onnx_lb(path: str | Path, n_workers: int | None = None, deterministic: bool = True,
                 seed: int | None = None):
    """An ONNX LB policy, checked to be one that dispatches to ``n_workers`` workers (None: any)."""
    from genet.policy import OnnxPolicy
    pol = OnnxPolicy(path, deterministic=deterministic, seed=seed)
    spec = pol.spec
    try:
        kind, w = parse_layout(spec.observation_layout)
    except LbObservationError:
        kind, w = "", -1
    if spec.use_case != "lb" or kind not in LAYOUT_KINDS:
        raise PolicyMismatchError(
            f"{path} is not an LB policy:\n  expected: use_case=lb with a layout lb.genet-Ww, lb.park-Ww or "
            f"lb.state-Ww (e.g. {policy_spec('lb.genet-3w').describe()})\n  actual:   {spec.describe()}")
    if n_workers is not None and w != int(n_workers):
        raise PolicyMismatchError(f"{path}: the policy dispatches to {w} workers ({spec.observation_layout}) but "
                                  f"this setting has {n_workers}")
    spec.check_compatible(policy_spec(spec.observation_layout, spec.output), where=str(path))
    return pol


def make_policy(policy: Any, *, n_workers: int = 3, seed: int | None = None, deterministic: bool = True,
                where: str | None = None):
    """A policy (:class:`genet.policy.Policy`) from a registry name, an ``.onnx`` path, or a policy object
    (returned as is). ``n_workers``: the workers it dispatches to; ``seed``: its random choices."""
    if not isinstance(policy, (str, Path)):
        from genet.policy import check_policy
        return check_policy(policy)
    name = str(policy)
    try:
        entry, arg = POLICIES.resolve(name, where=where)
    except UnknownNameError as exc:
        if Path(name).is_file():
            entry, arg = POLICIES.get("onnx"), name
        else:
            raise UnknownPolicyError(str(exc)) from None
    return entry.create(arg, n_workers=int(n_workers), seed=seed, deterministic=deterministic)


__all__ = ["POLICIES", "BASELINES", "LbContext", "StateBaseline", "UnknownPolicyError", "register_builtins",
           "make_policy", "load_onnx_lb", "policy_label", "is_onnx", "LeastWork", "ShortestExpectedDelay",
           "JoinShortestQueue", "PowerOfTwo", "RoundRobin", "RandomWorker"]
