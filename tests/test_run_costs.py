"""The cost model of `genet run` (app/run/costs.py, docs/cost-model.md): the scheduler on hand-made items (waves,
sequential phases, real-time runs capped by `jobs`, items waiting for items), the plan's estimates as its
one-worker figures, and `genet run --dry-run --workers N` on examples/paper.toml. Model seconds only: nothing
here runs a work item or reads a clock."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.run import costs, engine, plan, schema
from app.run.costs import Phase, Work, stage_wall_s

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "examples" / "paper.toml"


def test_ten_equal_items_on_four_workers_take_three_waves():
    items = [costs.single(f"i{k}", 2.0) for k in range(10)]
    assert stage_wall_s(items, 4) == pytest.approx(3 * 2.0)
    assert stage_wall_s(items, 1) == pytest.approx(10 * 2.0)
    assert stage_wall_s(items, 10) == pytest.approx(2.0)
    assert stage_wall_s(items, 100) == pytest.approx(2.0)


def test_one_item_spreads_its_tasks_over_free_workers_up_to_its_cap():
    work = Work((Phase("start-up", 1, 4.0), Phase("evaluations", 10, 1.0)))
    assert stage_wall_s([work], 1) == pytest.approx(14.0)
    assert stage_wall_s([work], 3) == pytest.approx(4.0 + 4 * 1.0)  # 10 tasks on 3 workers: 4 waves
    capped = Work((Phase("evaluations", 10, 1.0, cap=2),))
    assert stage_wall_s([capped], 100) == pytest.approx(5.0)


def test_sequential_phases_are_not_parallelised():
    rounds = Work(tuple(Phase(f"round {r}", 1, 3.0) for r in range(9)))
    assert stage_wall_s([rounds], 1) == pytest.approx(27.0)
    assert stage_wall_s([rounds], 128) == pytest.approx(27.0)


def test_curriculum_rounds_in_turn_trials_in_a_round_batched():
    """9 rounds of 10 random + 5 guided trials: with many workers a round costs one wave of random trials, then
    the guided ones one at a time (--trial-batch 1) or in one wave (--trial-batch 5); training stays serial."""
    kw = dict(uc="cc", steps=80000, n_envs=None, method="genet", rounds=9, trials=15, random_trials=10,
              envs_per_trial=10)
    trial_s = 10 * costs.TRIAL_ENV_S["cc"]
    train_s = 80000 / costs.TRAIN_STEPS_PER_S["cc"]
    one = costs.train_work(**kw, trial_batch=1)
    five = costs.train_work(**kw, trial_batch=5)
    assert one.serial_s == pytest.approx(five.serial_s) == pytest.approx(
        costs.TRAIN_START_S + train_s + 9 * 15 * trial_s)
    assert stage_wall_s([one], 64) == pytest.approx(costs.TRAIN_START_S + train_s + 9 * (1 + 5) * trial_s)
    assert stage_wall_s([five], 64) == pytest.approx(costs.TRAIN_START_S + train_s + 9 * (1 + 1) * trial_s)
    udr = costs.train_work("cc", 80000, None, "udr")
    assert stage_wall_s([udr], 64) == pytest.approx(udr.serial_s)  # one run's updates: one worker's work


def test_emulated_runs_are_real_time_and_capped_by_jobs():
    """40 runs of 10 s, jobs = 4: 4 links at once on 1 and 2 cores (the config's jobs are sized for 2), twice as
    many per further 2 cores, never more runs at once than there are runs."""
    work = costs.emulate_work(sessions=40, run_s=10.0, jobs=4)
    run_s = 10.0 * costs.EMU_OVERHEAD
    start = costs.EMU_START_S
    assert work.serial_s == pytest.approx(start + 10 * run_s)
    assert stage_wall_s([work], 1) == pytest.approx(start + 10 * run_s)
    assert stage_wall_s([work], 2) == pytest.approx(start + 10 * run_s)
    assert stage_wall_s([work], 4) == pytest.approx(start + 5 * run_s)
    assert stage_wall_s([work], 1000) == pytest.approx(start + 1 * run_s)
    assert costs.links_at_once(4, 1) == costs.links_at_once(4, 2) == 4 and costs.links_at_once(4, 8) == 16


def test_deploy_paths_back_to_back_unless_disjoint():
    seq = costs.deploy_work("cc", 20.0, n_schemes=4, repetitions=5)
    par = costs.deploy_work("cc", 20.0, n_schemes=4, repetitions=5, parallel="disjoint-paths")
    per_path = 4 * 5 * (20.0 + costs.DEPLOY_RUN_EXTRA_S["cc"])
    assert stage_wall_s([seq], 128) == pytest.approx(costs.DEPLOY_SETUP_S + costs.DEPLOY_PATHS * per_path)
    assert stage_wall_s([par], 128) == pytest.approx(costs.DEPLOY_SETUP_S + per_path)
    assert stage_wall_s([par], 1) == pytest.approx(costs.DEPLOY_SETUP_S + per_path)  # real time: no worker each


def test_an_item_waits_for_the_items_of_its_stage_it_reads():
    items = [("b", costs.single("b", 1.0), ("a",)), ("a", costs.single("a", 5.0), ()),
             ("c", costs.single("c", 5.0), ())]
    assert stage_wall_s(items, 8) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        stage_wall_s([("x", costs.single("x", 1.0), ("y",)), ("y", costs.single("y", 1.0), ("x",))], 4)
    with pytest.raises(ValueError):
        stage_wall_s(items, 0)


def _paper_plan(tmp_path):
    cfg, _ = schema.load(str(PAPER))
    return engine.Runner(plan.build(cfg, tmp_path / "run"), tmp_path / "run")


def test_each_planned_item_costs_its_estimate_on_one_worker(tmp_path):
    runner = _paper_plan(tmp_path)
    shaped = [i for s in schema.STAGES for i in runner.plan[s] if i.work is not None]
    assert {i.stage for i in shaped} >= {"train", "simulate", "emulate", "deploy"}
    for item in shaped:
        assert item.est_s == pytest.approx(item.work.serial_s)
        assert stage_wall_s([item.cost()], 1) == pytest.approx(item.est_s), item.id


def test_trial_batch_of_a_policys_extra_args_shapes_its_rounds():
    assert plan._trial_batch(["--entropy-rate", "0.002", "--trial-batch", "5"]) == 5
    assert plan._trial_batch(["--trial-batch=3"]) == 3
    assert plan._trial_batch(["--trial-batch", "x"]) == plan._trial_batch(()) == 1


def test_prediction_of_the_paper_config_falls_with_workers(tmp_path):
    stages = _paper_plan(tmp_path).to_run(list(schema.STAGES))
    totals = [sum(costs.plan_wall_s(stages, w).values()) for w in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert all(b <= a + 1e-6 for a, b in zip(totals, totals[1:])), totals
    assert totals[-1] < totals[0] / 2
    per_stage = [costs.plan_wall_s(stages, w) for w in (1, 8, 128)]
    for s in stages:
        assert per_stage[0][s] >= per_stage[1][s] - 1e-6 >= per_stage[2][s] - 2e-6, s


def _hms(text: str) -> float:
    parts = [int(x) for x in text.split(":")]
    return float(sum(v * 60 ** k for k, v in enumerate(reversed(parts))))


def test_dry_run_workers_prints_the_prediction(tmp_path, capsys):
    from app.cli import main
    totals = {}
    for w in (1, 2, 8, 32, 128):
        assert main(["run", str(PAPER), "--out", str(tmp_path / "o"), "--dry-run", "--workers", str(w)]) == 0
        out = capsys.readouterr().out
        estimate = _hms(re.search(r"^estimated time: (\S+)", out, re.M).group(1))
        table = out.split("predicted wall time per stage", 1)[1]
        for stage in schema.STAGES:
            assert re.search(rf"^  {stage}\s", table, re.M), stage
        cols = re.search(r"^  total\s+(.*)$", table, re.M).group(1).split()
        assert len(cols) == (1 if w == 1 else 2)
        assert _hms(cols[0]) == pytest.approx(estimate, abs=1.0)  # one worker: the plan's estimate
        totals[w] = _hms(cols[-1])
    ws = sorted(totals)
    assert all(totals[b] <= totals[a] for a, b in zip(ws, ws[1:])), totals
    assert totals[128] < totals[1]


def test_workers_without_dry_run_is_one_line(tmp_path, capsys):
    from app.cli import main
    assert main(["run", str(PAPER), "--out", str(tmp_path / "o"), "--workers", "4"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--dry-run" in err, err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        main(["run", str(PAPER), "--dry-run", "--workers", "0"])
