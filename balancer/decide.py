"""How the balancer decides with an LB policy: its view -> :class:`genet.lb.observations.LbState` -> the
policy's own observation layout (:func:`genet.lb.observations.observe`, the one definition the simulator uses)
-> ``act`` -> a worker index.

What the balancer puts in the state (:func:`state_of`), from what it sees — never from the workers' insides:

* ``queued_work``: the sizes of the jobs it dispatched to the worker that the worker has not yet reported
  ``started`` (the simulator: the waiting jobs' sizes);
* ``jobs_in_system``: those plus the job reported started and not yet finished;
* ``in_service_remaining_ms``: the job in service's expected remainder, its service time (size / the worker's
  declared rate) minus the time since the balancer saw it start, at least 0 (in workload ms: wall-clock ms /
  the run's ``time_unit_ms``);
* ``service_rates``: the rates the workers were declared with (``--worker HOST:PORT:RATE``);
* ``job_size``: the incoming job's size.

What differs from the simulator is what the balancer cannot know at once: a job counts as queued until the
worker's ``started`` message has crossed the link back, and as in the system until ``finished`` has.

numpy + the policy's own dependencies (onnxruntime for ``PATH.onnx``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from balancer.view import BalancerView, Decide, WorkerSpec


def state_of(view: BalancerView, job_size: float):
    """The :class:`genet.lb.observations.LbState` (a batch of one) of the balancer's ``view``."""
    from genet.lb.observations import LbState
    queued, jobs, remaining, rates = [], [], [], []
    for w in view.workers:
        queued.append(w.queued_work)
        jobs.append(w.n_jobs)
        rest = 0.0
        if w.in_service is not None and w.in_service_since_ms is not None:
            elapsed = (view.now_ms - w.in_service_since_ms) / view.time_unit_ms
            rest = max(0.0, w.in_service_size / w.spec.rate - elapsed)
        remaining.append(rest)
        rates.append(w.spec.rate)
    return LbState.single(queued, jobs, remaining, rates, job_size)


def policy_decider(policy: str, workers: Sequence[WorkerSpec], *, seed: int | None = 0,
                   deterministic: bool = True) -> Decide:
    """``decide(view, job_size)`` with the LB policy ``policy`` (a name of :data:`genet.lb.registry.POLICIES`
    or a ``PATH.onnx``) dispatching to ``workers``."""
    from genet.lb.observations import observe
    from genet.lb.registry import LbContext, make_policy
    pol = make_policy(policy, n_workers=len(workers), seed=seed, deterministic=deterministic, where="--policy")
    pol.bind(LbContext(tuple(float(w.rate) for w in workers)))
    pol.reset()
    layout = pol.spec.observation_layout

    def decide(view: BalancerView, job_size: float) -> int:
        obs = observe(state_of(view, job_size), layout)
        return int(np.asarray(pol.act(obs))[0])

    decide.policy = pol  # type: ignore[attr-defined]
    return decide


__all__ = ["state_of", "policy_decider"]
