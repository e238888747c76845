"""The generic Genet curriculum on a small analytic use case.

The use case is a stand-in for a simulator: a "model" is the set of configs it
has trained on, and its reward in an environment is minus the distance (in the
config space's unit coordinates) to the nearest trained config. So training
where the gap is large really closes the gap, which is what the curriculum
must exploit. ABR and CC plug in through the same interface.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genet.curriculum.distribution import ConfigDistribution
from genet.curriculum.loop import CurriculumConfig, plot_rounds, run_curriculum, trial_score
from genet.curriculum.search import search_gap
from genet.curriculum.usecase import UseCase
from foundation.errors import BadInputError
from traces.config_space import ConfigSpaceError, load_space

SPACE_JSON = {
    "use_case": "toy", "fixed": {},
    "dimensions": [
        {"name": "x_s", "unit": "s", "default": 5, "scale": "uniform",
         "ranges": {"rl1": [4, 6], "rl2": [2, 8], "rl3": [0, 10]}},
        {"name": "y_mbps", "unit": "Mbps", "default": 1, "scale": "log",
         "ranges": {"rl1": [0.5, 2], "rl2": [0.2, 5], "rl3": [0.1, 10]}},
    ],
}


class ToyUseCase:
    name = "toy"
    baselines = ("flat", "tilted")

    def __init__(self, space):
        self.space = space

    def _unit(self, cfg):
        return np.array([d.to_unit(cfg[d.name]) for d in self.space.dimensions])

    def new_model(self, seed):
        return {"points": [self._unit(self.space.default()).tolist()]}

    def train(self, model, distribution, iterations, seed):
        rng = np.random.default_rng(seed)
        pts = [self._unit(distribution.sample(rng)).tolist() for _ in range(iterations)]
        return {"points": model["points"] + pts}

    def test(self, policy, configs, seed):
        out = []
        for cfg in configs:
            u = self._unit(cfg)
            if policy == "flat":
                out.append(-0.05)
            elif policy == "tilted":
                out.append(-0.3 * u[0])
            elif policy == "optimal":
                out.append(0.0)
            else:
                out.append(-float(np.min(np.linalg.norm(np.array(policy["points"]) - u, axis=1))))
        return np.array(out)

    def save_model(self, model, path: Path):
        path.write_text(json.dumps(model))

    def load_model(self, path: Path):
        return json.loads(path.read_text())


@pytest.fixture()
def toy(tmp_path):
    f = tmp_path / "toy.json"
    f.write_text(json.dumps(SPACE_JSON))
    return ToyUseCase(load_space(f))


def test_toy_implements_the_interface(toy):
    assert isinstance(toy, UseCase)


def test_search_finds_a_gap_at_least_as_large_as_random_trials(toy):
    model = toy.new_model(0)  # knows only the default config (centre)
    cfg = CurriculumConfig(baselines=("flat",), envs_per_trial=2)
    result = search_gap(toy.space, lambda c: trial_score(toy, model, cfg, c, 0), n_trials=15, n_random=10, seed=3)
    assert len(result.trials) == 15
    assert result.best_gap == max(t.gap for t in result.trials)
    assert result.best_gap >= max(t.gap for t in result.trials[:10])
    # the largest gap is far from the only trained point: in a corner of the unit square
    u = toy._unit(result.best_config)
    assert np.linalg.norm(u - toy._unit(toy.space.default())) > 0.4
    for d in toy.space.dimensions:
        lo, hi = d.bounds
        assert all(lo <= t.config[d.name] <= hi for t in result.trials)


def test_batched_trials_ask_k_points_at_once_and_batch_1_is_the_one_at_a_time_search(toy):
    model = toy.new_model(0)
    cfg = CurriculumConfig(baselines=("flat",), envs_per_trial=2)
    score = lambda c: trial_score(toy, model, cfg, c, 0)  # noqa: E731
    calls = []

    def many(configs):
        calls.append(len(configs))
        return [score(c) for c in configs]

    one = search_gap(toy.space, score, n_trials=15, n_random=10, seed=3)
    same = search_gap(toy.space, score, n_trials=15, n_random=10, seed=3, gap_many=many, batch=1)
    assert [t.config for t in same.trials] == [t.config for t in one.trials]
    calls.clear()
    batched = search_gap(toy.space, score, n_trials=15, n_random=10, seed=3, gap_many=many, batch=5)
    assert calls == [10, 5]  # the random trials together, then one wave of 5 guided ones (the paper's 15 in 2)
    assert len(batched.trials) == 15
    assert [t.config for t in batched.trials[:10]] == [t.config for t in one.trials[:10]]
    guided = [tuple(t.config.values()) for t in batched.trials[10:]]
    assert len(set(guided)) == 5  # the liar strategy spreads a batch: five different points
    assert batched.best_gap >= max(t.gap for t in batched.trials[:10])
    with pytest.raises(BadInputError, match="batch"):
        search_gap(toy.space, score, n_trials=3, n_random=1, seed=3, batch=0)


def test_promotion_weights_follow_genet(toy):
    dist = ConfigDistribution.udr(toy.space, "rl3")
    dist.promote({"x_s": 1.0, "y_mbps": 0.2})
    dist.promote({"x_s": 9.0, "y_mbps": 5.0})
    assert np.allclose([e.weight for e in dist.entries], [0.49, 0.21, 0.3])
    assert dist.entries[2].ranges["x_s"] == (9.0, 9.0)
    rng = np.random.default_rng(0)
    draws = [dist.sample(rng) for _ in range(4000)]
    frac_point = np.mean([d["x_s"] == 9.0 for d in draws])
    assert abs(frac_point - 0.3) < 0.03
    with pytest.raises(ConfigSpaceError, match="outside"):
        dist.promote({"x_s": 50})


def test_curriculum_closes_the_gap_it_finds(toy, tmp_path):
    cfg = CurriculumConfig(rounds=3, iterations_per_round=20, baselines=("flat",), envs_per_trial=2, seed=1)
    model, dist, state = run_curriculum(toy, cfg, tmp_path / "run", log=lambda s: None)
    assert len(state.rounds) == 3 and len(dist.entries) == 4
    for r in state.rounds:
        best = r["best_config"]
        # after training on the promoted config, the model's gap there is (nearly) closed
        gap_after, _ = trial_score(toy, model, cfg, best, 0)
        assert gap_after < r["best_gap"]
    assert (tmp_path / "run" / "rounds.csv").read_text().count("\n") == 4
    png = plot_rounds(state, tmp_path / "rounds.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_exactly(toy, tmp_path):
    cfg4 = CurriculumConfig(rounds=4, iterations_per_round=10, baselines=("flat",), envs_per_trial=2, seed=2)
    cfg2 = CurriculumConfig(rounds=2, iterations_per_round=10, baselines=("flat",), envs_per_trial=2, seed=2)
    full_model, full_dist, full_state = run_curriculum(toy, cfg4, tmp_path / "full", log=lambda s: None)
    run_curriculum(toy, cfg2, tmp_path / "cut", log=lambda s: None)  # "killed" after round 1
    model, dist, state = run_curriculum(toy, cfg4, tmp_path / "cut", resume=True, log=lambda s: None)
    assert model == full_model
    assert dist.to_dict() == full_dist.to_dict()
    assert [r["best_config"] for r in state.rounds] == [r["best_config"] for r in full_state.rounds]


def test_ensemble_takes_the_largest_gap_over_baselines(toy):
    model = toy.new_model(0)
    config = {"x_s": 10.0, "y_mbps": 1.0}
    single, _ = trial_score(toy, model, CurriculumConfig(baselines=("flat",), envs_per_trial=1), config, 0)
    ens, detail = trial_score(toy, model, CurriculumConfig(baselines=("flat", "tilted"), ensemble=True,
                                                           envs_per_trial=1), config, 0)
    tilted = detail["tilted"] - detail["rl"]
    assert ens == pytest.approx(max(single, tilted))
    opt, _ = trial_score(toy, model, CurriculumConfig(objective="gap_to_optimum", envs_per_trial=1), config, 0)
    assert opt == pytest.approx(0.0 - detail["rl"])


def test_bad_curriculum_input_is_rejected_before_training(toy, tmp_path):
    with pytest.raises(ValueError, match="unknown objective"):
        CurriculumConfig(objective="best")
    with pytest.raises(ConfigSpaceError, match="unknown range"):
        ConfigDistribution.udr(toy.space, "rl7")
    with pytest.raises(ConfigSpaceError, match="real trace"):
        ConfigDistribution.udr(toy.space, "rl3", real_prob=0.3, n_real_traces=0)
    cfg = CurriculumConfig(rounds=1, iterations_per_round=2, baselines=("flat",), envs_per_trial=1, n_trials=3,
                           n_random=3)
    run_curriculum(toy, cfg, tmp_path / "r", log=lambda s: None)

    class Other(ToyUseCase):
        name = "other"
    with pytest.raises(ValueError, match="use case 'toy'"):
        run_curriculum(Other(toy.space), cfg, tmp_path / "r", resume=True, log=lambda s: None)


def test_promotion_distance_skips_configs_promoted_before(toy):
    from genet.curriculum.loop import choose_promotion, distance
    from genet.curriculum.search import Trial
    corner = {"x_s": 0.0, "y_mbps": 0.1}
    near = {"x_s": 0.3, "y_mbps": 0.11}  # 0.03 and ~0.02 away in unit coordinates
    far = {"x_s": 6.0, "y_mbps": 3.0}
    assert distance(toy.space, corner, near) == pytest.approx(0.03)
    assert distance(toy.space, corner, far) == pytest.approx(np.log(30) / np.log(100))  # y on its log scale
    trials = [Trial(near, 9.0), Trial(corner, 10.0), Trial(far, 2.0)]
    assert choose_promotion(toy.space, trials, [corner], 0.0).config == corner  # Genet: always the best
    assert choose_promotion(toy.space, trials, [corner], 0.05).config == far
    assert choose_promotion(toy.space, trials, [corner], 0.01).config == near
    assert choose_promotion(toy.space, trials, [corner, far], 0.05) is None
    with pytest.raises(Exception, match="promotion_distance"):
        CurriculumConfig(promotion_distance=1.5)


def test_a_minimum_gap_promotes_only_trials_above_it(toy):
    from genet.curriculum.loop import choose_promotion
    from genet.curriculum.search import Trial
    corner = {"x_s": 0.0, "y_mbps": 0.1}
    near = {"x_s": 0.3, "y_mbps": 0.11}
    far = {"x_s": 6.0, "y_mbps": 3.0}
    trials = [Trial(near, 9.0), Trial(corner, 10.0), Trial(far, 2.0)]
    assert choose_promotion(toy.space, trials, [], 0.0, min_gap=0.0).config == corner
    assert choose_promotion(toy.space, trials, [], 0.0, min_gap=9.9).config == corner
    assert choose_promotion(toy.space, trials, [], 0.0, min_gap=10.0) is None  # above it, not at it
    negative = [Trial(near, -0.5), Trial(far, -5.3)]  # the policy beats the baseline everywhere it looked
    assert choose_promotion(toy.space, negative, [], 0.0) is not None  # Genet promotes it anyway
    assert choose_promotion(toy.space, negative, [], 0.0, min_gap=0.0) is None
    # with a distance: the corner was promoted, near is within 0.05 of it, far's gap is under the minimum
    assert choose_promotion(toy.space, trials, [corner], 0.05, min_gap=1.0).config == far
    assert choose_promotion(toy.space, trials, [corner], 0.05, min_gap=5.0) is None
    with pytest.raises(Exception, match="min_promotion_gap"):
        CurriculumConfig(min_promotion_gap=float("nan"))


def test_a_curriculum_whose_gaps_stay_under_the_minimum_promotes_nothing(toy, tmp_path):
    logs = []
    cfg = CurriculumConfig(rounds=2, iterations_per_round=5, baselines=("flat",), envs_per_trial=2, seed=1,
                           min_promotion_gap=1e9)
    _, dist, state = run_curriculum(toy, cfg, tmp_path / "run", log=logs.append)
    assert len(dist.entries) == 1
    assert [r["promoted"] for r in state.rounds] == [None, None]
    assert sum("is not above the minimum 1e+09" in line for line in logs) == 2, logs
    cfg = CurriculumConfig(rounds=2, iterations_per_round=5, baselines=("flat",), envs_per_trial=2, seed=1,
                           min_promotion_gap=-1e9)  # every gap is above it: Genet's promotions
    _, dist, state = run_curriculum(toy, cfg, tmp_path / "run2", log=lambda s: None)
    assert [r["promoted"]["config"] for r in state.rounds] == [r["best_config"] for r in state.rounds]


def test_curriculum_with_promotion_distance_promotes_each_region_once(toy, tmp_path):
    # distance 1 covers the whole unit cube: only round 0 promotes, later rounds keep the distribution
    cfg = CurriculumConfig(rounds=3, iterations_per_round=5, baselines=("flat",), envs_per_trial=2, seed=1,
                           promotion_distance=1.0)
    _, dist, state = run_curriculum(toy, cfg, tmp_path / "run", log=lambda s: None)
    assert len(dist.entries) == 2
    assert state.rounds[0]["promoted"]["config"] == state.rounds[0]["best_config"]
    assert [r["promoted"] for r in state.rounds[1:]] == [None, None]
    assert (tmp_path / "run" / "rounds.csv").read_text().splitlines()[2].endswith(",none")
    # a small distance promotes in every round, never within it of an earlier promotion
    cfg = CurriculumConfig(rounds=4, iterations_per_round=5, baselines=("flat",), envs_per_trial=2, seed=1,
                           promotion_distance=0.1)
    _, dist, state = run_curriculum(toy, cfg, tmp_path / "run2", log=lambda s: None)
    promoted = [r["promoted"]["config"] for r in state.rounds if r["promoted"]]
    from genet.curriculum.loop import distance
    assert all(distance(toy.space, a, b) > 0.1 for i, a in enumerate(promoted) for b in promoted[:i])
    assert len(dist.entries) == 1 + len(promoted)
    assert plot_rounds(state, tmp_path / "rounds.png").is_file()
