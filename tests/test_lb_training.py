"""LB training (genet/lb/training.py): a short PPO run learns, a resumed run continues exactly, the export runs
in genet eval lb, and the curriculum's test compares the model with the baselines on the same episodes."""

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
    with pytest.raises(Exception, match="no optimum"):
        uc.test("optimal", configs, 0)


def test_genet_train_lb_trains_exports_and_evaluates_and_refuses_methods_without_an_optimum(tmp_path):
    import subprocess
    import sys
    genet = [sys.executable, "-m", "app.cli"]
    bad = subprocess.run(genet + ["train", "lb", "--method", "cl3", "--out", str(tmp_path / "x")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "--method cl3: not for lb: LB has no computable optimum" in bad.stderr
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
