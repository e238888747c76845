"""genet/Abr-v0: Gymnasium contract, seeding, and identity with the batched core; observations."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from genet.abr import ENV_ID
from genet.abr.core import BatchedAbrSim
from genet.abr.env import AbrEnv, register_envs
from genet.abr.observations import GENET_6X6, PENSIEVE_6X8, StateBuilder, to_quality
from genet.abr.params import PENSIEVE, EnvParams
from genet.abr.video import constant_bitrate_video
from traces.generators import generate_set

register_envs()  # gymnasium.make / make_vec below need the id (importing genet registers nothing)


def test_check_env_passes_for_both_layouts():
    from gymnasium.utils.env_checker import check_env
    for layout in (PENSIEVE_6X8.name, GENET_6X6.name):
        env = gym.make(ENV_ID, layout=layout)
        check_env(env.unwrapped, skip_render_check=True)
        assert env.action_space.n == (6 if layout == PENSIEVE_6X8.name else 3)


def test_same_seed_same_trajectory_and_episode_length():
    def rollout(seed):
        env = AbrEnv(delay_noise=True, random_start=True)
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        traj, done, steps = [obs], False, 0
        while not done:
            obs, rew, term, trunc, info = env.step(int(rng.integers(0, 6)))
            traj.append(np.append(obs.ravel(), rew))
            done = term or trunc
            steps += 1
        return traj, steps, info

    a, steps, info = rollout(5)
    b, _, _ = rollout(5)
    c, _, _ = rollout(6)
    assert steps == 47 and info["chunks_remaining"] == 0  # 48 chunks, the first one downloaded by reset
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_env_is_a_view_over_the_batched_core():
    traces = generate_set("abr", "rl2", n=3, seed=4)
    video = constant_bitrate_video()
    env = AbrEnv(traces=traces, video=video, params=EnvParams())
    rng = np.random.default_rng(2)
    actions = rng.integers(0, 6, 47)
    obs, info = env.reset(seed=0, options={"trace_index": 2})
    env_rewards = [env.step(int(a))[1] for a in actions]
    sim = BatchedAbrSim([traces[2]], video, PENSIEVE, params=EnvParams())
    sim.reset()
    sim.step(np.array([PENSIEVE.first_quality]))
    core_rewards = [float(sim.step(np.array([a])).reward[0]) for a in actions]
    assert env_rewards == core_rewards


def test_state_rows_follow_the_pensieve_layout():
    traces = generate_set("abr", "rl1", n=1, seed=1)
    video = constant_bitrate_video()
    sim = BatchedAbrSim(traces, video, PENSIEVE)
    sim.reset()
    b = StateBuilder(PENSIEVE_6X8, 1)
    r1 = sim.step(np.array([1]))
    s1 = b.update(r1, sim.bitrates_kbps)[0]
    r2 = sim.step(np.array([5]))
    s2 = b.update(r2, sim.bitrates_kbps)[0]
    assert s1.shape == (6, 8) and np.all(s1[:, :-1][[0, 1, 2, 3, 5]] == 0)
    assert s2[0, -1] == pytest.approx(1.0) and s2[0, -2] == pytest.approx(750 / 4300)
    assert s2[1, -1] == pytest.approx(r2.buffer_s[0] / 10)
    assert s2[2, -1] == pytest.approx(r2.chunk_size_bytes[0] / r2.delay_ms[0] / 1000)
    assert s2[3, -2] == pytest.approx(r1.delay_ms[0] / 1e4)
    np.testing.assert_allclose(s2[4, :6], r2.next_sizes_bytes[0] / 1e6, rtol=1e-6)
    assert s2[5, -1] == pytest.approx(46 / 48)


def test_jump_actions_clamp():
    q = to_quality(np.array([0, 1, 2, 0, 2]), np.array([0, 3, 3, 3, 5]), "abr.jump3")
    assert q.tolist() == [0, 3, 4, 2, 5]
    with pytest.raises(ValueError, match="outside"):
        to_quality(np.array([3]), np.array([0]), "abr.jump3")


def test_vector_env_matches_sync_vector_env():
    from genet.abr.env import AbrVectorEnv
    traces = generate_set("abr", "rl2", n=5, seed=3)
    kwargs = dict(traces=traces, params=EnvParams(video_length_s=40.0), delay_noise=True, random_start=True)
    n = 3
    vec = AbrVectorEnv(n, **kwargs)
    sync = gym.vector.SyncVectorEnv([lambda: AbrEnv(**kwargs) for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    o1, _ = vec.reset(seed=11)
    o2, _ = sync.reset(seed=11)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(30):  # 10-chunk videos: several autoresets
        a = rng.integers(0, 6, n)
        s1, s2 = vec.step(a), sync.step(a)
        for x, y in zip(s1[:4], s2[:4]):
            np.testing.assert_array_equal(x, y)
        ends += int(s1[2].sum())
        if s1[2].any():
            i = int(np.flatnonzero(s1[2])[0])
            np.testing.assert_array_equal(s1[4]["final_obs"][i], s2[4]["final_obs"][i])
    assert ends >= 2 * n
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP


def test_make_vec_uses_the_batched_core():
    from genet.abr.env import AbrVectorEnv
    env = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(env.unwrapped, AbrVectorEnv)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 6, 8)
    obs, rew, term, trunc, info = env.step(np.zeros(4, dtype=np.int64))
    assert rew.shape == (4,) and not trunc.any()


def test_player_side_helpers_match_the_simulator_path():
    from genet.abr.observations import raw_from_measurements, raw_observation
    traces = generate_set("abr", "rl1", n=2, seed=5)
    video = constant_bitrate_video()
    sim = BatchedAbrSim(traces, video, PENSIEVE, params=EnvParams())
    sim.reset()
    a, b = StateBuilder(GENET_6X6, 2), StateBuilder(GENET_6X6, 2)
    for q in (1, 2, 3, 3, 0):
        r = sim.step(np.array([q, 5]))
        sa = a.update(r, sim.bitrates_kbps)
        sb = b.push(r.quality, r.buffer_s, r.chunk_size_bytes, r.delay_ms, r.next_sizes_bytes, r.chunks_remaining,
                    sim.bitrates_kbps)
        np.testing.assert_array_equal(sa, sb)
        raw = raw_from_measurements(r.quality, r.buffer_s, r.chunk_size_bytes, r.delay_ms, r.chunk_index + 1,
                                    r.chunks_remaining, r.rebuffer_s, r.end_of_video)
        np.testing.assert_array_equal(raw, raw_observation(r))
