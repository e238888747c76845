"""Genet's curriculum loop (paper Algorithm 2), resumable.

Structure (as Genet's drivers run it, §6.2-6.3): a warm-up training phase on
the initial UDR distribution, then ``rounds`` rounds of

1. search: Bayesian optimisation of the round's objective over the config
   space (15 trials, 10 random; each trial evaluates the current model and the
   baseline(s) on k = 10 environments generated from the trial's config);
2. promote: the best config joins the distribution with weight 0.3 (others x 0.7);
3. train: continue training for ``iterations_per_round`` on the new mixture.

Objectives: ``gap_to_baseline`` (Genet: mean baseline reward - mean RL
reward; with several baselines, ``ensemble=True`` takes the maximum gap over
them, paper §4.2 footnote), ``gap_to_optimum`` (CL3: optimum - RL) and
``baseline_to_optimum`` (CL2: where the baseline performs badly, optimum -
baseline; without an optimum, the negative baseline reward).

After every phase the run directory gets the model (``model-round<r>``),
``state.json`` (distribution, finished phases, every round's search trace)
and ``rounds.csv``; a rerun with ``resume=True`` continues after the last
finished phase.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genet.curriculum.distribution import ConfigDistribution
from genet.curriculum.search import search_gap
from genet.curriculum.usecase import UseCase
from foundation.atomic import atomic_text_writer

OBJECTIVES = ("gap_to_baseline", "gap_to_optimum", "baseline_to_optimum")


@dataclass
class CurriculumConfig:
    """rounds: BO rounds (paper: 9); iterations_per_round: training per phase;
    warmup_iterations: training before the first search (default: one round's worth);
    n_trials / n_random: BO trials per round and how many are random (15 / 10);
    envs_per_trial: k environments per trial (10); promote_weight: w (0.3);
    baselines: baseline names; ensemble: max gap over baselines; objective: see module doc;
    seed: master seed; promotion_distance: 0 promotes each round's best trial (Genet); d > 0 promotes the
    best trial farther than d from every config promoted before (L-infinity in the BO's unit coordinates,
    :func:`distance`), none when no trial is, so one hard corner whose gap training cannot shrink is not
    promoted round after round until it is most of the distribution (issue 17). trial_batch: the GP-guided
    trials asked this many at a time and evaluated together (on the run's workers when it has them;
    :func:`genet.curriculum.search.search_gap`); 1 is the paper's one-at-a-time search. min_promotion_gap:
    None promotes the chosen trial whatever its gap (Genet); a number promotes only a trial whose gap is above
    it (0: only where the baseline beats the policy), none when no trial is (issue 30: a faithful CC Genet seed
    promoted a gap of -5.3, a config where the policy already beat BBR, and collapsed)."""

    rounds: int = 9
    iterations_per_round: int = 100
    warmup_iterations: int | None = None
    n_trials: int = 15
    n_random: int = 10
    envs_per_trial: int = 10
    promote_weight: float = 0.3
    baselines: tuple[str, ...] = ("mpc",)
    ensemble: bool = False
    objective: str = "gap_to_baseline"
    seed: int = 0
    promotion_distance: float = 0.0
    trial_batch: int = 1
    min_promotion_gap: float | None = None

    def __post_init__(self):
        if self.trial_batch < 1:
            raise BadInputError(f"trial_batch must be >= 1, got {self.trial_batch}")
        if not 0 <= self.promotion_distance <= 1:
            raise BadInputError(f"promotion_distance must be in [0, 1] (unit coordinates), got "
                                f"{self.promotion_distance}")
        if self.min_promotion_gap is not None and not np.isfinite(self.min_promotion_gap):
            raise BadInputError(f"min_promotion_gap must be a finite number or None, got {self.min_promotion_gap}")
        if self.objective not in OBJECTIVES:
            raise BadInputError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.rounds < 0 or self.iterations_per_round < 1 or self.envs_per_trial < 1:
            raise BadInputError("rounds must be >= 0, iterations_per_round and envs_per_trial >= 1")
        if not self.baselines and self.objective != "gap_to_optimum":
            raise BadInputError("at least one baseline is needed")


@dataclass
class CurriculumState:
    phases_done: int = 0  # 0 = nothing; 1 = warm-up trained; 1 + r = round r finished
    distribution: dict = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)


def trial_score(use_case: UseCase, model: Any, cfg: CurriculumConfig, config: dict, seed: int) -> tuple[float, dict]:
    """The round objective for one config, with the per-policy mean rewards as detail."""
    configs = [config] * cfg.envs_per_trial
    rl = float(np.mean(use_case.test(model, configs, seed)))
    detail = {"rl": rl}
    if cfg.objective == "gap_to_optimum":
        opt = float(np.mean(use_case.test("optimal", configs, seed)))
        detail["optimal"] = opt
        return opt - rl, detail
    gaps = []
    for b in cfg.baselines:
        base = float(np.mean(use_case.test(b, configs, seed)))
        detail[b] = base
        if cfg.objective == "gap_to_baseline":
            gaps.append(base - rl)
        else:
            try:
                opt = detail.setdefault("optimal", float(np.mean(use_case.test("optimal", configs, seed))))
                gaps.append(opt - base)
            except (KeyError, ValueError, NotImplementedError):
                gaps.append(-base)
    score = max(gaps) if cfg.ensemble else gaps[0]
    if cfg.ensemble:
        detail["baseline_of_max_gap"] = cfg.baselines[int(np.argmax(gaps))]
    return score, detail


def distance(space, a: dict, b: dict) -> float:
    """L-infinity distance of two configs in unit coordinates (each dimension's scale over its widest range)."""
    return max((abs(d.to_unit(a[d.name]) - d.to_unit(b[d.name])) for d in space.dimensions), default=0.0)


def choose_promotion(space, trials: list, promoted: list[dict], min_distance: float,
                     min_gap: float | None = None):
    """The trial a round promotes: the best one (``min_distance`` 0), else the best farther than
    ``min_distance`` from every config in ``promoted``; with ``min_gap``, only a trial whose gap is above it.
    None when no trial qualifies."""
    for t in sorted(trials, key=lambda t: -t.gap):
        if min_gap is not None and not t.gap > min_gap:
            return None  # sorted: no later trial's gap is higher
        if min_distance <= 0 or all(distance(space, t.config, c) > min_distance for c in promoted):
            return t
    return None


def why_nothing_promoted(cfg: "CurriculumConfig", best_gap: float) -> str:
    """The log line's reason when a round promotes nothing."""
    if cfg.min_promotion_gap is not None and not best_gap > cfg.min_promotion_gap:
        return f"the best gap {best_gap:.4g} is not above the minimum {cfg.min_promotion_gap:g}"
    if cfg.min_promotion_gap is not None:
        return (f"every trial with a gap above {cfg.min_promotion_gap:g} is within {cfg.promotion_distance:g} of a "
                f"config promoted before")
    return f"every trial is within {cfg.promotion_distance:g} of a config promoted before"


def _write_json(path: Path, data: dict) -> None:
    with atomic_text_writer(path) as fh:
        json.dump(data, fh, indent=1, default=float)


def run_curriculum(use_case: UseCase, cfg: CurriculumConfig, out_dir: str | os.PathLike,
                   initial: ConfigDistribution | None = None, resume: bool = False,
                   log: Callable[[str], None] = print,
                   initial_model: Any = None) -> tuple[Any, ConfigDistribution, CurriculumState]:
    """Run (or resume) the curriculum in ``out_dir``; returns (model, distribution, state).

    initial_model: a trained model to start from instead of the warm-up phase (Genet's schedule:
    warm-start from a UDR model, then rounds of ``iterations_per_round`` updates)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    if resume and state_path.exists():
        raw = json.loads(state_path.read_text())
        if raw.get("use_case") != use_case.name:
            raise BadInputError(f"{state_path}: run is for use case {raw.get('use_case')!r}, not {use_case.name!r}")
        state = CurriculumState(raw["phases_done"], raw["distribution"], raw["rounds"])
        dist = ConfigDistribution.from_dict(use_case.space, state.distribution)
        model = use_case.load_model(out / f"model-round{state.phases_done - 1}")
        log(f"resuming {out} after phase {state.phases_done}")
    else:
        state = CurriculumState()
        dist = initial or ConfigDistribution.udr(use_case.space, "rl3")
        model = use_case.new_model(cfg.seed) if initial_model is None else initial_model

    def checkpoint() -> None:
        use_case.save_model(model, out / f"model-round{state.phases_done - 1}")
        state.distribution = dist.to_dict()
        _write_json(state_path, {"use_case": use_case.name, "phases_done": state.phases_done,
                                 "distribution": state.distribution, "rounds": state.rounds,
                                 "config": {k: v for k, v in cfg.__dict__.items()}})
        _write_rounds_csv(out / "rounds.csv", state.rounds)

    if state.phases_done == 0:
        if initial_model is None:
            model = use_case.train(model, dist, cfg.warmup_iterations or cfg.iterations_per_round, cfg.seed)
        else:
            log(f"starting from the given model ({getattr(model, 'updates', '?')} updates): no warm-up phase")
        state.phases_done = 1
        checkpoint()
    for r in range(state.phases_done - 1, cfg.rounds):
        search_seed = cfg.seed * 1000 + r
        # trials on the run's rollout workers (local processes or Ray) when it has them
        many = getattr(use_case, "trial_evaluator", lambda *_: None)(model, cfg, search_seed)
        result = search_gap(use_case.space,
                            lambda config, _r=r: trial_score(use_case, model, cfg, config, search_seed),
                            n_trials=cfg.n_trials, n_random=cfg.n_random, seed=search_seed, gap_many=many,
                            batch=cfg.trial_batch)
        before = [rd.get("promoted", {"config": rd["best_config"]}) for rd in state.rounds]
        chosen = choose_promotion(use_case.space, result.trials, [b["config"] for b in before if b],
                                  cfg.promotion_distance, cfg.min_promotion_gap)
        log(f"round {r}: best {cfg.objective} {result.best_gap:.4g} at "
            + ", ".join(f"{k}={v:.4g}" for k, v in result.best_config.items()))
        if chosen is not None:
            dist.promote(chosen.config, cfg.promote_weight, label=f"round{r}")
            if chosen.config != result.best_config:
                log(f"round {r}: promoted trial {result.trials.index(chosen)} (gap {chosen.gap:.4g}): the best "
                    f"is within {cfg.promotion_distance:g} of a config promoted before")
        else:
            log(f"round {r}: nothing promoted: {why_nothing_promoted(cfg, result.best_gap)}")
        model = use_case.train(model, dist, cfg.iterations_per_round, cfg.seed + r + 1)
        state.rounds.append({"round": r, **result.to_dict(),
                             "promoted": None if chosen is None else {"config": chosen.config, "gap": chosen.gap}})
        state.phases_done = r + 2
        checkpoint()
    return model, dist, state


def _write_rounds_csv(path: Path, rounds: list[dict]) -> None:
    if not rounds:
        return
    names = list(rounds[0]["best_config"])
    with atomic_text_writer(path) as fh:
        w = csv.writer(fh)
        w.writerow(["round", "best_gap", *names, "trials", "promoted_gap"])
        for r in rounds:
            promoted = r.get("promoted", {"gap": r["best_gap"]})
            w.writerow([r["round"], r["best_gap"], *(r["best_config"][n] for n in names), len(r["trials"]),
                        "none" if promoted is None else promoted["gap"]])


def plot_rounds(state: CurriculumState | dict, out: str | os.PathLike) -> Path:
    """Gap per trial (each round's BO trace) and the chosen config per round."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rounds = state["rounds"] if isinstance(state, dict) else state.rounds
    if not rounds:
        raise BadInputError("no finished rounds to plot")
    names = list(rounds[0]["best_config"])
    fig, axes = plt.subplots(1 + len(names), 1, figsize=(8, 2.2 * (1 + len(names))), sharex=False)
    ax = axes[0]
    for r in rounds:
        gaps = [t["gap"] for t in r["trials"]]
        ax.plot(np.arange(len(gaps)) + 1, gaps, marker="o", ms=3, lw=1, label=f"round {r['round']}")
    ax.set_xlabel("BO trial")
    ax.set_ylabel("objective (gap)")
    ax.legend(fontsize=7, ncol=4)
    ax.grid(alpha=0.3)
    xs = [r["round"] for r in rounds]
    for ax, n in zip(axes[1:], names):
        ax.plot(xs, [r["best_config"][n] for r in rounds], marker="s", label="BO's best")
        moved = [(r["round"], r["promoted"]["config"][n]) for r in rounds
                 if r.get("promoted") and r["promoted"]["config"] != r["best_config"]]
        if moved:  # --promotion-distance promoted another trial
            ax.plot(*zip(*moved), "x", ms=8, color="C3", label="promoted instead")
            ax.legend(fontsize=7)
        ax.set_ylabel(n, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("round (chosen config)")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
