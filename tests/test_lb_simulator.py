"""The LB simulator (genet/lb/simulator.py) against hand-computed episodes, its seeding, its batched core, and the
Gymnasium environment genet/LoadBalance-v0."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from genet.lb.observations import LbState, observe, policy_spec, state_layout
from genet.lb.registry import make_policy
from genet.lb.simulator import GENET, PARK, LbBatch, LbSetting, setting_from_config, simulate
from genet.policy import PolicyBase
from traces.config_space import load_space
from traces.workload import Workload, WorkloadConfig

REPO = Path(__file__).resolve().parents[1]


class Scripted(PolicyBase):
    """Takes the given actions in order (one session) and records every state it saw."""

    name = "scripted"

    def __init__(self, actions, n_workers=2):
        self.spec = policy_spec(state_layout(n_workers))
        self.actions = list(actions)
        self.seen = []

    def act(self, observations, active=None):
        self.seen.append(np.array(observations))
        return np.array([self.actions.pop(0)])


TWO = LbSetting(name="two", service_rates=(1.0, 2.0), queue_shuffle_prob=0.0)
# arrival ms, size: J0 (0, 4), J1 (1, 4), J2 (2, 2), J3 (3, 6), J4 (10, 3)
FIVE = Workload("five", [0, 1, 2, 3, 10], [4, 4, 2, 6, 3])


def test_hand_computed_episode_two_workers_five_jobs():
    """Worker 0 (1 unit/ms) gets J0, J2, J4; worker 1 (2 units/ms) J1, J3.
    w0: J0 0-4, J2 waits 2-4 then 4-6, J4 10-13.  w1: J1 1-3 (int(4/2)), J3 arrives at 3, the very ms J1 ends:
    Genet pops the arrival first, and the worker whose job ends now counts as idle, so J3 runs 3-6.
    Sojourns: 4, 2, 4, 3, 3 -> return -16. Per decision: [0,1) 1 job; [1,2) 2; [2,3) 3; [3,4) 3 then [4,6) 2;
    [10,13) 1."""
    batch = LbBatch(1, 2, 5)
    batch.load(0, FIVE, TWO.service_rates, 0.0, np.random.default_rng(0))
    rewards = []
    states = []
    for a in [0, 1, 0, 1, 0]:
        states.append(batch.state())
        rewards.append(batch.step(np.array([a]))[0])
    assert rewards == [-1, -2, -3, -7, -3] and batch.done[0]
    assert batch.start_ms[0].tolist() == [0, 1, 4, 3, 10] and batch.finish_ms[0].tolist() == [4, 3, 6, 6, 13]
    # what the dispatcher saw at J3's arrival (t = 3): w0 has J0 in service (1 ms left) and J2 (2 units) waiting,
    # w1 still counts J1, whose completion at t = 3 is not popped yet
    s = states[3]
    assert s.queued_work.tolist() == [[2, 0]] and s.jobs_in_system.tolist() == [[2, 1]]
    assert s.in_service_remaining_ms.tolist() == [[1, 0]] and s.job_size.tolist() == [6]
    res = simulate(Scripted([0, 1, 0, 1, 0]), [FIVE], TWO, seeds=[0])[0]
    assert res.reward == -16 and res.sojourn_ms.tolist() == [4, 2, 4, 3, 3] and res.decisions == 5
    assert res.busy_ms.tolist() == [4 + 2 + 3, 2 + 3]


def test_parks_event_order_pops_an_earlier_completion_before_the_arrival():
    """Park pushes J3's arrival after J1's completion: at t = 3 the completion pops first, so the dispatcher sees
    worker 1 empty; the sojourns (and so the return) are the same here."""
    park_two = replace(TWO, event_order="park")
    pol = Scripted([0, 1, 0, 1, 0])
    res = simulate(pol, [FIVE], park_two, seeds=[0])[0]
    assert res.reward == -16 and res.finish_ms.tolist() == [4, 3, 6, 6, 13]
    seen = pol.seen[3][0]  # lb.state-2w: queued work, jobs, remaining ms, rates, job size
    assert seen[0:2].tolist() == [2, 0] and seen[2:4].tolist() == [2, 0] and seen[4:6].tolist() == [1, 0]


def test_the_queue_shuffle_before_a_dequeue():
    """J0 (size 10) runs 0-10 on a 1 unit/ms worker while J1 and J2 (size 1) wait. FIFO serves J1 first; with
    queue_shuffle_prob 1 Genet's walk swaps the last of two waiting jobs with the first, so J2 goes first."""
    w = Workload("shuffle", [0, 1, 2], [10, 1, 1])
    one = LbSetting(name="one", service_rates=(1.0,), queue_shuffle_prob=0.0)
    fifo = simulate(Scripted([0, 0, 0], 1), [w], one, seeds=[0])[0]
    assert fifo.finish_ms.tolist() == [10, 11, 12] and fifo.reward == -(10 + 10 + 10)
    for seed in range(20):  # j < i: with probability 1 the swap always happens, whatever the stream
        shuffled = simulate(Scripted([0, 0, 0], 1), [w], replace(one, queue_shuffle_prob=1.0), seeds=[seed])[0]
        assert shuffled.finish_ms.tolist() == [10, 12, 11] and shuffled.reward == -(10 + 11 + 9)
    # four waiting jobs, probability 1: Sattolo's walk, a cyclic permutation: the head never goes first
    w4 = Workload("four", [0, 1, 2, 3, 4], [10, 1, 1, 1, 1])
    firsts = set()
    for seed in range(30):
        res = simulate(Scripted([0] * 5, 1), [w4], replace(one, queue_shuffle_prob=1.0), seeds=[seed])[0]
        firsts.add(int(np.argmin(np.where(res.start_ms > 0, res.start_ms, np.inf))))
    assert firsts == {2, 3, 4}


def test_service_time_is_truncated_to_whole_ms_and_can_be_zero():
    w = Workload("tiny", [0, 0], [5, 7])
    fast = LbSetting(name="fast", service_rates=(10.0, 2.0), queue_shuffle_prob=0.0)
    res = simulate(Scripted([0, 1]), [w], fast, seeds=[0])[0]
    assert res.finish_ms.tolist() == [0, 3] and res.reward == -3  # int(5/10) = 0 ms, int(7/2) = 3 ms


def test_same_seed_same_episode_other_seed_other_episode():
    ws = [GENET.workload_for(s).head(300) for s in range(3)]
    pol = lambda: make_policy("random", n_workers=3, seed=5)  # noqa: E731
    a = simulate(pol(), ws, GENET, seeds=11)
    b = simulate(pol(), ws, GENET, seeds=11)
    c = simulate(pol(), ws, GENET, seeds=12)
    assert [r.reward for r in a] == [r.reward for r in b]
    assert all(np.array_equal(x.finish_ms, y.finish_ms) for x, y in zip(a, b))
    assert [r.reward for r in a] != [r.reward for r in c]  # the shuffles differ


def test_a_batch_gives_what_each_episode_gives_alone():
    ws = [GENET.workload_for(s).head(n) for s, n in ((1, 400), (2, 150), (3, 250))]
    rngs = lambda: [np.random.default_rng(s) for s in (7, 8, 9)]  # noqa: E731
    together = simulate(make_policy("least_work"), ws, GENET, seeds=rngs())
    alone = [simulate(make_policy("least_work"), [w], GENET, seeds=[r])[0] for w, r in zip(ws, rngs())]
    assert [r.reward for r in together] == [r.reward for r in alone]
    for r in together:  # a drained episode's return is minus its total sojourn time
        assert r.finished.all() and r.reward == -r.sojourn_ms.sum()


def test_episodes_beyond_the_memory_bound_run_in_consecutive_batches(monkeypatch):
    import genet.lb.simulator as sim
    ws = [GENET.workload_for(s).head(n) for s, n in ((1, 400), (2, 150), (3, 250))]
    one = simulate(make_policy("least_work"), ws, GENET, seeds=4)
    monkeypatch.setattr(sim, "MAX_BATCH_BYTES", sim.batch_bytes(2, 3, 250))
    assert sim._memory_groups([w.n_jobs for w in ws], 3) == [(0, 1), (1, 3)]
    assert [r.reward for r in simulate(make_policy("least_work"), ws, GENET, seeds=4)] == [r.reward for r in one]


def test_the_plain_python_core_gives_the_compiled_cores_results(monkeypatch):
    import genet.lb.simulator as sim
    w = GENET.workload_for(4).head(120)
    compiled = simulate(make_policy("sed"), [w], GENET, seeds=[3])[0]
    monkeypatch.setattr(sim, "_step_batch", sim._step_batch.py_func)
    plain = simulate(make_policy("sed"), [w], GENET, seeds=[3])[0]
    assert plain.reward == compiled.reward and np.array_equal(plain.finish_ms, compiled.finish_ms)


def test_the_training_horizon_ends_an_episode_and_counts_time_up_to_the_event_past_it():
    w = GENET.workload_for(5).head(500)
    res = simulate(make_policy("least_work"), [w], GENET, seeds=[1], reset_prob=1e-4)[0]
    assert res.truncated and not res.finished.all()
    dispatched = res.worker >= 0
    end = res.end_ms
    held = np.where(np.isfinite(res.finish_ms), np.minimum(res.finish_ms, end), end)
    assert res.reward == pytest.approx(-(held[dispatched] - w.arrival_times_ms[dispatched]).sum())


def test_settings_and_config_points():
    assert GENET.n_workers == 3 and GENET.layout == "lb.genet-3w" and GENET.workload.num_jobs == 2000
    assert PARK.n_workers == 10 and PARK.layout == "lb.park-10w" and PARK.workload.job_distribution == "pareto"
    s = setting_from_config({"service_rate_per_ms": 3, "job_size_max_work": 500, "job_interval_ms": 40,
                             "num_jobs": 99.6, "queue_shuffle_prob": 0.2})
    assert s.service_rates == pytest.approx((1.5, 3, 6)) and s.workload.num_jobs == 100
    default = setting_from_config(load_space("lb").default())
    assert default.service_rates == GENET.service_rates and default.workload == GENET.workload
    assert default.queue_shuffle_prob == GENET.queue_shuffle_prob  # the space's default point is Genet's setting
    park = setting_from_config({"service_rate_per_ms": 1.3}, base=PARK)
    assert park.service_rates == pytest.approx(tuple(2 * r for r in PARK.service_rates))
    assert s.workload.job_size_max_work == 500 and s.workload.job_interval_ms == 40 and s.queue_shuffle_prob == 0.2
    from genet.lb.simulator import LbSettingError
    with pytest.raises(LbSettingError, match="unknown LB config dimension"):
        setting_from_config({"bandwidth_mbps": 3})
    with pytest.raises(LbSettingError, match="queue_shuffle_prob"):
        LbSetting(queue_shuffle_prob=1.5)
    with pytest.raises(LbSettingError, match="service_rates"):
        LbSetting(service_rates=(1.0, 0.0))


def test_batch_refuses_bad_actions_and_oversized_workloads():
    from genet.lb.simulator import LbSettingError
    batch = LbBatch(1, 2, 3)
    with pytest.raises(LbSettingError, match="more than this batch holds"):
        batch.load(0, GENET.workload_for(0).head(4), (1, 2), 0.0, np.random.default_rng(0))
    batch.load(0, FIVE.head(3), (1, 2), 0.0, np.random.default_rng(0))
    with pytest.raises(LbSettingError, match="not a worker index"):
        batch.step(np.array([2]))


def _genet_lb_dir():
    mirror = Path(os.environ.get("GENET_MIRROR", "/work/.mirror/GenetProject+Genet/repo"))
    return mirror if mirror.exists() else None


@pytest.mark.skipif(_genet_lb_dir() is None, reason="Genet's repository is not fetched (benchmarks/lb_speed.py)")
def test_genets_own_environment_gives_the_same_returns_on_the_same_jobs():
    """With the shuffle off (Genet's shuffle draws from the unseeded ``random``), Genet's LoadBalanceEnvironment
    and ours give the same return for least-work-left on the jobs Genet draws after np.random.seed(seed)."""
    import sys
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import lb_speed
    finally:
        sys.path.pop(0)
    genet = lb_speed.load_genet_lb(_genet_lb_dir(), queue_shuffle_prob=0.0, num_stream_jobs=300)
    from traces.workload import generate_workload
    setting = replace(GENET, queue_shuffle_prob=0.0, workload=WorkloadConfig(num_jobs=300))
    for seed in (100000000, 100000001):
        theirs = lb_speed.genet_episode(genet, seed)
        ours = simulate(make_policy("least_work"), [generate_workload(setting.workload, seed, legacy_seed=True)],
                        setting, seeds=[seed])[0]
        assert ours.reward == theirs[0] and ours.decisions == theirs[1]


def _park_dir():
    mirror = Path(os.environ.get("PARK_MIRROR", "/work/.mirror/park-project+park/repo"))
    return mirror if mirror.exists() else None


@pytest.mark.skipif(_park_dir() is None, reason="Park's repository is not fetched (benchmarks/lb_speed.py)")
def test_parks_own_environment_gives_the_same_returns_on_the_same_jobs():
    """Park's LoadBalanceEnv (seeded RandomState, lazily drawn jobs, its event order and observation) and our PARK
    setting give the same return for the least-loaded server read off Park's observation."""
    import sys
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import lb_speed
    finally:
        sys.path.pop(0)
    park_env = lb_speed.load_park_lb(_park_dir())
    from traces.workload import generate_workload

    class LeastLoad(PolicyBase):
        name = "least_load"
        spec = policy_spec("lb.park-10w")

        def act(self, observations, active=None):
            return np.argmin(observations[:, :-1], axis=1)
    for seed in (5, 6):
        ours = simulate(LeastLoad(), [generate_workload(PARK.workload, seed, legacy_seed=True)], PARK, seeds=[seed])[0]
        assert (ours.reward, ours.decisions) == lb_speed.park_episode(park_env, seed)


# ----------------------------------------------------------------------------- Gymnasium

def test_check_env_spaces_and_seeding():
    from gymnasium.utils.env_checker import check_env

    from genet.lb.env import ENV_ID, LoadBalanceEnv, register_envs
    small = replace(GENET, workload=WorkloadConfig(num_jobs=60))
    env = LoadBalanceEnv(small)
    check_env(env, skip_render_check=True)
    assert env.action_space.n == 3 and env.observation_space.shape == (4,)
    check_env(LoadBalanceEnv(small, config_range="rl1", reset_prob=1e-3, reward_scale=1e-4), skip_render_check=True)
    check_env(LoadBalanceEnv(replace(PARK, workload=replace(PARK.workload, num_jobs=40))), skip_render_check=True)

    def episode(seed):
        obs, _ = env.reset(seed=seed)
        out, total, steps = [obs], 0.0, 0
        while True:
            obs, r, term, trunc, info = env.step(int(np.argmin(obs[:3])))
            out.append(obs)
            total += r
            steps += 1
            if term or trunc:
                return np.array(out), total, steps, term, info
    a, b, c = episode(3), episode(3), episode(4)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[1] != c[1]
    assert a[2] == 60 and a[3] and a[4]["jobs_finished"] == 60
    import gymnasium as gym
    assert ENV_ID not in gym.registry or True  # registering is explicit:
    register_envs()
    register_envs()
    e = gym.make(ENV_ID, setting=small)
    assert e.reset(seed=3)[0].tolist() == a[0][0].tolist()


def test_env_observation_is_genets_and_steps_past_the_end_are_refused():
    from foundation.errors import BadInputError
    from genet.lb.env import LoadBalanceEnv
    env = LoadBalanceEnv(TWO, workloads=[FIVE], layout="lb.genet-2w")
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == pytest.approx([0, 0, 0.004])
    for a in (0, 1, 0):
        obs, r, term, trunc, _ = env.step(a)
    # J3 arrives: w0 has 2 units waiting (2 / 1000 / 5), J3's size 6 / 1000
    assert obs.tolist() == pytest.approx([0.0004, 0, 0.006])
    env.step(1)
    obs, r, term, trunc, info = env.step(0)
    assert term and not trunc and r == -3
    with pytest.raises(BadInputError, match="episode is over"):
        env.step(0)
    with pytest.raises(BadInputError, match="for 3 workers"):
        LoadBalanceEnv(TWO, layout="lb.genet-3w")


def test_observe_layouts_from_one_state():
    s = LbState.single([60000, 500], [4, 1], [30, 0], [0.5, 2.0], 25000)
    assert observe(s, "lb.genet-2w")[0].tolist() == pytest.approx([12, 0.1, 10])  # size capped at 10
    assert observe(s, "lb.park-2w").tolist() == [[60030, 500, 25000]]
    assert observe(s, "lb.state-2w").tolist() == [[60000, 500, 4, 1, 30, 0, 0.5, 2.0, 25000]]
    big = LbState.single([1e9], [1], [0], [1.0], 1)
    assert observe(big, "lb.genet-1w")[0, 0] == 20
