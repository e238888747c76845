"""LB training (genet/lb/training.py): a short PPO run learns, a resumed run continues exactly, the export runs
in genet eval lb, the curriculum's test compares the model with the baselines on the same episodes, and CL2/CL3 run
against LB's stand-in optimum, the no-wait bound (an upper bound that must bound every policy)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from genet.curriculum.distribution import ConfigDistribution, Entry  # noqa: E402
from genet.lb.simulator import LbSetting  # noqa: E402
from genet.lb.training import LbTrainConfig, LbUseCase, export_policy  # noqa: E402
from traces.workload import WorkloadConfig  # noqa: E402

# Two workers, 0.2 and 1.8 units/ms; 200 jobs of up to 1000 units every ~400 ms: the slow worker cannot keep up
# with half the jobs, so random dispatch queues without bound while sending most jobs to the fast one does not.
TWO = LbSetting(name="two", service_rates=(0.2, 1.8), workload=WorkloadConfig(num_jobs=200, job_interval_ms=400,
                                                                              job_size_max_work=1000),
                queue_shuffle_prob=0.0)
POINT = {"service_rate_per_ms": 1.8, "job_size_max_work": 1000, "job_interval_ms": 400, "num_jobs": 200,
         "queue_shuffle_prob": 0.1}


def small_use_case(**kw):
    cfg = LbTrainConfig(setting=TWO, n_envs=8, steps_per_update=1024, minibatch=256, epochs=4, reward_scale=1e-4,
                        **kw)
    uc = LbUseCase(cfg)
    return uc, ConfigDistribution(uc.space, [Entry(1.0, {k: (v, v) for k, v in POINT.items()})])


def test_a_short_run_learns_to_beat_random_on_two_workers():
    uc, dist = small_use_case()
    agent = uc.new_model(0)
    configs = [POINT] * 6
    random = uc.test("random", configs, 1).mean()
    before = uc.test(agent, configs, 1).mean()
    uc.train(agent, dist, 10, seed=0)
    after = uc.test(agent, configs, 1).mean()  # the model samples its worker, as Genet's test does
    assert agent.updates == 10 and agent.env_steps == 10 * 1024 and len(agent.history) == 10
    assert after > 10 * random and after > before  # returns are negative: 10x less total completion time
    assert after > uc.test("least_work", configs, 1).mean()  # least-work-left ignores the rates


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    uc, dist = small_use_case()
    a = uc.new_model(3)
    uc.train(a, dist, 1, seed=3)
    uc.save_model(a, tmp_path / "m.pt")
    b = LbUseCase(uc.config).load_model(tmp_path / "m.pt")
    uc.train(a, dist, 1, seed=3)
    uc.train(b, dist, 1, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values()))
    assert a.history[-1]["mean_step_reward"] == b.history[-1]["mean_step_reward"]


def test_export_runs_in_genet_eval_lb_and_baselines_meet_the_same_episodes(tmp_path):
    from genet.lb.evaluate import episodes, evaluate_lb
    from genet.lb.registry import make_policy
    uc = LbUseCase(LbTrainConfig(n_envs=2, steps_per_update=64, minibatch=32, epochs=1))
    agent = uc.new_model(0)
    uc.train(agent, ConfigDistribution.udr(uc.space, "rl1"), 1, seed=0)
    path = export_policy(uc, agent, tmp_path / "lb.onnx", metadata={"note": "test"})
    pol = make_policy(str(path), n_workers=3)
    assert pol.spec.observation_layout == "lb.genet-3w" and pol.extra_metadata("note") == "test"
    eps = [e for e in episodes("genet", 2, seed=0)]
    eps = [type(e)(e.name, e.setting, e.workload.head(100), e.rng_seed, e.source, e.index) for e in eps]
    rows = evaluate_lb(["least_work", str(path)], eps, seed=0).rows
    assert [r["policy"] for r in rows] == ["least_work", "least_work", "lb", "lb"]
    # the model and its export choose alike on the same episodes (sampling with the same seed)
    configs = [uc.space.default()]
    sampling = make_policy(str(path), n_workers=3, seed=5, deterministic=False)
    assert uc.test(agent, configs, 5)[0] == uc.test(sampling, configs, 5)[0]


def test_genet_train_lb_trains_exports_and_evaluates_and_refuses_unknown_methods(tmp_path):
    import subprocess
    import sys
    genet = [sys.executable, "-m", "app.cli"]
    bad = subprocess.run(genet + ["train", "lb", "--method", "cl4", "--out", str(tmp_path / "x")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "--method 'cl4': unknown method" in bad.stderr
    assert not (tmp_path / "x").exists()
    run = tmp_path / "run"
    res = subprocess.run(genet + ["train", "lb", "--method", "genet", "--steps", "8192", "--n-envs", "4",
                                  "--steps-per-update", "2048", "--rounds", "1", "--trials", "2", "--random-trials",
                                  "1", "--envs-per-trial", "1", "--trial-batch", "1", "--seed", "0", "--out", str(run),
                                  "--no-progress"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"use_case": "lb"' in (run / "run.json").read_text()
    onnx = tmp_path / "lb.onnx"
    exp = subprocess.run(genet + ["export", str(run), "-o", str(onnx)], capture_output=True, text=True, timeout=300)
    assert exp.returncode == 0 and onnx.is_file(), exp.stderr[-2000:]
    ev = subprocess.run(genet + ["eval", "lb", "--policy", f"least_work,{onnx}", "-n", "2", "--seed", "1",
                                 "--no-progress"], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0 and "least_work" in ev.stdout and "lb " in ev.stdout, ev.stderr[-2000:]


# ------------------------------------------------ the no-wait bound (LB's stand-in optimum) and CL2 / CL3
def test_the_no_wait_bound_by_hand_and_reached_when_nobody_waits():
    import numpy as np
    from genet.lb.registry import make_policy
    from genet.lb.simulator import no_wait_return, simulate
    from traces.workload import Workload
    rates = (0.5, 2.0)
    sizes = [10.0, 7.0, 3.9, 100.0]
    # fastest worker 2 units/ms: floor(10/2) + floor(7/2) + floor(3.9/2) + floor(100/2) = 5 + 3 + 1 + 50 = 59 ms
    spaced = Workload("spaced", np.array([0.0, 100.0, 200.0, 300.0]), np.array(sizes))
    assert no_wait_return(spaced, rates) == -59.0
    assert no_wait_return(spaced, (2.0, 0.5)) == -59.0  # the fastest worker, wherever it is
    assert no_wait_return(spaced, (1.0,)) == -(10 + 7 + 3 + 100)
    setting = LbSetting(name="two", service_rates=rates, queue_shuffle_prob=0.0)
    # jobs far apart: sed sends each to the idle fast worker, nobody waits, the bound is reached exactly
    assert simulate(make_policy("sed", n_workers=2), [spaced], setting, seeds=[0])[0].reward == -59.0
    # all at once: someone waits or goes to the slow worker, every policy falls short of the bound
    burst = Workload("burst", np.zeros(4), np.array(sizes))
    for name in ("sed", "least_work", "round_robin", "random"):
        got = simulate(make_policy(name, n_workers=2, seed=1), [burst], setting, seeds=[0])[0].reward
        assert got < no_wait_return(burst, rates), name
    with pytest.raises(Exception, match="service rates must be finite and > 0"):
        no_wait_return(spaced, (1.0, 0.0))


def test_the_optimum_of_the_lb_use_case_bounds_every_policy_on_seeded_episodes():
    import numpy as np
    from genet.lb.simulator import no_wait_return
    from genet.lb.training import trial_episodes
    uc = LbUseCase(LbTrainConfig(n_envs=2, steps_per_update=64, minibatch=32, epochs=1))
    rng = np.random.default_rng(7)
    configs = []
    for _ in range(4):  # random points of RL3, kept short (at most 150 jobs)
        c = uc.space.sample(rng, "rl3")
        configs.append({**c, "num_jobs": min(c["num_jobs"], 150)})
    bound = uc.test("optimal", configs, 3)
    # the use case's optimum is the no-wait bound of the very episodes the policies meet
    episodes = trial_episodes(configs, 3, uc.config.base_setting(), uc.space)
    assert list(bound) == [no_wait_return(w, s.service_rates) for s, w, _ in episodes]
    agent = uc.new_model(0)
    for policy in (*uc.baselines, agent):
        got = uc.test(policy, configs, 3)
        assert np.all(got <= bound), (policy, got, bound)
    assert np.all(bound < 0)


def _small_space(tmp_path):
    """traces/spaces/lb.json with every range of num_jobs at 10-40 jobs (a curriculum round in seconds)."""
    import json
    from pathlib import Path
    raw = json.loads((Path(__file__).resolve().parents[1] / "traces" / "spaces" / "lb.json").read_text())
    for d in raw["dimensions"]:
        if d["name"] == "num_jobs":
            d["default"], d["ranges"] = 20, {r: [10, 40] for r in d["ranges"]}
    path = tmp_path / "lb-small.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("method, compared", [("cl2", "least_work"), ("cl3", "rl")])
def test_genet_train_lb_cl2_and_cl3_run_against_the_no_wait_bound(tmp_path, method, compared):
    import csv
    import json
    from app.cli import main
    out = tmp_path / method
    assert main(["train", "lb", "--method", method, "--steps", "256", "--n-envs", "2", "--steps-per-update", "128",
                 "--minibatch", "64", "--epochs", "1", "--rounds", "1", "--trials", "2", "--random-trials", "2",
                 "--envs-per-trial", "2", "--space", str(_small_space(tmp_path)), "--seed", "0", "--out", str(out),
                 "--no-progress"]) == 0
    state = json.loads((out / "state.json").read_text())
    trials = state["rounds"][0]["trials"]
    assert len(trials) == 2 and state["config"]["objective"] == {"cl2": "baseline_to_optimum",
                                                                 "cl3": "gap_to_optimum"}[method]
    for t in trials:  # objective = bound - baseline (cl2) / bound - RL (cl3), >= 0 since the bound bounds
        assert t["gap"] == pytest.approx(t["detail"]["optimal"] - t["detail"][compared])
        assert t["gap"] >= 0 and t["detail"]["optimal"] < 0
    rows = list(csv.DictReader((out / "rounds.csv").open()))
    assert len(rows) == 1 and float(rows[0]["best_gap"]) == pytest.approx(max(t["gap"] for t in trials))
    assert (out / "model.pt").is_file()
