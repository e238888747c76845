"""Trace formats: readers, writers, Mahimahi semantics, round trips and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED, shared_path
from traces import Trace, TraceFormatError, convert, load_traces, read_trace, write_trace
from traces.io import detect_format, list_trace_files
from traces.mahimahi import opportunity_times_ms, read_mahimahi, schedule_to_trace, trace_to_schedule

ABR_SETS = ("fcc-train", "norway-train", "fcc-val", "norway-val")


def _abr_files() -> list[Path]:
    root = SHARED / "traces" / "abr"
    return sorted(p for s in ABR_SETS if (root / s).is_dir() for p in (root / s).iterdir()) if root.is_dir() else []


# ---------------------------------------------------------------- Mahimahi semantics (testbeds.md §1.1)
def test_pensieve_uplink_file_is_15_mbps(tmp_path):
    f = tmp_path / "12mbps"
    f.write_text("0\n1\n2\n3\n4\n")
    trace = read_mahimahi(f)
    assert trace.mean_bandwidth_mbps == pytest.approx(15.0)


def test_one_line_file_is_12_mbps_even_without_newline(tmp_path):
    f = tmp_path / "one"
    f.write_text("1")
    assert read_trace(f).mean_bandwidth_mbps == pytest.approx(12.0)
    (tmp_path / "ten").write_text("10\n")
    assert read_trace(tmp_path / "ten").mean_bandwidth_mbps == pytest.approx(1.2)


def test_looping_adds_the_last_value_not_last_plus_one():
    times = opportunity_times_ms(np.array([0, 1, 2, 3, 4]), until_ms=12)
    # t = 0..4, then 4..8 (base += 4), then 8..12, then 12 again (start of the 4th loop)
    assert times.tolist() == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11, 12, 12]
    assert opportunity_times_ms(np.array([1]), 3).tolist() == [1, 2, 3]


def test_mahimahi_rate_bins_follow_the_schedule():
    # 2 opportunities per ms for the first second, then 1 per ms: 24 Mbps then 12 Mbps
    sched = np.concatenate([np.repeat(np.arange(1, 1001), 2), np.arange(1001, 2001)])
    trace = schedule_to_trace(sched, bin_ms=1000)
    assert trace.bandwidth_mbps[:2] == pytest.approx([24.0, 12.0])
    assert trace.duration_s == pytest.approx(2.0)


def test_writer_carries_fractional_packets_between_intervals(tmp_path):
    # 0.3 packets per ms in each 10-ms interval: per-interval rounding (Pensieve's converter) would
    # emit 3 per interval; carrying over must give exactly 30 per 100 ms overall.
    rate_mbps = 0.3 * 12.0
    t = np.arange(0, 0.101, 0.01)
    trace = Trace(t, np.full(t.size, rate_mbps))
    sched = trace_to_schedule(trace)
    assert sched[-1] == 100 and len(sched) == 30
    assert np.all(np.diff(sched) >= 0) and sched[0] >= 1
    write_trace(trace, tmp_path / "x.mahi", "mahimahi")
    back = read_trace(tmp_path / "x.mahi")
    assert back.mean_bandwidth_mbps == pytest.approx(rate_mbps, rel=1e-9)


def test_writer_follows_rate_changes():
    trace = Trace([0, 1, 2, 3], [12, 0, 6, 6])
    sched = trace_to_schedule(trace)
    per_second = np.histogram(sched, bins=[0.5, 1000.5, 2000.5, 3000.5])[0]
    assert per_second.tolist() == [1000, 0, 500]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(0.05, 5.0), st.floats(0.0, 50.0)), min_size=1, max_size=40))
def test_mahimahi_round_trip_preserves_mean_of_random_traces(samples):
    durations, rates = zip(*samples)
    t = np.concatenate([[0.0], np.cumsum(durations)])
    bw = np.append(rates, rates[-1])
    trace = Trace(t, bw)
    packets = trace.total_megabits * 1e6 / 12000
    if packets < 200:  # too few packets to talk about 1%: at least one must exist
        if packets < 0.5:
            with pytest.raises(TraceFormatError):
                trace_to_schedule(trace)
        return
    back = schedule_to_trace(trace_to_schedule(trace))
    assert back.mean_bandwidth_mbps == pytest.approx(trace.mean_bandwidth_mbps, rel=0.01)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_pensieve_mahimahi_pensieve_preserves_mean_on_shared_traces(tmp_path_factory, data):
    files = _abr_files()
    if not files:
        pytest.skip("../shared/traces/abr not present")
    path = data.draw(st.sampled_from(files))
    d = tmp_path_factory.mktemp("rt")
    original = read_trace(path, "pensieve")
    convert(path, d / "t.mahi", "mahimahi")
    convert(d / "t.mahi", d / "t.txt", "pensieve")
    back = read_trace(d / "t.txt", "pensieve")
    assert back.mean_bandwidth_mbps == pytest.approx(original.mean_bandwidth_mbps, rel=0.01)


def test_every_shared_abr_trace_round_trips_within_1_percent():
    files = _abr_files()
    if not files:
        pytest.skip("../shared/traces/abr not present")
    assert len(files) == 424
    worst = 0.0
    for path in files:
        tr = read_trace(path, "pensieve")
        back = schedule_to_trace(trace_to_schedule(tr))
        worst = max(worst, abs(back.mean_bandwidth_mbps / tr.mean_bandwidth_mbps - 1))
    assert worst < 0.01


# ---------------------------------------------------------------- readers on shared data
def test_pensieve_reader_keeps_arrays_exactly():
    path = shared_path("traces", "abr", "norway-val", "norway_bus_11_0")
    trace = read_trace(path)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    assert np.array_equal(trace.timestamps_s, [float(r[0]) for r in rows])
    assert np.array_equal(trace.bandwidth_mbps, [float(r[1]) for r in rows])
    assert trace.name == "norway_bus_11_0" and detect_format(path) == "pensieve"


def test_pantheon_json_keeps_delay_and_drops_placeholders():
    root = shared_path("traces", "cc", "pantheon-cellular")
    path = sorted(root.rglob("*_datalink_run1.json"))[0]
    raw = json.loads(path.read_text())
    trace = read_trace(path)
    assert trace.delay_ms == pytest.approx(min(raw["delays"]))
    assert trace.loss_rate is None and trace.queue_packets is None
    assert trace.meta["placeholder_queue"] == raw["queue"]
    assert np.array_equal(trace.bandwidth_mbps, raw["bandwidths"])


def test_directory_is_a_named_set_with_relative_names():
    root = shared_path("traces", "cc", "pantheon-ethernet")
    traces = load_traces(root)
    assert len(traces) == len(list(root.rglob("*.json")))
    assert all("/" in t.name and not t.name.endswith(".json") for t in traces)


# ---------------------------------------------------------------- writers and round trips
@pytest.mark.parametrize("fmt", ["pensieve", "json", "csv"])
def test_rate_formats_round_trip_exactly(tmp_path, fmt):
    trace = Trace([0, 0.5, 1.25, 3], [1.5, 0, 22.25, 22.25], name="x", delay_ms=40.0, loss_rate=0.01,
                  queue_packets=25)
    out = write_trace(trace, tmp_path / f"t.{fmt}", fmt)
    back = read_trace(out, fmt)
    assert np.allclose(back.timestamps_s, trace.timestamps_s) and np.allclose(back.bandwidth_mbps, trace.bandwidth_mbps)
    if fmt != "pensieve":
        assert (back.delay_ms, back.loss_rate, back.queue_packets) == (40.0, 0.01, 25)


def test_convert_directory_mirrors_subfolders(tmp_path):
    src = tmp_path / "src"
    write_trace(Trace.constant(3.0, 10, name="a"), src / "links" / "a.json", "json")
    write_trace(Trace.constant(6.0, 10, name="b"), src / "b.csv", "csv")
    written = convert(src, tmp_path / "out", "mahimahi")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["b.mahi", "links/a.mahi"]
    assert read_trace(tmp_path / "out" / "links" / "a.mahi").mean_bandwidth_mbps == pytest.approx(3.0, rel=1e-3)


def test_csv_units_are_converted(tmp_path):
    f = tmp_path / "u.csv"
    f.write_text("timestamp_ms,bandwidth_kbps,delay_ms\n0,1500,30\n1000,3000,\n2000,3000,\n")
    trace = read_trace(f)
    assert trace.timestamps_s.tolist() == [0, 1, 2] and trace.bandwidth_mbps.tolist() == [1.5, 3, 3]
    assert trace.delay_ms == 30


def test_writer_failure_leaves_no_file(tmp_path, monkeypatch):
    trace = Trace.constant(5.0, 10)
    target = tmp_path / "out.txt"
    target.write_text("previous content\n")

    def boom(*a, **k):
        raise RuntimeError("disk full")
    import traces.pensieve as pensieve_mod
    original = pensieve_mod.atomic_text_writer

    class Failing:
        def __init__(self, path):
            self.cm = original(path)

        def __enter__(self):
            fh = self.cm.__enter__()
            fh.write("half")
            return self

        def write(self, s):
            boom()

        def __exit__(self, *exc):
            return self.cm.__exit__(*exc)
    monkeypatch.setattr(pensieve_mod, "atomic_text_writer", Failing)
    with pytest.raises(RuntimeError):
        write_trace(trace, target, "pensieve")
    assert target.read_text() == "previous content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


# ---------------------------------------------------------------- bad input: one error type naming file and line
BAD_TEXT = [
    ("empty.txt", "", "pensieve", None, "empty"),
    ("nonnum.txt", "0 1.0\n1 abc\n", "pensieve", 2, "non-numeric"),
    ("decreasing.txt", "0 1\n2 1\n1 1\n", "pensieve", 3, "before the previous"),
    ("negative.txt", "0 1\n1 -2\n", "pensieve", 2, "negative bandwidth"),
    ("onecol.txt", "0 1\n5\n", "pensieve", 2, "two columns"),
    ("zero.mahi", "0\n0\n", "mahimahi", 2, "nonzero amount of time"),
    ("emptyline.mahi", "1\n\n2\n", "mahimahi", 2, "empty line"),
    ("float.mahi", "1\n2.5\n", "mahimahi", 2, "integer"),
    ("dec.mahi", "5\n3\n", "mahimahi", 2, "before the previous"),
    ("empty.mahi", "", "mahimahi", None, "empty"),
    ("bad.csv", "timestamp_s,bandwidth_mbps\n0,1\n1,x\n", "csv", 3, "non-numeric"),
    ("nohdr.csv", "0,1\n1,2\n", "csv", 1, "header"),
]


@pytest.mark.parametrize("name,content,fmt,line,words", BAD_TEXT)
def test_bad_text_input_names_file_and_line(tmp_path, name, content, fmt, line, words):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(TraceFormatError) as info:
        read_trace(f, fmt)
    err = info.value
    assert err.path == str(f) and err.line == line
    assert str(f) in str(err) and words in str(err)
    if line is not None:
        assert f"{f}:{line}:" in str(err)


@pytest.mark.parametrize("payload,field", [
    ({"bandwidths": [1, 2]}, "timestamps"),
    ({"timestamps": [0, 1]}, "bandwidths"),
    ({"timestamps": [0, 1], "bandwidths": [1, "x"]}, "bandwidths"),
    ({"timestamps": [0, 1], "bandwidths": [1, 2, 3]}, "bandwidths"),
    ({"timestamps": [1, 0], "bandwidths": [1, 2]}, "timestamps"),
    ({"timestamps": [0, 1], "bandwidths": [1, -2]}, "bandwidths"),
    ({"timestamps": [0, 1], "bandwidths": [1, 2], "loss": 1.5}, "loss"),
])
def test_bad_json_names_the_field(tmp_path, payload, field):
    f = tmp_path / "t.json"
    f.write_text(json.dumps(payload))
    with pytest.raises(TraceFormatError) as info:
        read_trace(f)
    assert info.value.field == field and f"field '{field}'" in str(info.value) and str(f) in str(info.value)


def test_invalid_json_syntax_names_line(tmp_path):
    f = tmp_path / "t.json"
    f.write_text('{\n"timestamps": [0,\n')
    with pytest.raises(TraceFormatError) as info:
        read_trace(f)
    assert info.value.line is not None and str(f) in str(info.value)


def test_directory_without_traces_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("nothing here")
    with pytest.raises(TraceFormatError, match="no trace files") as info:
        list_trace_files(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_trace_type_rejects_bad_values():
    with pytest.raises(TraceFormatError, match="decrease"):
        Trace([0, 2, 1], [1, 1, 1])
    with pytest.raises(TraceFormatError, match="negative"):
        Trace([0, 1], [1, -1])
    with pytest.raises(TraceFormatError, match="loss_rate"):
        Trace([0, 1], [1, 1], loss_rate=1.0)
    with pytest.raises(TraceFormatError, match="no samples"):
        Trace([], [])


def test_zero_bandwidth_trace_cannot_become_mahimahi(tmp_path):
    with pytest.raises(TraceFormatError, match="at least one delivery opportunity"):
        write_trace(Trace([0, 10], [0, 0], name="dead"), tmp_path / "d.mahi", "mahimahi")
    assert not (tmp_path / "d.mahi").exists()


def test_load_traces_reads_every_file_of_the_shared_abr_sets():
    root = shared_path("traces", "abr")
    for name in ABR_SETS:
        files = [p for p in (root / name).iterdir() if p.is_file()]
        assert len(load_traces(root / name)) == len(files), name
