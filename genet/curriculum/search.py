"""Bayesian optimisation of the gap-to-baseline with scikit-optimize (paper §4.3, reference §6.1).

Search space: the widest (RL3) range of every dimension whose range is not a
point; ``log`` dimensions are searched in log space, ``log_with_zero`` (loss)
in log10(x + 1e-5) space with values below 1e-4 meaning 0, as Genet does.
A round runs ``n_trials`` trials (default 15): ``n_random`` (default 10)
random points, then GP-guided ones. Genet maximises with UCB and kappa = 20;
skopt minimises, so we minimise the negative gap with LCB and the same kappa,
which is the same rule. Each round restarts the search (a fresh optimizer
seeded with seed + round).
"""

from __future__ import annotations

from foundation.errors import BadInputError

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from traces.config_space import ConfigSpace


@dataclass
class Trial:
    config: dict[str, float]
    gap: float
    detail: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    best_config: dict[str, float]
    best_gap: float
    trials: list[Trial]

    def to_dict(self) -> dict:
        return {"best_config": self.best_config, "best_gap": self.best_gap,
                "trials": [{"config": t.config, "gap": t.gap, **({"detail": t.detail} if t.detail else {})}
                           for t in self.trials]}


def _skopt_dimensions(space: ConfigSpace):
    from skopt.space import Real
    dims, names = [], []
    for d in space.dimensions:
        lo, hi = d.bounds
        if lo == hi:
            continue
        if d.scale == "log":
            dims.append(Real(math.log(lo), math.log(hi), name=d.name))
        elif d.scale == "log_with_zero":
            dims.append(Real(math.log10(lo + 1e-5), math.log10(hi + 1e-5), name=d.name))
        else:
            dims.append(Real(lo, hi, name=d.name))
        names.append(d.name)
    return dims, names


def point_to_config(space: ConfigSpace, names: list[str], point: list[float]) -> dict[str, float]:
    cfg = space.default()
    for d in space.dimensions:
        lo, hi = d.bounds
        if lo == hi:
            cfg[d.name] = lo
    for name, x in zip(names, point):
        d = space[name]
        lo, hi = d.bounds
        if d.scale == "log":
            v = math.exp(x)
        elif d.scale == "log_with_zero":
            v = 0.0 if x < -4 else 10 ** x
        else:
            v = x
        cfg[name] = float(min(max(v, lo), hi))
    return cfg


def search_gap(space: ConfigSpace, gap_fn: Callable[[dict[str, float]], float | tuple[float, dict]],
               n_trials: int = 15, n_random: int = 10, seed: int = 0, kappa: float = 20.0,
               on_trial: Callable[[int, Trial], None] | None = None,
               gap_many: Callable[[list[dict[str, float]]], list] | None = None, batch: int = 1) -> SearchResult:
    """Find the config with the largest gap. ``gap_fn(config)`` returns the gap
    (or (gap, detail)); larger means the RL policy trails the baseline more.

    gap_many: evaluates a list of configs at once (e.g. on rollout workers or Ray); the ``n_random``
    random trials, which do not depend on each other, then go to it together (asked one after the
    other before any is told: the optimizer draws the same random points), the GP-guided ones one at a
    time through it; the trials are the same as with ``gap_fn`` alone.

    batch: GP-guided trials asked ``batch`` at a time (``Optimizer.ask(n_points=batch)`` with the constant
    liar ``cl_min``: each point of a batch is chosen as if the ones before it had returned the best value seen),
    evaluated together (through ``gap_many`` when given: in parallel on workers), then told; ``batch`` = 1 is the
    one-at-a-time search above, trial for trial."""
    from skopt import Optimizer
    if n_trials < 1 or not 0 <= n_random <= n_trials:
        raise BadInputError(f"need n_trials >= 1 and 0 <= n_random <= n_trials, got {n_trials}, {n_random}")
    if batch < 1:
        raise BadInputError(f"the BO batch must be >= 1 trial, got {batch}")
    dims, names = _skopt_dimensions(space)
    opt = Optimizer(dims, base_estimator="GP", n_initial_points=max(n_random, 1), initial_point_generator="random",
                    acq_func="LCB", acq_func_kwargs={"kappa": kappa}, random_state=seed)
    trials: list[Trial] = []

    def record(point, out) -> None:
        gap, detail = (out if isinstance(out, tuple) else (out, {}))
        gap = float(gap)
        trial = Trial(point_to_config(space, names, point), gap, detail)
        trials.append(trial)
        opt.tell(point, -gap if np.isfinite(gap) else 1e12)
        if on_trial:
            on_trial(len(trials) - 1, trial)

    if gap_many is not None and n_random > 1:
        points = [opt.ask() for _ in range(n_random)]
        for point, out in zip(points, gap_many([point_to_config(space, names, p) for p in points])):
            record(point, out)
    while len(trials) < n_trials:
        k = 1 if len(trials) < n_random else min(batch, n_trials - len(trials))  # random trials: one by one
        if k == 1:
            point = opt.ask()
            cfg = point_to_config(space, names, point)
            record(point, gap_many([cfg])[0] if gap_many is not None else gap_fn(cfg))
            continue
        points = opt.ask(n_points=k, strategy="cl_min")
        cfgs = [point_to_config(space, names, p) for p in points]
        outs = gap_many(cfgs) if gap_many is not None else [gap_fn(c) for c in cfgs]
        for point, out in zip(points, outs):
            record(point, out)
    best = max(trials, key=lambda t: t.gap)
    return SearchResult(best.config, best.gap, trials)
