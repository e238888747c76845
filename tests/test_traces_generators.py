"""Config spaces and synthetic generators: ranges, change intervals, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traces.config_space import ConfigSpaceError, load_space
from traces.generators import cc_queue_packets, generate_set, generate_trace


def _change_points(trace):
    bw = trace.bandwidth_mbps[:-1]
    return trace.timestamps_s[:-1][np.concatenate([[True], np.diff(bw) != 0])]


@pytest.mark.parametrize("use_case", ["abr", "cc"])
def test_spaces_have_all_ranges_nested_and_defaults_inside(use_case):
    space = load_space(use_case)
    for d in space.dimensions:
        lo3, hi3 = d.ranges["rl3"]
        for rn in ("rl1", "rl2"):
            lo, hi = d.ranges[rn]
            assert lo3 <= lo <= hi <= hi3, (d.name, rn)
        assert d.bounds[0] <= d.default <= d.bounds[1], d.name


def test_paper_dimensions_are_present():
    assert {"max_buffer_s", "chunk_length_s", "min_rtt_ms", "video_length_s", "bandwidth_change_interval_s",
            "max_bandwidth_mbps", "min_bandwidth_mbps"} <= set(load_space("abr").names)
    assert {"max_bandwidth_mbps", "delay_ms", "bandwidth_change_interval_s", "loss_rate",
            "queue_bdp"} <= set(load_space("cc").names)
    assert load_space("abr")["max_bandwidth_mbps"].scale == "log"


@settings(max_examples=30, deadline=None)
@given(use_case=st.sampled_from(["abr", "cc"]), range_name=st.sampled_from(["rl1", "rl2", "rl3"]),
       seed=st.integers(0, 2**31 - 1))
def test_generated_traces_respect_ranges_and_change_interval(use_case, range_name, seed):
    space = load_space(use_case)
    trace = generate_set(use_case, range_name, 1, seed)[0]
    cfg = trace.meta["config"]
    for d in space.dimensions:
        lo, hi = d.ranges[range_name]
        assert lo - 1e-9 <= cfg[d.name] <= hi + 1e-9, d.name
    lo_bw = min(cfg["min_bandwidth_mbps"], cfg["max_bandwidth_mbps"])
    assert np.all(trace.bandwidth_mbps >= lo_bw - 1e-9)
    assert np.all(trace.bandwidth_mbps <= cfg["max_bandwidth_mbps"] + 1e-9)
    assert trace.duration_s == pytest.approx(space.fixed["trace_duration_s"])
    interval = cfg["bandwidth_change_interval_s"]
    changes = _change_points(trace)
    if interval == 0:
        assert np.unique(trace.bandwidth_mbps).size == 1
    else:
        # every value holds at least the configured interval (the last one may be cut by the trace end)
        assert np.all(np.diff(changes) >= interval - 1e-9)
    if use_case == "cc":
        assert trace.delay_ms == cfg["delay_ms"] and trace.loss_rate == cfg["loss_rate"]
        assert trace.queue_packets == cc_queue_packets(trace.bandwidth_mbps.max(), cfg["delay_ms"], cfg["queue_bdp"])


def test_change_interval_really_holds_bandwidth():
    trace = generate_trace("cc", {"bandwidth_change_interval_s": 2.0, "max_bandwidth_mbps": 50}, rng=3)
    t, bw = trace.timestamps_s, trace.bandwidth_mbps
    for start in np.arange(0, 28, 2.0):
        inside = (t >= start - 1e-9) & (t < start + 2.0 - 1e-9)
        assert np.unique(bw[inside]).size == 1
    assert np.unique(bw).size > 5  # and it does change


def test_generation_is_seeded_and_independent_of_n():
    a = generate_set("cc", "rl3", 5, seed=7)
    b = generate_set("cc", "rl3", 3, seed=7)
    c = generate_set("cc", "rl3", 3, seed=8)
    for x, y in zip(a, b):
        assert np.array_equal(x.bandwidth_mbps, y.bandwidth_mbps) and x.meta["config"] == y.meta["config"]
    assert not np.array_equal(a[0].bandwidth_mbps, c[0].bandwidth_mbps)


def test_queue_in_packets_overrides_bdp_multiple():
    trace = generate_trace("cc", {"queue_packets": 17}, rng=1)
    assert trace.queue_packets == 17


def test_config_out_of_range_is_a_clear_error():
    with pytest.raises(ConfigSpaceError, match="delay_ms.*outside"):
        generate_trace("cc", {"delay_ms": 5000}, rng=0)
    with pytest.raises(ConfigSpaceError, match="unknown cc config dimension"):
        generate_trace("cc", {"rtt": 5}, rng=0)
    with pytest.raises(ConfigSpaceError, match="unknown range"):
        generate_set("abr", "rl9", 2)


def test_inverted_range_in_space_file_is_rejected(tmp_path):
    raw = json.loads(load_space("cc").path and open(load_space("cc").path).read())
    raw["dimensions"][0]["ranges"]["rl2"] = [20, 0.5]
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(raw))
    with pytest.raises(ConfigSpaceError, match="inverted"):
        load_space(f)


def test_loss_log_scale_yields_zero_and_small_values():
    space = load_space("cc")
    rng = np.random.default_rng(0)
    values = np.array([space["loss_rate"].sample(rng, "rl3") for _ in range(2000)])
    assert (values == 0).mean() > 0.05 and (values > 0.01).mean() > 0.05 and values.max() <= 0.05
