"""ABR use case of the Genet curriculum: Pensieve-PPO on the batched simulator (genet/abr/training.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genet.abr.evaluate import evaluate
from genet.abr.params import EnvParams
from genet.abr.training import AbrTrainConfig, AbrUseCase, train_steps_per_second
from genet.curriculum.distribution import ConfigDistribution, Entry
from genet.curriculum.loop import CurriculumConfig, run_curriculum
from genet.curriculum.usecase import UseCase
from traces.generators import generate_trace


def small(**kw) -> AbrTrainConfig:
    base = dict(torch_threads=1, n_envs=8, rollout_steps=16)
    base.update(kw)
    return AbrTrainConfig(**base)


@pytest.fixture(scope="module")
def easy_use_case():
    # faster learning than Pensieve-PPO's defaults (lr 1e-4, entropy weight from ln 6) so that a handful of
    # updates show it; the update rule itself is unchanged
    return AbrUseCase(AbrTrainConfig(torch_threads=1, learning_rate=1e-3, entropy_init=0.05))


def point_distribution(space, config) -> ConfigDistribution:
    return ConfigDistribution(space, [Entry(1.0, {k: (float(v), float(v)) for k, v in config.items()}, "point")])


def test_abr_use_case_implements_the_interface():
    uc = AbrUseCase(small())
    assert isinstance(uc, UseCase)
    agent = uc.new_model(0)
    assert agent.net.obs_shape == (6, 8) and agent.net.n_actions == 6
    assert agent.entropy.weight == pytest.approx(np.log(6))
    assert torch.get_num_threads() == 1


def test_ppo_improves_qoe_on_an_easy_config(easy_use_case):
    uc = easy_use_case
    easy = {**uc.space.default(), "min_bandwidth_mbps": 3.0, "max_bandwidth_mbps": 6.0,
            "bandwidth_change_interval_s": 5.0}
    configs = [easy] * 6
    agent = uc.new_model(0)
    before = uc.test(agent, configs, 1).mean()
    uc.train(agent, point_distribution(uc.space, easy), 12, seed=0)
    after = uc.test(agent, configs, 1).mean()
    bba = uc.test("bba", configs, 1).mean()
    assert after > before + 50.0, (before, after)
    assert after > 0.8 * bba, (after, bba)
    h = agent.history
    assert len(h) == 12 and agent.env_steps == 12 * uc.config.batch_size
    assert h[-1]["episode_reward_mean"] > h[0]["episode_reward_mean"]
    assert all(np.isfinite(r["value_loss"]) for r in h)


def test_test_of_baselines_equals_the_evaluate_path():
    uc = AbrUseCase(small())
    rng = np.random.default_rng(5)
    configs = [uc.space.sample(rng, "rl2") for _ in range(4)]
    seed = 11
    traces = [generate_trace("abr", c, np.random.default_rng([seed, i]), space=uc.space)
              for i, c in enumerate(configs)]
    conv = uc.config.test_conventions()
    for name in ("mpc", "bba"):
        # params from each trace's meta["config"]; QoE scaled to a 48-chunk video
        ref = [r.qoe / r.chunks * 48 for r in evaluate(name, traces, uc.video, conv)]
        np.testing.assert_allclose(uc.test(name, configs, seed), ref, rtol=0, atol=1e-9)
    # environment i is a function of (config, seed, i): same seed, same numbers; other seed, other traces
    assert np.array_equal(uc.test("bba", configs, seed), uc.test("bba", configs, seed))
    assert not np.array_equal(uc.test("bba", configs, seed), uc.test("bba", configs, seed + 1))
    # the per-environment properties of the config reach the simulator
    _, params = uc.test_environments(configs, seed)
    assert params[0] == EnvParams.from_config(configs[0])


def test_optimal_dominates_mpc_on_generated_environments():
    uc = AbrUseCase(small())
    cfg = {**uc.space.default(), "max_bandwidth_mbps": 3.0, "min_bandwidth_mbps": 0.5}
    opt = uc.test("optimal", [cfg] * 2, 3)
    mpc = uc.test("mpc", [cfg] * 2, 3)
    assert np.all(opt >= mpc - 1e-6), (opt, mpc)


def test_save_load_resume_continues_exactly(tmp_path):
    dist = ConfigDistribution.udr(AbrUseCase(small()).space, "rl3")
    full_uc = AbrUseCase(small())
    full = full_uc.train(full_uc.new_model(3), dist, 4, seed=7)

    uc = AbrUseCase(small())
    cut = uc.train(uc.new_model(3), dist, 2, seed=7)
    uc.save_model(cut, tmp_path / "ckpt.pt")
    uc2 = AbrUseCase(small())
    resumed = uc2.load_model(tmp_path / "ckpt.pt")
    assert resumed.updates == 2 and resumed.entropy.weight == cut.entropy.weight
    uc2.train(resumed, dist, 2, seed=999)  # the saved RNG continues; the seed is for new rollouts only
    for (k, v), (k2, v2) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    keys = ("mean_step_reward", "episodes", "policy_loss", "value_loss", "entropy_weight")
    assert [[r[k] for k in keys] for r in full.history] == [[r[k] for k in keys] for r in resumed.history]
    assert full.entropy.weight == resumed.entropy.weight < np.log(6)


def test_pool_refresh_keeps_running_sessions():
    uc = AbrUseCase(small(n_envs=4, rollout_steps=5))
    dist = ConfigDistribution.udr(uc.space, "rl2")
    agent = uc.train(uc.new_model(0), dist, 1, seed=0)
    roll = agent.rollout
    before = {k: getattr(roll.sim, k).copy() for k in ("ptr", "last_time_s", "buffer_ms", "chunk_idx", "last_quality",
                                                        "n_chunks", "rtt_ms", "max_buffer_ms", "chunk_ms")}
    names = [roll.sim.traces[k].meta["config"] for k in roll.sim.tr_id]
    uc._refresh_pool(roll, dist)
    for k, v in before.items():
        assert np.array_equal(getattr(roll.sim, k), v), k
    assert [roll.sim.traces[k].meta["config"] for k in roll.sim.tr_id] == names
    assert len(roll.sim.traces) == 4 + uc.config.n_fresh


def test_real_traces_are_mixed_in(shared_dir):
    from traces import load_traces
    real = load_traces(shared_dir / "traces" / "abr" / "norway-val")[:3]
    uc = AbrUseCase(small(n_envs=4, rollout_steps=60), real_traces=real)
    dist = ConfigDistribution.udr(uc.space, "rl1", real_prob=1.0, n_real_traces=len(real))
    agent = uc.train(uc.new_model(0), dist, 1, seed=0)
    pool = agent.rollout.sim.traces
    assert all(any(t is r for r in real) for t in pool)
    assert agent.history[0]["episodes"] >= 4
    with pytest.raises(ValueError, match="real traces"):
        AbrUseCase(small()).train(uc.new_model(0), dist, 1, seed=0)


def test_bad_input_is_rejected(tmp_path):
    from traces.config_space import load_space
    uc = AbrUseCase(small())
    with pytest.raises(ValueError, match="use case 'cc'"):
        uc.train(uc.new_model(0), ConfigDistribution.udr(load_space("cc"), "rl3"), 1, seed=0)
    with pytest.raises(ValueError, match="unknown ABR baseline 'bbr'"):
        uc.test("bbr", [uc.space.default()], 0)
    with pytest.raises(ValueError, match="unknown simulator mode"):
        AbrTrainConfig(mode="dash")
    with pytest.raises(ValueError, match="n_envs"):
        AbrTrainConfig(n_envs=0)
    bad = tmp_path / "cc.pt"
    torch.save({"format": "genet-cc-agent-v1", "use_case": "cc"}, bad)
    with pytest.raises(ValueError, match="not an ABR agent checkpoint.*'cc'"):
        uc.load_model(bad)
    with pytest.raises(FileNotFoundError):
        uc.load_model(tmp_path / "missing.pt")


def test_curriculum_runs_one_round_with_the_abr_use_case(tmp_path):
    uc = AbrUseCase(small(n_envs=4, rollout_steps=8))
    cfg = CurriculumConfig(rounds=1, iterations_per_round=1, n_trials=2, n_random=2, envs_per_trial=2,
                           baselines=("bba",), seed=0)
    model, dist, state = run_curriculum(uc, cfg, tmp_path / "run", initial=ConfigDistribution.udr(uc.space, "rl2"),
                                        log=lambda s: None)
    assert len(state.rounds) == 1 and len(dist.entries) == 2
    assert dist.entries[1].weight == pytest.approx(0.3)
    trials = state.rounds[0]["trials"]
    assert len(trials) == 2 and all(np.isfinite(t["gap"]) for t in trials)
    assert model.updates == 2
    resumed = uc.load_model(tmp_path / "run" / "model-round1")
    assert resumed.updates == 2


def test_throughput_helper_reports_positive_rates():
    uc = AbrUseCase(small(n_envs=4, rollout_steps=8))
    out = train_steps_per_second(uc, updates=1, warmup=1)
    assert out["transitions_per_s"] > 0 and out["batch"] == 32 and out["torch_threads"] == 1


def test_export_to_onnx_matches_torch_and_evaluates_the_same(tmp_path):
    import argparse

    from genet.abr.training import build_use_case, export_policy, train_config_dict
    from genet.policy import OnnxPolicy
    args = argparse.Namespace(n_envs=4, steps_per_update=32, epochs=2, lr=1e-3, minibatch=None)
    uc = build_use_case(args)
    assert (uc.config.n_envs, uc.config.rollout_steps, uc.config.epochs, uc.config.learning_rate) == (4, 8, 2, 1e-3)
    assert train_config_dict(uc)["rollout_steps"] == 8
    uc.config.torch_threads = 1
    agent = uc.train(uc.new_model(0), ConfigDistribution.udr(uc.space, "rl2"), 1, seed=0)
    path = export_policy(uc, agent, tmp_path / "abr.onnx", {"method": "udr"})  # raises if ort and torch differ
    pol = OnnxPolicy(path)
    assert pol.spec.use_case == "abr" and pol.spec.observation_layout == "abr.pensieve-6x8"
    assert pol.extra_metadata("method") == "udr" and pol.extra_metadata("updates") == 1
    configs = [uc.space.default()] * 3
    np.testing.assert_allclose(uc.test(str(path), configs, 2), uc.test(agent, configs, 2), atol=1e-9)


def test_genet_layout_trains_with_jump_actions():
    uc = AbrUseCase(small(layout="abr.genet-6x6", n_envs=4, rollout_steps=8))
    agent = uc.train(uc.new_model(0), ConfigDistribution.udr(uc.space, "rl1"), 1, seed=0)
    assert agent.net.obs_shape == (6, 6) and agent.net.n_actions == 3
    assert np.isfinite(uc.test(agent, [uc.space.default()], 0)).all()


def test_unplayable_real_traces_are_skipped_with_a_warning(shared_dir):
    from traces import load_traces
    from traces.trace import Trace
    real = load_traces(shared_dir / "traces" / "abr" / "norway-val")[:2]
    slow = Trace(np.array([0.0, 1.0, 2.0]), np.array([0.01, 0.01, 0.01]), name="too-slow")
    with pytest.warns(UserWarning, match="skipping 1 of 3 real traces.*too-slow"):
        uc = AbrUseCase(small(), real_traces=[real[0], slow, real[1]])
    assert uc.real_traces == [real[0], real[1]] and uc.skipped_real_traces == ["too-slow"]
    with pytest.raises(ValueError, match="none of the 1 real traces"):
        AbrUseCase(small(), real_traces=[slow])


def test_entropy_rate_sets_the_adaptive_entropy_step():
    uc = AbrUseCase(small(entropy_rate=1e-2))
    agent = uc.new_model(0)
    assert agent.entropy.lr == 1e-2
    assert AbrUseCase(small()).new_model(0).entropy.lr == small().learning_rate
    with pytest.raises(ValueError, match="entropy_rate"):
        AbrTrainConfig(entropy_rate=-1.0)


def _actor_critic(agent):
    return ([p.detach().clone() for p in agent.net.actor.parameters()],
            [p.detach().clone() for p in agent.net.critic.parameters()])


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_critic_warmup_trains_the_critic_alone_for_its_updates():
    """critic_warmup_updates=2: the first two updates leave the actor and the adaptive entropy weight exactly as
    they were while the critic learns; the third moves the actor and the weight."""
    _check_critic_warmup(workers=1)


def test_critic_warmup_with_rollout_workers():
    """The same with two rollout workers, whose update is the parent's."""
    _check_critic_warmup(workers=2)


def _check_critic_warmup(workers):
    uc = AbrUseCase(small(n_envs=4, rollout_steps=8, critic_warmup_updates=2, rollout_workers=workers,
                          entropy_init=0.05, entropy_rate=1e-2))
    dist = ConfigDistribution.udr(uc.space, "rl3")
    agent = uc.new_model(1)
    actor0, critic0 = _actor_critic(agent)
    weight0 = agent.entropy.weight
    try:
        uc.train(agent, dist, 2, seed=3)
        actor2, critic2 = _actor_critic(agent)
        assert _same(actor2, actor0) and not _same(critic2, critic0)
        assert agent.entropy.weight == weight0 and agent.updates == 2
        uc.train(agent, dist, 1, seed=3)
    finally:
        uc.close()
    actor3, _ = _actor_critic(agent)
    assert not _same(actor3, actor0) and agent.entropy.weight != weight0
    assert [r["entropy_weight"] for r in agent.history] == [weight0, weight0, weight0]


def test_fine_tune_options_reach_the_config_and_are_checked(tmp_path, capsys):
    from app.cli import main
    from genet.abr.training import train_config_from_args
    args = type("A", (), {"entropy_init": 0.01, "critic_warmup": 5, "critic_warmup_lr": 1e-3})()
    cfg = train_config_from_args(args)
    assert cfg.entropy_init == 0.01 and cfg.critic_warmup_updates == 5 and cfg.critic_warmup_lr == 1e-3
    assert train_config_from_args(type("A", (), {})()).critic_warmup_updates == 0
    with pytest.raises(ValueError, match="critic_warmup_updates"):
        AbrTrainConfig(critic_warmup_updates=-1)
    for extra, message in ((["--agent", "a3c", "--critic-warmup", "3"], "--critic-warmup is an option of --agent ppo"),
                           (["--entropy-init", "-1"], "--entropy-init must be >= 0"),
                           (["--critic-warmup", "-2"], "--critic-warmup must be >= 0"),
                           (["--critic-warmup-lr", "1e-3"], "--critic-warmup-lr is the step size of --critic-warmup N"),
                           (["--critic-warmup", "3", "--critic-warmup-lr", "0"], "--critic-warmup-lr must be > 0")):
        assert main(["train", "abr", *extra, "--out", str(tmp_path / "a"), "--no-progress"]) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "a").exists()


def test_critic_warmup_lr_steps_the_critic_faster_and_is_restored():
    """critic_warmup_lr: the warm-up's Adam steps are that size (the critic's first update moves each weight by
    about it), and the optimiser's own step size is back for the updates after the warm-up."""
    dist = None
    moved = {}
    for lr in (None, 1e-2):
        uc = AbrUseCase(small(n_envs=4, rollout_steps=8, critic_warmup_updates=1, critic_warmup_lr=lr))
        dist = dist or ConfigDistribution.udr(uc.space, "rl3")
        agent = uc.new_model(1)
        _, critic0 = _actor_critic(agent)
        uc.train(agent, dist, 1, seed=3)
        _, critic1 = _actor_critic(agent)
        moved[lr] = max(float((a - b).abs().max()) for a, b in zip(critic0, critic1))
        assert [g["lr"] for g in agent.optimizer.param_groups] == [uc.config.learning_rate]
    # Adam's first steps move a weight by at most about lr per step (5 epochs of one full-batch step each)
    assert moved[None] <= 5 * 1e-4 * 1.01 < 5e-3 < moved[1e-2] <= 5 * 1e-2 * 1.01
    with pytest.raises(ValueError, match="critic_warmup_lr"):
        AbrTrainConfig(critic_warmup_lr=0.0)


def test_an_anchored_fine_tune_keeps_its_start_through_a_checkpoint(tmp_path):
    """anchor_coef > 0: model_from keeps a frozen copy of the start (outside the optimiser), the updates report
    their KL to it, and a checkpoint brings the same anchor back; without a start, or with rollout workers, it
    is an error."""
    base = AbrUseCase(small(n_envs=4, rollout_steps=8))
    start = base.new_model(4)
    base.save_model(start, tmp_path / "start.pt")
    uc = AbrUseCase(small(n_envs=4, rollout_steps=8, anchor_coef=5.0))
    agent = uc.model_from(tmp_path / "start.pt", 1)
    assert _same(list(agent.anchor.parameters()), list(start.net.parameters()))
    assert not any(p.requires_grad for p in agent.anchor.parameters())
    in_optimizer = {id(p) for g in agent.optimizer.param_groups for p in g["params"]}
    assert not in_optimizer & {id(p) for p in agent.anchor.parameters()}
    dist = ConfigDistribution.udr(uc.space, "rl3")
    uc.train(agent, dist, 2, seed=3)
    assert all(r["anchor_kl"] >= 0 for r in agent.history) and agent.history[-1]["anchor_kl"] > 0
    assert _same(list(agent.anchor.parameters()), list(start.net.parameters()))  # the anchor never moves
    uc.save_model(agent, tmp_path / "tuned.pt")
    back = uc.load_model(tmp_path / "tuned.pt")
    assert _same(list(back.anchor.parameters()), list(start.net.parameters()))
    with pytest.raises(ValueError, match="start the agent with model_from"):
        uc.train(uc.new_model(0), dist, 1, seed=3)
    with pytest.raises(ValueError, match="rollout_workers must be 1"):
        AbrTrainConfig(anchor_coef=1.0, rollout_workers=2)


def test_anchor_coef_needs_a_start_and_one_process(tmp_path, capsys):
    from app.cli import main
    for extra, message in ((["--anchor-coef", "5"], "give --agent ppo (the default) and --init-from MODEL"),
                           (["--agent", "a3c", "--anchor-coef", "5"], "--anchor-coef keeps a PPO fine-tune"),
                           (["--init-from", str(tmp_path), "--anchor-coef", "-1"], "--anchor-coef must be >= 0"),
                           (["--init-from", str(tmp_path), "--anchor-coef", "1", "--rollout-workers", "2"],
                            "leave --rollout-workers at 1")):
        assert main(["train", "abr", *extra, "--out", str(tmp_path / "a"), "--no-progress"]) == 1, extra
        assert message in capsys.readouterr().err
