"""ABR simulator core: kernel vs a plain re-statement of genet-simulators.md §1.3, modes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genet.abr.core import BatchedAbrSim
from genet.abr.params import GENET_COMPAT, PENSIEVE, EnvParams
from genet.abr.video import VideoFormatError, constant_bitrate_video, load_video
from traces.config_space import ConfigSpaceError
from traces.errors import TraceFormatError
from traces.trace import Trace


def reference_session(t, bw, sizes, qualities, rtt_ms=80.0, chunk_ms=4000.0, thresh_ms=60000.0, mu=4.3,
                      bitrates=(300, 750, 1200, 1850, 2850, 4300), first_quality=1):
    """§1.3 written out plainly (one session, ptr starts at 1, no noise, wrap to ptr 1 / time 0)."""
    ptr, last_t, buf = 1, t[0], 0.0
    out = []
    last_q = first_quality
    for c, q in enumerate(qualities):
        size = sizes[q][c]
        sent, delay = 0.0, 0.0
        while True:
            tput = bw[ptr] * 1e6 / 8
            dur = t[ptr] - last_t
            pay = tput * dur * 0.95
            if sent + pay > size:
                frac = (size - sent) / tput / 0.95
                delay += frac
                last_t += frac
                break
            sent += pay
            delay += dur
            last_t = t[ptr]
            ptr += 1
            if ptr >= len(t):
                ptr, last_t = 1, 0.0
        delay = delay * 1000 + rtt_ms
        rebuf = max(delay - buf, 0.0)
        buf = max(buf - delay, 0.0) + chunk_ms
        if buf > thresh_ms:
            sleep = math.ceil((buf - thresh_ms) / 500) * 500
            buf -= sleep
            while True:
                dur = t[ptr] - last_t
                if dur > sleep / 1000:
                    last_t += sleep / 1000
                    break
                sleep -= dur * 1000
                last_t = t[ptr]
                ptr += 1
                if ptr >= len(t):
                    ptr, last_t = 1, 0.0
        reward = bitrates[q] / 1000 - mu * rebuf / 1000 - abs(bitrates[q] - bitrates[last_q]) / 1000
        last_q = q
        out.append((delay, buf / 1000, rebuf / 1000, reward))
    return out


def random_trace(rng, n=60, name="r"):
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(0.2, 3.0, n - 1))])
    bw = rng.uniform(0.05, 6.0, n)
    return Trace(t, bw, name=name)


def test_kernel_matches_plain_statement_of_the_semantics():
    rng = np.random.default_rng(3)
    video = constant_bitrate_video(n_chunks=49)
    video = type(video)(video.bitrates_kbps, video.chunk_sizes_bytes * rng.uniform(0.5, 1.5, (6, 49)))
    traces = [random_trace(rng, n=rng.integers(20, 80), name=f"r{i}") for i in range(12)]
    params = EnvParams(max_buffer_s=12.0)  # small buffer: exercises the drain/sleep path
    sim = BatchedAbrSim(traces, video, PENSIEVE, params=params)
    sim.reset()
    qs = rng.integers(0, 6, size=(48, len(traces)))
    qs[0] = 1
    got = []
    for c in range(48):
        r = sim.step(qs[c])
        got.append(np.stack([r.delay_ms, r.buffer_s, r.rebuffer_s, r.reward], axis=1))
    got = np.stack(got, axis=1)
    assert sim.done.all()
    slept = False
    for i, tr in enumerate(traces):
        ref = np.array(reference_session(tr.timestamps_s, tr.bandwidth_mbps, video.chunk_sizes_bytes, qs[:, i],
                                         thresh_ms=12000.0))
        np.testing.assert_allclose(got[i], ref, rtol=1e-12, atol=1e-9)
        slept |= bool(np.any(ref[:, 1] > 8.0))
    assert slept


def test_modes_differ_as_documented(shared_video):
    tr = Trace(np.arange(0, 400.0), np.full(400, 3.0), name="flat3")
    for conv, chunks, first_q in ((PENSIEVE, 48, 1), (GENET_COMPAT, 49, 0)):
        sim = BatchedAbrSim([tr], shared_video, conv)
        sim.reset()
        r = sim.step(np.array([conv.first_quality]))
        assert r.quality[0] == first_q and r.chunks_remaining[0] == chunks - 1
        n = 1
        while not sim.done.all():
            r = sim.step(np.array([0]))
            n += 1
        assert n == chunks and r.end_of_video[0] and r.chunks_remaining[0] == 0


def test_rebuffer_penalty_is_mu(shared_video):
    # a slow link: every chunk stalls; reward differs by (10 - 4.3) x rebuffer between modes
    tr = Trace(np.arange(0, 2000.0), np.full(2000, 0.2), name="slow")
    out = {}
    for conv in (PENSIEVE, GENET_COMPAT.replace(first_quality=1, params=PENSIEVE.params, wrap_time_zero=False)):
        sim = BatchedAbrSim([tr], shared_video, conv)
        sim.reset()
        out[conv.rebuffer_penalty] = sim.step(np.array([1]))
    r43, r10 = out[4.3], out[10.0]
    assert r43.rebuffer_s[0] > 1.0
    np.testing.assert_allclose(r43.reward - r10.reward, 5.7 * r43.rebuffer_s, rtol=1e-12)


def test_delay_noise_and_random_start_use_the_seed(shared_video):
    rng = np.random.default_rng(0)
    traces = [random_trace(rng, 200, f"n{i}") for i in range(4)]
    conv = PENSIEVE.replace(delay_noise=True, random_start=True)

    def run(seed):
        sim = BatchedAbrSim(traces, shared_video, conv, seed=seed)
        sim.reset()
        return np.array([sim.step(np.full(4, 2)).delay_ms for _ in range(5)])

    a, b, c = run(1), run(1), run(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_autoreset_starts_new_videos(shared_video):
    rng = np.random.default_rng(1)
    traces = [random_trace(rng, 300, f"a{i}") for i in range(3)]
    sim = BatchedAbrSim(traces, shared_video, PENSIEVE, n_envs=5, seed=0, autoreset=True)
    sim.reset()
    ends = 0
    for _ in range(100):
        r = sim.step(np.zeros(5, dtype=np.int64))
        ends += int(r.end_of_video.sum())
        assert r.active.all()
    assert ends == 10  # 5 envs x 2 full videos of 48 chunks in 100 steps
    assert np.all(sim.chunk_idx == 100 - 96)


def test_config_space_params_and_out_of_range():
    p = EnvParams.from_config({"max_buffer_s": 30, "chunk_length_s": 2, "min_rtt_ms": 100, "video_length_s": 100,
                               "max_bandwidth_mbps": 3})
    assert (p.max_buffer_s, p.chunk_length_s, p.min_rtt_ms, p.n_chunks) == (30, 2, 100, 50)
    with pytest.raises(ConfigSpaceError, match="max_buffer_s"):
        EnvParams.from_config({"max_buffer_s": 9000})


def test_chunk_length_scales_sizes(shared_video):
    sizes = shared_video.chunk_sizes_for(60, chunk_length_s=2.0)
    assert sizes.shape == (6, 60)
    np.testing.assert_allclose(sizes[:, 0], shared_video.chunk_sizes_bytes[:, 0] / 2)
    np.testing.assert_allclose(sizes[:, 49], shared_video.chunk_sizes_bytes[:, 0] / 2)  # looped


def test_trace_shorter_than_one_chunk_is_rejected(shared_video):
    tiny = Trace([0.0, 0.5, 1.0], [1.0, 1.0, 1.0], name="tiny", meta={"path": "/x/tiny.txt"})
    with pytest.raises(TraceFormatError, match=r"/x/tiny.txt: .*shorter than one chunk download"):
        BatchedAbrSim([tiny], shared_video, PENSIEVE)
    with pytest.raises(TraceFormatError, match="at least 2 samples"):
        BatchedAbrSim([Trace([0.0], [5.0], name="one")], shared_video, PENSIEVE)


def test_video_files_bad_input(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    for q in range(6):
        (d / f"video_size_{q}").write_text("\n".join(str(1000 + q) for _ in range(10)) + "\n")
    assert load_video(d).chunk_sizes_bytes.shape == (6, 10)
    (d / "video_size_3").write_text("100\n" * 9)
    with pytest.raises(VideoFormatError, match=r"different numbers of chunks.*video_size_3: 9"):
        load_video(d)
    (d / "video_size_3").write_text("100\n" * 4 + "12.5\n" + "100\n" * 5)
    with pytest.raises(VideoFormatError, match=r"video_size_3:5: chunk size must be an integer.*'12.5'"):
        load_video(d)
    (d / "video_size_3").write_text("100\n" * 10)
    (d / "video_size_5").unlink()
    with pytest.raises(VideoFormatError, match="missing video_size_5"):
        load_video(d)


@pytest.fixture(scope="module")
def shared_video():
    from conftest import envivio_video
    return envivio_video()
