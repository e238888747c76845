"""Runtime seams of the ABR use case (issue 11): one QoE, observations from plain measurements, the
policy registry, RobustMPC planning with the bound ladder, the shipped EnvivioDash3 table."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED
from genet.abr import qoe, registry
from genet.abr.core import BatchedAbrSim, chunk_reward
from genet.abr.evaluate import evaluate
from genet.abr.mpc import RobustMPC
from genet.abr.observations import (GENET_6X6, PENSIEVE_6X8, RAW, ChunkMeasurement, Observer, StateBuilder,
                                    raw_observation)
from genet.abr.params import GENET_COMPAT, PENSIEVE
from genet.abr.video import (ENVIVIO_TABLE, SessionVideos, Video, VideoFormatError, default_video, load_video,
                             resolve_video, write_video_table)
from traces.trace import Trace


def _traces(n=6, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        t = np.arange(0.0, 400.0, 1.0)
        out.append(Trace(t, rng.uniform(0.3, 4.0, t.size), name=f"t{k}"))
    return out


def test_numba_kernel_and_qoe_module_agree_bit_for_bit():
    rng = np.random.default_rng(0)
    ladder = np.array([300, 750, 1200, 1850, 2850, 4300], dtype=np.float64)
    for _ in range(500):
        b, bl = rng.choice(ladder), rng.choice(ladder)
        rb = float(rng.exponential(1.0)) * (rng.random() < 0.5)
        for mu in (qoe.REBUFFER_PENALTY_PENSIEVE, qoe.REBUFFER_PENALTY_GENET):
            assert chunk_reward(b, bl, rb, mu, qoe.SMOOTH_PENALTY) == qoe.chunk_qoe(b, bl, rb, mu, qoe.SMOOTH_PENALTY)
    assert PENSIEVE.rebuffer_penalty == qoe.REBUFFER_PENALTY_PENSIEVE
    assert GENET_COMPAT.rebuffer_penalty == qoe.REBUFFER_PENALTY_GENET


def test_accumulator_equals_simulator_rewards_and_hand_values():
    video = default_video()
    results, logs = evaluate("bba", _traces(), video, PENSIEVE, record_chunks=True)
    for i, r in enumerate(results):
        rewards = sum(float(step["reward"][i]) for step in logs if step["active"][i])
        assert r.qoe == pytest.approx(rewards, abs=1e-9)
        assert r.chunks == PENSIEVE.params.n_chunks
    # hand-computed: first chunk at quality 1 after first quality 1, then a 2 s stall on a switch up
    v = qoe.video_qoe([750, 1850], [0.0, 2.0], first_bitrate_kbps=750, rebuffer_penalty=4.3)
    assert v.qoe == pytest.approx(0.75 + (1.85 - 4.3 * 2.0 - 1.1))
    assert (v.bitrate_mbps, v.rebuffer_s, v.bitrate_change_mbps, v.chunks) == pytest.approx((1.3, 2.0, 0.55, 2))


def test_observer_from_measurements_equals_simulator_states():
    video = default_video()
    traces = _traces(2)
    sim = BatchedAbrSim(traces, video, PENSIEVE)
    sim.reset()
    builders = {lay.name: StateBuilder(lay, 2, float(np.max(sim.bitrates_kbps))) for lay in (PENSIEVE_6X8, GENET_6X6)}
    observers = [{lay.name: Observer(lay, video.bitrates_kbps) for lay in (PENSIEVE_6X8, GENET_6X6, RAW)}
                 for _ in range(2)]
    rng = np.random.default_rng(1)
    for _ in range(20):
        r = sim.step(rng.integers(0, 6, 2))
        raw = raw_observation(r)
        sim_states = {name: b.update(r, sim.bitrates_kbps) for name, b in builders.items()}
        for i in range(2):
            m = ChunkMeasurement(int(r.quality[i]), float(r.buffer_s[i]), float(r.chunk_size_bytes[i]),
                                 float(r.delay_ms[i]), tuple(r.next_sizes_bytes[i]), int(r.chunk_index[i]) + 1,
                                 int(r.chunks_remaining[i]), float(r.rebuffer_s[i]), bool(r.end_of_video[i]))
            for name, obs in observers[i].items():
                got = obs.observe(m)[0]
                want = raw[i] if name == RAW.name else sim_states[name][i]
                assert np.array_equal(got, want), name


def test_registry_names_paths_and_errors(tmp_path):
    assert set(registry.POLICIES.names()) >= {"bba", "mpc", "optimal"}
    assert registry.make_policy("bba").name == "bba"
    mpc = registry.make_policy("mpc", rebuffer_penalty=10.0)
    assert isinstance(mpc, RobustMPC) and mpc.mu == 10.0
    with pytest.raises(registry.UnknownPolicyError, match="bba, mpc"):
        registry.make_policy("bola")
    with pytest.raises(registry.UnknownPolicyError, match="cannot drive"):
        registry.make_policy("optimal")
    with pytest.raises(FileNotFoundError):
        registry.make_policy(str(tmp_path / "missing.onnx"))
    shipped = REPO / "models" / "abr" / "genet.onnx"
    if shipped.is_file():
        pol = registry.make_policy(str(shipped))
        assert pol.spec.use_case == "abr" and registry.policy_label(str(shipped)) == "genet"
    cc = REPO / "models" / "cc" / "genet.onnx"
    if cc.is_file():
        from genet.policy import PolicyMismatchError
        with pytest.raises(PolicyMismatchError, match="not an ABR policy"):
            registry.make_policy(str(cc))


def _brute_first(buf, last_q, fb, sizes, chunk_s, ladder, mu, horizon):
    import itertools
    best, first = -1e18, 0
    for combo in itertools.product(range(len(ladder)), repeat=horizon):
        b, lq, total = buf, last_q, 0.0
        for pos, q in enumerate(combo):
            dt = sizes[q, pos] / 1e6 / fb
            rb = max(dt - b, 0.0)
            b = max(b - dt, 0.0) + chunk_s
            total += qoe.chunk_qoe(ladder[q], ladder[lq], rb, mu, 1.0)
            lq = q
        if total >= best:
            best, first = total, combo[0]
    return first


def test_mpc_plans_with_the_bound_ladder():
    """Same chunk sizes, a 10x ladder: bitrate is worth 10x more against the same stall penalty, so the
    QoE says take more risk. MPC's choices follow the brute-force QoE optimum for each ladder (which a
    planner with the Envivio ladder hard-coded would miss)."""
    base = default_video()
    tenfold = Video(tuple(10 * b for b in base.bitrates_kbps), base.chunk_sizes_bytes, base.chunk_length_s, "x10")
    rng = np.random.default_rng(5)
    n = 30
    buffer_s = rng.uniform(0.0, 12.0, n)
    sample = rng.uniform(0.05, 0.6, n)  # MB/s
    choices = {}
    for video in (base, tenfold):
        pol = RobustMPC(rebuffer_penalty=4.3)
        pol.bind(SessionVideos.from_video(video, n_sessions=n))
        pol.reset()
        obs = np.zeros((n, RAW.shape[0]))
        obs[:, 0], obs[:, 1], obs[:, 2], obs[:, 5] = 2, buffer_s, sample, 3
        choices[video.source] = pol.act(obs)
        ladder = np.asarray(video.bitrates_kbps, dtype=np.float64)
        for i in range(0, n, 6):
            want = _brute_first(buffer_s[i], 2, sample[i], video.chunk_sizes_bytes[:, 3:8], 4.0, ladder, 4.3, 5)
            assert choices[video.source][i] == want
    low, high = choices[base.source], choices["x10"]
    # (not monotone per state: switching also costs 10x more) but far more aggressive overall
    assert np.sum(high > low) >= n // 3 and np.mean(high) > np.mean(low) + 0.5
    # and over whole sessions the 10x-ladder MPC streams higher levels and stalls more
    traces = _traces(6)
    a = evaluate("mpc", traces, base, PENSIEVE)
    b = evaluate("mpc", traces, tenfold, PENSIEVE)
    assert np.mean([r.rebuffer_s for r in b]) > np.mean([r.rebuffer_s for r in a])
    assert "4300" not in (REPO / "genet" / "abr" / "mpc.py").read_text()


def test_shipped_envivio_table_equals_shared_copy():
    video = default_video()
    assert video.chunk_sizes_bytes.shape == (6, 49) and video.bitrates_kbps == (300, 750, 1200, 1850, 2850, 4300)
    assert resolve_video("envivio").source == str(ENVIVIO_TABLE) == resolve_video(None).source
    shared = SHARED / "video" / "envivio"
    if not shared.is_dir():
        pytest.skip(f"{shared} not present: nothing to compare with")
    assert np.array_equal(load_video(shared).chunk_sizes_bytes, video.chunk_sizes_bytes)


def test_video_table_round_trip_and_errors(tmp_path):
    video = default_video()
    path = write_video_table(video, tmp_path / "v" / "video.json", name="copy")
    again = load_video(tmp_path / "v")
    assert np.array_equal(again.chunk_sizes_bytes, video.chunk_sizes_bytes)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bitrates_kbps": [300, 200], "chunk_sizes_bytes": [[1], [2]]}))
    with pytest.raises(VideoFormatError, match="bad.json.*increase"):
        load_video(bad)
    bad.write_text(json.dumps({"bitrates_kbps": [300]}))
    with pytest.raises(VideoFormatError, match="chunk_sizes_bytes"):
        load_video(bad)
    assert path.is_file()


def test_eval_abr_runs_without_shared_video(tmp_path):
    """`genet eval abr` with the default video from a process that cannot see ../shared."""
    env = {"PATH": "/usr/bin:/bin", "GENET_SHARED": str(tmp_path / "nowhere"), "HOME": str(tmp_path)}
    out = tmp_path / "out"
    code = ("import sys; from app.cli import main; "
            f"sys.exit(main(['eval', 'abr', '--config', 'rl1', '-n', '2', '--policy', 'bba,mpc', "
            f"'--out', {str(out)!r}, '--no-progress']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["video"] == "envivio" and len(json.loads((out / "results.json").read_text())["results"]) == 4


def test_player_policies_decide_the_same_without_numba():
    """A runtime install has no numba: RobustMPC then plans in numpy and predicts in Python, with the same
    decisions."""
    code = r"""
import sys, json
BLOCK = sys.argv[1] == "block"
if BLOCK:
    sys.modules["numba"] = None
import numpy as np
from genet.abr.video import default_video
from player.abr import AbrDecider
d = AbrDecider("mpc", default_video())
rng = np.random.default_rng(2)
out = []
q = 1
for k in range(12):
    m = d.measurement(q, float(rng.uniform(0, 20)), float(rng.uniform(1e5, 2e6)), float(rng.uniform(100, 4000)), k, 0.0)
    q = d.decide(m)
    out.append(q)
assert ("numba" in sys.modules and sys.modules["numba"] is not None) == (not BLOCK)
print(json.dumps(out))
"""
    runs = [subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120)
            for mode in ("block", "numba")]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)


def test_state_update_numpy_and_compiled_loop_agree():
    from genet.abr.observations import _update_state_loop, _update_state_numpy
    rng = np.random.default_rng(4)
    for shape in ((7, 6, 8), (5, 6, 6)):
        a = rng.uniform(0, 1, shape)
        b = a.copy()
        for _ in range(5):
            n = shape[0]
            args = (rng.random(n) < 0.7, rng.integers(0, 6, n), np.array([300., 750, 1200, 1850, 2850, 4300]),
                    rng.uniform(0, 60, n), rng.uniform(1e5, 3e6, n), rng.uniform(50, 9000, n),
                    rng.uniform(1e5, 3e6, (n, 6)), rng.integers(0, 60, n), 4300.0, 48.0)
            _update_state_loop(a, *args)
            _update_state_numpy(b, *args)
        assert np.array_equal(a, b)
