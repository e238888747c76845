"""genet/Abr-v0's one-session fast path (genet/abr/env.py ``_single_step``) gives the trajectories of the
batched core: every observation, reward, end flag and info entry, over several videos, for both layouts,
with delay noise and random start pointers on and off."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from genet.abr.env import AbrEnv, _info
from genet.abr.observations import GENET_6X6, PENSIEVE_6X8, to_quality
from traces.generators import generate_set


def batched_step(env: AbrEnv, action: int):
    """What AbrEnv.step did before the fast path: one BatchedAbrSim.step and a StateBuilder update."""
    q = int(to_quality(np.array([action]), np.array([env._quality]), env.layout.action_semantics,
                       env.sim.n_levels)[0])
    r = env.sim.step(np.array([q]))
    env._quality = q
    env.builder.update(r, env.sim.bitrates_kbps)
    return env.builder.state[0].astype(np.float32), float(r.reward[0]), bool(r.end_of_video[0]), False, _info(r)


@pytest.mark.parametrize("layout", [PENSIEVE_6X8.name, GENET_6X6.name])
@pytest.mark.parametrize("noise", [True, False])
def test_fast_path_equals_the_batched_core(layout, noise):
    traces = generate_set("abr", "rl3", n=6, seed=2)
    env = AbrEnv(traces=traces, layout=layout, delay_noise=noise, random_start=noise)
    rng = np.random.default_rng(1)
    env.reset(seed=3)
    ref = copy.deepcopy(env)
    videos, steps = 0, 0
    while videos < 4:
        a = int(rng.integers(env.action_space.n))
        got, want = env.step(a), batched_step(ref, a)
        assert np.array_equal(got[0], want[0]) and got[0].dtype == want[0].dtype
        assert got[1:4] == want[1:4] and got[4] == want[4], (steps, got[1:], want[1:])
        for k in ("ptr", "last_time_s", "buffer_ms", "chunk_idx", "last_quality", "done"):
            assert np.array_equal(getattr(env.sim, k), getattr(ref.sim, k)), k
        steps += 1
        if got[2]:
            videos += 1
            o1, i1 = env.reset()
            o2, i2 = ref.reset()
            assert np.array_equal(o1, o2) and i1 == i2
    assert steps > 50


def test_fast_path_keeps_the_errors():
    env = AbrEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(6)
    while not env.step(0)[2]:
        pass
    with pytest.raises(RuntimeError, match="after the video ended"):
        env.step(0)
