"""ABR simulator under extreme but valid inputs (issue 10): every loop ends, in work proportional
to the trace time it crosses, and inputs it cannot play are rejected before running, naming why.

Timings are not asserted (benchmarks do that). Inputs that used to loop forever or exhaust memory
are checked for rejection at construction, so a lost guard fails the test instead of hanging it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import hypothesis_examples
from genet.abr.core import BatchedAbrSim
from genet.abr.params import GENET_COMPAT, PENSIEVE, EnvParams
from genet.abr.video import constant_bitrate_video
from foundation.errors import BadInputError
from traces.errors import TraceFormatError
from traces.trace import Trace

VIDEO = constant_bitrate_video(n_chunks=48)


def play(trace, conv=PENSIEVE, params=None, quality=0, max_steps=100_000):
    """Play one video to its end; returns (steps, the step results)."""
    sim = BatchedAbrSim([trace], VIDEO, conv, params=params)
    sim.reset()
    results = []
    while not sim.done.all():
        results.append(sim.step(np.array([quality])))
        assert len(results) <= max_steps
    return sim, results


def test_an_all_zero_trace_is_rejected_not_looped():
    dead = Trace(np.arange(0, 100.0), np.zeros(100), name="dead", meta={"path": "/data/dead.log"})
    with pytest.raises(TraceFormatError, match=r"/data/dead.log.*bandwidth_mbps.*zero bandwidth for its whole"):
        BatchedAbrSim([dead], VIDEO, PENSIEVE)
    # only sample 0 carries bandwidth: it is never used (bw[i] holds on (t[i-1], t[i]])
    first_only = Trace(np.arange(0, 100.0), np.r_[5.0, np.zeros(99)], name="first-only")
    with pytest.raises(TraceFormatError, match="zero bandwidth for its whole length"):
        BatchedAbrSim([first_only], VIDEO, PENSIEVE)


def test_near_zero_bandwidth_for_long_stretches_on_a_1ms_trace_plays_to_the_end():
    # 10 minutes at 1-ms resolution: 190 s of nothing, then 10 s of 5 Mbps, looped by the simulator
    t = np.arange(0, 600, 0.001)
    bw = np.where((t % 200) < 190, 0.0, 5.0)
    sim, results = play(Trace(t, bw, name="mostly-dead"))
    assert len(results) == 48
    stalls = np.array([r.rebuffer_s[0] for r in results])
    assert stalls.sum() > 190  # every dead stretch is a stall, the video still ends
    assert np.all(np.isfinite([r.reward[0] for r in results]))


def test_a_huge_buffer_never_sleeps_and_a_tiny_one_sleeps_through_a_short_trace():
    tr = Trace(np.arange(0, 100.0), np.full(100, 50.0), name="fast")
    _, huge = play(tr, params=EnvParams(max_buffer_s=1e12))
    assert all(r.sleep_ms[0] == 0 for r in huge)
    # the first chunk starts from an empty buffer; after it the buffer only grows: 4 s in, the download out
    assert huge[-1].buffer_s[0] == pytest.approx(4.0 + sum(4.0 - r.delay_ms[0] / 1000 for r in huge[1:]), rel=1e-9)
    # chunks far longer than the trace: every sleep wraps the 10-s, 1-ms trace hundreds of times
    t = np.arange(0, 10, 0.001)
    sim, long_chunks = play(Trace(t, np.full(t.size, 1e5), name="short-fast"), quality=5,
                            params=EnvParams(max_buffer_s=1.0, chunk_length_s=1e4, video_length_s=3e4))
    assert len(long_chunks) == 3 and sim.done.all()
    assert all(r.buffer_s[0] == pytest.approx(1.0, abs=0.5) for r in long_chunks)
    assert 0 <= sim.last_time_s[0] <= 10


def test_skipping_whole_passes_of_a_sleep_lands_where_walking_them_would():
    # the sleep skip is exact up to rounding: compare with the same sleep walked pass by pass
    from genet.abr.core import download_chunk

    t = np.arange(0, 2.0, 0.01)
    bw = np.full(t.size, 2e4)
    for sleep_chunk_ms in (3_000.0, 55_555.5, 1e6):
        out = download_chunk(t, bw, 0, t.size, 1, 0.0, 1e3, 0.0, 1.0, 0.0, sleep_chunk_ms, 0.0, 0.95, 500.0, 0.0)
        p, lt = int(out[0]), float(out[1])
        # walk it: the trace clock advances by the whole sleep modulo one pass (1.99 s), from t=0
        sleep_s = np.ceil(sleep_chunk_ms / 500.0) * 0.5
        download_s = out[3] / 1000.0
        expected = (download_s + sleep_s) % 1.99
        assert lt == pytest.approx(expected, abs=1e-6)
        assert t[p - 1] <= lt + 1e-9 and lt <= t[p] + 1e-9


def test_very_long_videos_play_and_impossible_ones_are_rejected_before_allocating():
    tr = Trace(np.arange(0, 1000.0), np.full(1000, 50.0), name="fast")
    sim = BatchedAbrSim([tr], VIDEO, PENSIEVE, params=EnvParams(video_length_s=4 * 20_000))
    sim.reset()
    for _ in range(500):
        r = sim.step(np.array([0]))
    assert r.chunks_remaining[0] == 20_000 - 500
    with pytest.raises(BadInputError, match=r"video_length_s=4e\+09 / chunk_length_s=4 .*1,000,000,000 chunks.*"
                                            r"GiB \(limit 1 GiB\)"):
        BatchedAbrSim([tr], VIDEO, PENSIEVE, params=EnvParams(video_length_s=4e9))


def test_wrapping_the_clock_to_zero_needs_non_negative_timestamps():
    # GENET_COMPAT wraps the trace clock to 0 s: a trace living at negative times would then carry
    # negative bytes per pass and the download would never end
    neg = Trace(np.arange(-100.0, -1.0), np.full(99, 5.0), name="negative")
    with pytest.raises(TraceFormatError, match=r"negative.*starts at -100 s.*wraps the trace clock to 0 s"):
        BatchedAbrSim([neg], VIDEO, GENET_COMPAT)
    play(neg, conv=PENSIEVE)  # Pensieve wraps to the trace's own start: fine


@settings(max_examples=hypothesis_examples(25), deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.0, 0.01, 0.3, 5.0, 80.0]), min_size=2, max_size=30),
       st.sampled_from([0.001, 0.1, 1.0, 7.0]), st.sampled_from([1.0, 4.0, 60.0, 1e6]),
       st.sampled_from([1.0, 4.0, 10.0]), st.booleans(), st.integers(0, 5))
def test_any_playable_trace_ends_the_video(bws, dt_s, max_buffer_s, chunk_length_s, compat, quality):
    t = np.arange(len(bws)) * dt_s
    tr = Trace(t, np.array(bws), name="h")
    conv = GENET_COMPAT if compat else PENSIEVE
    params = EnvParams(max_buffer_s=max_buffer_s, chunk_length_s=chunk_length_s, video_length_s=10 * chunk_length_s)
    try:
        sim = BatchedAbrSim([tr], VIDEO, conv, params=params)
    except TraceFormatError as e:
        assert "zero bandwidth" in str(e) or "shorter than one chunk download" in str(e)
        return
    sim.reset()
    steps = 0
    while not sim.done.all():
        r = sim.step(np.array([quality]))
        steps += 1
        assert np.isfinite(r.delay_ms[0]) and r.delay_ms[0] > 0 and r.buffer_s[0] >= 0
        assert 0 <= sim.last_time_s[0] <= t[-1] + 1e-9
    assert steps == params.n_chunks
