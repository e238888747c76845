"""PPO training of Aurora policies (genet.cc.training): the UseCase contract,
exact resume from a checkpoint, test() against baselines, and learning on an
easy environment. Step counts are tiny; the long runs are not tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genet.cc.training import GENET_RULES, CcAgent, CcTrainConfig, CcUseCase, optimal_reward
from genet.curriculum.distribution import ConfigDistribution
from genet.curriculum.usecase import UseCase

TINY = dict(n_envs=2, steps_per_update=200, minibatch=50, epochs=2)


@pytest.fixture()
def uc():
    return CcUseCase(CcTrainConfig(**TINY))


def _params(agent: CcAgent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.net.state_dict().values()]


def test_cc_use_case_implements_the_interface(uc):
    assert isinstance(uc, UseCase)
    assert uc.name == "cc" and set(uc.baselines) == {"bbr", "cubic"}
    assert uc.space.use_case == "cc"


def test_train_updates_the_model_and_records_history(uc):
    dist = ConfigDistribution.udr(uc.space, "rl1")
    agent = uc.new_model(0)
    before = _params(agent)
    seen = []
    uc.on_update = lambda a, rec: seen.append(rec)
    uc.train(agent, dist, 2, seed=0)
    assert agent.updates == 2 and agent.env_steps == 2 * 200
    assert [r["update"] for r in seen] == [1, 2] and seen == agent.history
    rec = agent.history[-1]
    for key in ("mean_step_reward", "policy_loss", "value_loss", "entropy", "approx_kl", "transitions_per_s"):
        assert np.isfinite(rec[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(agent)))
    # the optimiser used Aurora's settings
    group = agent.optimizer.param_groups[0]
    assert group["lr"] == 1e-3 and group["eps"] == 1e-5


def test_same_seed_same_training_and_chunks_equal_one_call(uc):
    dist = ConfigDistribution.udr(uc.space, "rl1")
    a, b = uc.new_model(3), uc.new_model(3)
    uc.train(a, dist, 2, seed=3)
    uc.train(b, dist, 1, seed=3)
    uc.train(b, dist, 1, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(_params(a), _params(b)))
    assert [r["mean_step_reward"] for r in a.history] == [r["mean_step_reward"] for r in b.history]
    c = uc.new_model(4)
    uc.train(c, dist, 2, seed=4)
    assert [r["mean_step_reward"] for r in a.history] != [r["mean_step_reward"] for r in c.history]


def test_checkpoint_resume_continues_exactly(uc, tmp_path):
    dist = ConfigDistribution.udr(uc.space, "rl1")
    full = uc.new_model(1)
    uc.train(full, dist, 3, seed=1)

    cut = uc.new_model(1)
    uc.train(cut, dist, 1, seed=1)  # mid-episode: 100 steps per env < one episode
    uc.save_model(cut, tmp_path / "ckpt")
    del cut
    resumed = CcUseCase(CcTrainConfig()).load_model(tmp_path / "ckpt")  # the config comes from the file
    assert resumed.config.steps_per_update == 200
    uc.train(resumed, dist, 2, seed=999)  # the seed is ignored once a rollout exists
    assert all(torch.equal(x, y) for x, y in zip(_params(full), _params(resumed)))
    assert resumed.optimizer.state_dict()["state"][0]["step"] == full.optimizer.state_dict()["state"][0]["step"]
    assert [r["mean_step_reward"] for r in resumed.history] == [r["mean_step_reward"] for r in full.history]


def test_load_rejects_other_files(uc, tmp_path):
    with pytest.raises(FileNotFoundError):
        uc.load_model(tmp_path / "missing")
    (tmp_path / "junk").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk"):
        uc.load_model(tmp_path / "junk")
    torch.save({"format": "something-else"}, tmp_path / "other")
    with pytest.raises(ValueError, match="not a CC agent checkpoint"):
        uc.load_model(tmp_path / "other")


def test_test_runs_model_and_baselines_on_the_same_environments(uc):
    space = uc.space
    configs = [dict(space.default(), max_bandwidth_mbps=4.0, delay_ms=20.0, bandwidth_change_interval_s=0.0)] * 2
    agent = uc.new_model(0)
    rl = uc.test(agent, configs, seed=0)
    bbr = uc.test("bbr", configs, seed=0)
    opt = uc.test("optimal", configs, seed=0)
    assert rl.shape == bbr.shape == opt.shape == (2,)
    assert np.array_equal(rl, uc.test(agent, configs, seed=0))  # deterministic
    # the ideal sender bounds every real one (constant bandwidth, no loss: 500 - 1000 * min RTT)
    assert opt == pytest.approx(500 - 1000 * 0.04)
    assert np.all(bbr < opt) and np.all(rl < opt)
    # BBR on a clean 4 Mbps link is a good sender; an untrained policy is not
    assert np.all(bbr > 0.5 * opt) and np.mean(bbr) > np.mean(rl)
    with pytest.raises(ValueError, match="unknown CC baseline 'vegas'"):
        uc.test("vegas", configs, 0)


def test_optimal_reward_accounts_for_loss():
    from traces import Trace
    clean = Trace.constant(10, 30.0, delay_ms=50, queue_packets=20, loss_rate=0.0)
    lossy = Trace.constant(10, 30.0, delay_ms=50, queue_packets=20, loss_rate=0.01)
    assert optimal_reward(clean) == pytest.approx(500 - 100)
    assert optimal_reward(lossy) == pytest.approx(500 * 0.99 - 100 - 20)


def test_training_learns_on_one_easy_environment():
    """On one fixed link, a few updates must improve the policy's mean step
    reward: the untrained Gaussian (std 1) floods the queue."""
    uc = CcUseCase(CcTrainConfig(n_envs=2, steps_per_update=600, minibatch=150, epochs=6, learning_rate=3e-3))
    space = uc.space
    point = dict(space.default(), max_bandwidth_mbps=4.0, delay_ms=20.0, bandwidth_change_interval_s=0.0,
                 loss_rate=0.0, queue_bdp=2.0)
    dist = ConfigDistribution.udr(space, "rl1")
    dist.entries[0].ranges = {k: (v, v) for k, v in space.validate(point).items() if k in dist.entries[0].ranges}
    agent = uc.new_model(0)
    uc.train(agent, dist, 8, seed=0)
    first = np.mean([r["mean_step_reward"] for r in agent.history[:2]])
    last = np.mean([r["mean_step_reward"] for r in agent.history[-2:]])
    assert last > first


def test_real_traces_are_mixed_in_with_their_probability():
    from traces import Trace
    real = [Trace.constant(3, 30.0, delay_ms=30, queue_packets=20, loss_rate=0.0, name="real-a")]
    uc = CcUseCase(CcTrainConfig(**TINY), real_traces=real)
    dist = ConfigDistribution.udr(uc.space, "rl1", real_prob=0.3, n_real_traces=1)
    rng = np.random.default_rng(0)
    names = [uc._episode_trace(dist, rng).name for _ in range(400)]
    frac = np.mean([n == "real-a" for n in names])
    assert 0.22 < frac < 0.38
    agent = uc.new_model(0)
    uc.train(agent, dist, 1, seed=0)
    assert agent.env_steps == 200
    with pytest.raises(ValueError, match="real traces"):
        CcUseCase(CcTrainConfig(**TINY))._episode_trace(ConfigDistribution.udr(uc.space, "rl1", 1.0, 1), rng)


def test_gap_after_first_ack_scores_what_follows_the_first_ack():
    """The BO-trial option drops exactly the packets sent before each sender's first ACK (issue 17: an
    Aurora sender's pre-feedback burst on a 0.1-Mbit/s link), for the model and BBR alike."""
    from genet.cc.metrics import after_first_ack, summarize
    from genet.cc.policies import run_aurora
    from genet.cc.simulator import EV_ACKED, EV_SENT
    from genet.cc.training import trial_runs

    corner = dict(CcUseCase().space.default(), max_bandwidth_mbps=0.1, min_bandwidth_mbps=0.1, delay_ms=2.0,
                  bandwidth_change_interval_s=0.0, loss_rate=0.0, queue_bdp=0.2)
    trace, link, seed = next(trial_runs([corner], 0))
    # Genet's rules (Aurora's start-up: 10 packets per min RTT from the first packet, no window); the policy
    # halves its rate every MI
    log, _ = run_aurora(lambda obs: -1.0, trace, CcTrainConfig(**GENET_RULES).aurora(), seed)
    late = after_first_ack(log)
    first_ack_s = log.time_s[log.kind == EV_ACKED][0]
    early = set(log.packet_id[(log.kind == EV_SENT) & (log.time_s < first_ack_s)].tolist())
    assert len(early) > 100  # 10 packets per 4-ms RTT until the first ACK, ~124 ms later
    assert set(late.packet_id.tolist()) == set(log.packet_id.tolist()) - early
    assert len(late) == len(log) - sum(np.isin(log.packet_id, list(early)))
    assert summarize(late, link, "x").loss_rate < summarize(log, link, "x").loss_rate
    no_ack = type(log)(*(getattr(log, f)[log.kind == EV_SENT] for f in
                         ("kind", "time_s", "packet_id", "rtt_s", "queue_delay_s")))
    assert after_first_ack(no_ack) is no_ack
    # the use case's BO trials: whole-run reward by default, the later packets' with the option
    whole = CcUseCase(CcTrainConfig(**TINY, **GENET_RULES))
    cut = CcUseCase(CcTrainConfig(**TINY, **GENET_RULES, gap_after_first_ack=True))
    def halving(obs):
        return np.full((len(obs), 1), -1.0, np.float32)
    for policy in ("bbr", halving):
        r_whole, r_cut = whole.test(policy, [corner], 0)[0], cut.test(policy, [corner], 0)[0]
        assert r_whole != r_cut
    assert cut.test(halving, [corner], 0)[0] == pytest.approx(
        summarize(late, link, "x").reward)
