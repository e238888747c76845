"""The Aurora Gymnasium environment genet/Aurora-v0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from genet.cc.env import AuroraConfig, AuroraEnv, apply_rate_action, register_envs
from genet.cc.link import LinkConfig, mbps_to_pps
from genet.cc.senders import RateSender
from genet.cc.simulator import Simulation
from conftest import shared_path
from traces import Trace, load_traces

register_envs()  # gymnasium.make / make_vec below need the id (importing genet registers nothing)


def const_trace(bw=10.0, delay_ms=50.0, queue=100, loss=0.0, dur=30.0):
    return Trace.constant(bw, dur, delay_ms=delay_ms, queue_packets=queue, loss_rate=loss)


def rollout(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    rewards = []
    for a in actions:
        obs, r, term, trunc, _ = env.step(np.array([a], np.float32))
        out.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.array(out), np.array(rewards)


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
def test_registered_env_passes_gymnasium_checks():
    env = gym.make("genet/Aurora-v0")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.observation_space.shape == (30,)
    assert env.action_space.shape == (1,)


def test_same_seed_same_trajectory():
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, 60)
    a = rollout(AuroraEnv(config_range="rl2"), actions, seed=11)
    b = rollout(AuroraEnv(config_range="rl2"), actions, seed=11)
    c = rollout(AuroraEnv(config_range="rl2"), actions, seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[1].shape != c[1].shape or not np.array_equal(a[1], c[1])


def test_rate_action_mapping_and_clamp():
    assert apply_rate_action(100, 0.5) == 150
    assert apply_rate_action(100, -0.5) == pytest.approx(100 / 1.5)
    assert apply_rate_action(100, 0.5, delta_scale=0.1) == pytest.approx(105)
    assert apply_rate_action(100, -1e12) == 5.0
    assert apply_rate_action(100, 1e12) == 20000.0
    with pytest.raises(ValueError, match="finite"):
        apply_rate_action(100, float("nan"))


def test_zero_actions_keep_the_initial_rate_and_reward_matches_its_formula():
    env = AuroraEnv(traces=[const_trace()])
    obs, info = env.reset(seed=0)
    init_pps = 10 / 0.1  # 10 packets per min RTT
    assert info["rate_mbps"] == pytest.approx(init_pps * 12000 / 1e6)
    rewards, steps, lengths = [], 0, []
    while True:
        obs, r, term, trunc, info = env.step(np.zeros(1, np.float32))
        rewards.append(r)
        lengths.append(info["interval_end_s"] - info["interval_start_s"])
        steps += 1
        assert not term
        if trunc:
            break
    assert env.sim.now_s >= 30.0
    # one interval per RTT (~0.1 s): about 300 steps in 30 s
    assert 250 <= steps <= 310
    assert np.median(lengths) == pytest.approx(0.1 + 2 / mbps_to_pps(10), abs=0.011)
    # underloaded link: throughput = rate, RTT = 100 ms + serialisation, no loss
    serial = 1 / mbps_to_pps(10)
    expect = 500 * init_pps / mbps_to_pps(10) - 1000 * (0.1 + serial)
    assert np.median(rewards[5:]) == pytest.approx(expect, abs=1.5)
    features = obs.reshape(10, 3)
    np.testing.assert_allclose(features[:, 1], 1.0, atol=1e-6)  # latency ratio
    np.testing.assert_allclose(features[:, 2], 1.0, atol=0.1)  # recv ratio


def test_constant_zero_policy_sees_the_same_packets_as_a_constant_rate_sender():
    trace = const_trace(bw=2.0, delay_ms=30, queue=20)
    env = AuroraEnv(traces=[trace])
    env.reset(seed=3)
    while not env.step(np.zeros(1))[3]:
        pass
    log = env.episode_log()
    link = LinkConfig.from_trace(trace)
    ref = Simulation(link, RateSender(10 / 0.06 * 12000 / 1e6), seed=0).run(env.sim.now_s)
    n = min(len(ref), len(log))
    np.testing.assert_array_equal(log.kind[:n], ref.kind[:n])
    np.testing.assert_allclose(log.time_s[:n], ref.time_s[:n], rtol=1e-12)


def test_overdriving_inflates_latency_and_loses_packets():
    env = AuroraEnv(traces=[const_trace(bw=5.0, delay_ms=20, queue=50)])
    env.reset(seed=0)
    infos, obs_hist = [], []
    for _ in range(40):
        obs, r, term, trunc, info = env.step(np.array([0.3], np.float32))
        infos.append(info)
        obs_hist.append(obs.reshape(10, 3)[-1])
    obs_hist = np.array(obs_hist)
    assert infos[-1]["rate_mbps"] > 20
    assert max(i["loss_rate"] for i in infos) > 0.5
    assert obs_hist[:, 1].max() > 2.0  # latency ratio: queue of 50 pkts at 5 Mbps = 120 ms over 40 ms
    assert obs_hist[:, 0].max() > 0.05  # sent latency inflation while the queue builds
    assert obs_hist[-1, 2] < 0.5  # recv ratio: receiving far less than sending


def test_reward_options_change_the_reward_as_documented():
    t = np.arange(0, 30.1, 0.1)
    bw = np.where(t < 15, 2.0, 8.0)
    trace = Trace(t, bw, delay_ms=20, queue_packets=50, loss_rate=0.0)
    actions = np.zeros(30)  # ~0.35-s intervals: all before the change at 15 s
    _, r_trace = rollout(AuroraEnv(traces=[trace]), actions, seed=0)
    _, r_int = rollout(AuroraEnv(traces=[trace], reward_normaliser="interval"), actions, seed=0)
    _, r_aur = rollout(AuroraEnv(traces=[trace], reward_form="aurora"), actions, seed=0)
    # before 15 s the interval bandwidth (2 Mbps) is below the trace mean (5 Mbps): a larger throughput term
    assert np.all(r_int[3:] > r_trace[3:])
    assert not np.allclose(r_aur, r_trace)
    with pytest.raises(ValueError, match="reward_form"):
        AuroraConfig(reward_form="x")


def test_env_on_pantheon_traces_uses_documented_defaults():
    traces = load_traces(shared_path("traces", "cc", "pantheon-ethernet"))[:3]
    env = AuroraEnv(traces=traces)
    obs, _ = env.reset(seed=0)
    assert env.link.queue_packets == 10 and env.link.loss_rate == 0.0
    assert env.link.delay_ms == traces[0].delay_ms or env.trace is not traces[0]
    for _ in range(20):
        obs, r, term, trunc, info = env.step(env.action_space.sample() * 0 + 0.1)
        assert np.isfinite(r) and env.observation_space.contains(obs)


def test_env_from_one_fixed_config_of_the_cc_space():
    cfg = {"max_bandwidth_mbps": 8.0, "min_bandwidth_mbps": 0.1, "delay_ms": 30.0, "bandwidth_change_interval_s": 0,
           "loss_rate": 0.01, "queue_bdp": 2.0}
    env = AuroraEnv(env_config=cfg)
    env.reset(seed=1)
    link = env.link
    assert (link.delay_ms, link.loss_rate, link.duration_s) == (30.0, 0.01, 30.0)
    bw = link.bandwidth_mbps
    assert np.all(bw == bw[0]) and 0.1 <= bw[0] <= 8.0  # interval 0: one constant draw
    assert link.queue_packets == max(2, int(mbps_to_pps(bw[0]) * 0.060 * 2.0))
    with pytest.raises(ValueError):
        AuroraEnv(env_config={"delay_ms": -3})
    with pytest.raises(ValueError, match="unknown cc config range 'rl7'"):
        AuroraEnv(config_range="rl7")


def test_vectorised_with_gymnasium_sync_vector_env():
    envs = gym.make_vec("genet/Aurora-v0", num_envs=2, vectorization_mode="sync", config_range="rl1")
    obs, _ = envs.reset(seed=4)
    assert obs.shape == (2, 30)
    for _ in range(5):
        obs, rew, term, trunc, info = envs.step(np.zeros((2, 1), np.float32))
    assert rew.shape == (2,) and np.all(np.isfinite(rew))
    assert not np.array_equal(obs[0], obs[1])  # different environments per sub-env
    envs.close()


def test_env_and_a_per_packet_controller_make_the_same_decisions():
    """AuroraEnv drives genet.cc.aurora.AuroraController; a controller fed the same events one packet
    at a time (as the real sender feeds it) gives the same observations, rates and rewards."""
    from genet.cc.aurora import AuroraController
    from genet.cc.monitor import EV_ACKED, EV_LOST, EV_SENT
    env = AuroraEnv(traces=[const_trace(12.0, 20.0, 60)])
    rng = np.random.default_rng(3)
    actions = rng.uniform(-0.5, 0.8, 40)
    obs0, _ = env.reset(seed=1)
    env_obs, env_rates, env_rewards = [obs0], [], []
    for a in actions:
        obs, r, _, trunc, _ = env.step(np.array([a], np.float32))
        env_obs.append(obs)
        env_rates.append(env.rate_pps)
        env_rewards.append(r)
        if trunc:
            break
    ctl = AuroraController(env.aurora, initial_rate_pps=10.0 / 0.04)
    got_obs, got_rates, got_rewards = [], [], []
    for i, (log, mi_env) in enumerate(zip(env.episode_logs, env.intervals)):
        if i > 0:
            got_rates.append(ctl.apply_action(actions[i - 1]))
        ctl.start(mi_env.send_start_s)
        for kind, t, rtt in zip(log.kind, log.time_s, log.rtt_s):
            {EV_SENT: lambda: ctl.monitor.on_packet_sent(t), EV_ACKED: lambda: ctl.monitor.on_packet_acked(t, rtt),
             EV_LOST: lambda: ctl.monitor.on_packet_lost(t)}[int(kind)]()
        sent_t = log.time_s[log.kind == EV_SENT]
        mi = ctl.finish_interval(mi_env.send_end_s, float(np.mean(1.0 / env._bw_at(sent_t))) if sent_t.size else 0.0)
        got_obs.append(ctl.observation.copy())
        if i > 0:
            got_rewards.append(ctl.reward(mi, env.avg_bandwidth_pps))
    np.testing.assert_allclose(np.array(got_obs), np.array(env_obs), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_rates, env_rates)
    np.testing.assert_allclose(got_rewards, env_rewards, rtol=1e-9)


def test_measured_normaliser_is_the_largest_delivery_rate_so_far():
    from genet.cc.aurora import AuroraController
    from genet.cc.reward import aurora_reward
    env = AuroraEnv(traces=[const_trace(12.0, 20.0, 60)], reward_normaliser="measured")
    env.reset(seed=0)
    best = 0.0
    for _ in range(30):
        _, r, _, _, _ = env.step(np.array([0.3], np.float32))
        mi = env.intervals[-1]
        best = max(best, mi.throughput_pps)
        assert env.controller.max_delivery_pps == best
        if best > 0:
            assert r == pytest.approx(aurora_reward(mi.throughput_pps, mi.avg_latency_s, mi.loss_ratio, best))
    assert best == pytest.approx(mbps_to_pps(12.0), rel=0.05)  # over-driven: it measures the link
    assert isinstance(env.controller, AuroraController)
