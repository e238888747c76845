"""Fuzzing every trace reader (issue 25, item 7): Hypothesis over raw bytes and over near-valid files of
each format. Whatever the file holds, a reader either returns a trace whose figures are finite and
within the documented limits, or raises one :class:`TraceFormatError` whose message is one line and
names the file — never another exception (a traceback), and never the text of a planted "secret" value
(errors name the file and line and say what is wrong; they do not echo the file). Seeded by the suite's
Hypothesis seed (tests/conftest.py); about 20 s in all."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import hypothesis_examples
from traces import Trace, TraceFormatError, read_trace
from traces.trace import MAX_BANDWIDTH_MBPS, MAX_TRACE_DURATION_S

#: Planted in near-valid files; no error message may contain it (it stands for a line of /etc/shadow).
SECRET = "hunter2-SECRET"
FORMATS = (None, "pensieve", "mahimahi", "json", "csv")
FUZZ = settings(max_examples=hypothesis_examples(800), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Tokens that broke (or nearly broke) a reader: non-ASCII digits, overflow, nan/inf, control characters.
NASTY = ["0", "1", "2", "-1", "1.5", "1e308", "1e400", "-1e400", "nan", "NaN", "inf", "-inf", "Infinity",
         "²", "١٢", "٣", "9" * 19, "9" * 30, "100000000000000", "86400001", "1_000", "0x10", "", " ", "\x00", "\t",
         "\ufeff1", SECRET, "é", "1\r", '"', '""', "#", ","]
numbers = st.one_of(st.integers(-10, 100_000), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(10 ** 400), 10 ** 400), st.sampled_from([1e308, 86_400.001, 1e6 + 1]))
tokens = st.one_of(numbers.map(str), st.sampled_from(NASTY))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def check_reader(path, fmt):
    """The property: a sane trace, or one one-line TraceFormatError naming the file (and no secret)."""
    try:
        trace = read_trace(path, fmt)
    except TraceFormatError as exc:
        msg = str(exc)
        assert "\n" not in msg and "\r" not in msg, msg
        assert str(path) in msg, msg
        assert SECRET not in msg, msg
        return None
    assert isinstance(trace, Trace)
    assert math.isfinite(trace.mean_bandwidth_mbps) and math.isfinite(trace.total_megabits)
    assert 0 <= trace.duration_s <= MAX_TRACE_DURATION_S
    assert 0 <= trace.bandwidth_mbps.min() and trace.bandwidth_mbps.max() <= MAX_BANDWIDTH_MBPS
    for v in (trace.delay_ms, trace.loss_rate, trace.queue_packets):
        assert v is None or math.isfinite(v)
    return trace


@FUZZ
@given(data=st.binary(max_size=400), fmt=st.sampled_from(FORMATS),
       suffix=st.sampled_from([".txt", ".mahi", ".json", ".csv", ""]))
def test_any_bytes_give_a_trace_or_a_one_line_error(fuzz_dir, data, fmt, suffix):
    path = fuzz_dir / f"bytes{suffix}"
    path.write_bytes(data)
    check_reader(path, fmt)


@FUZZ
@given(lines=st.lists(st.one_of(st.integers(0, 2_000).map(str), tokens), min_size=0, max_size=12),
       eol=st.sampled_from(["\n", "\r\n"]))
def test_near_valid_mahimahi(fuzz_dir, lines, eol):
    path = fuzz_dir / "near.mahi"
    path.write_text(eol.join(lines) + eol, encoding="utf-8")
    check_reader(path, "mahimahi")
    check_reader(path, None)


@FUZZ
@given(rows=st.lists(st.tuples(st.one_of(st.floats(0, 100).map(str), tokens),
                               st.one_of(st.floats(0, 100).map(str), tokens)), min_size=0, max_size=10),
       sep=st.sampled_from([" ", "\t", "  "]))
def test_near_valid_pensieve(fuzz_dir, rows, sep):
    path = fuzz_dir / "near.txt"
    path.write_text("".join(f"{a}{sep}{b}\n" for a, b in rows), encoding="utf-8")
    check_reader(path, "pensieve")


CSV_HEADERS = ["timestamp_s,bandwidth_mbps", "timestamp_ms,bandwidth_kbps,queue_packets",
               "time_s,bandwidth_bps,delay_ms,loss_rate,queue_packets", "timestamp_s,queue_packets",
               "timestamp_s,bandwidth_mbps,delay_ms", f"timestamp_s,{SECRET}"]


@FUZZ
@given(header=st.sampled_from(CSV_HEADERS),
       rows=st.lists(st.lists(st.one_of(st.integers(0, 100).map(str), tokens), min_size=1, max_size=5),
                     min_size=0, max_size=8),
       long_field=st.booleans())
def test_near_valid_csv(fuzz_dir, header, rows, long_field):
    path = fuzz_dir / "near.csv"
    lines = [header] + [",".join(r) for r in rows]
    if long_field:  # past the csv module's field-size limit (131,072 characters)
        lines.append('"' + "9" * 140_000 + '",1')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    check_reader(path, "csv")


json_scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from([SECRET, "x", ""]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.sampled_from(["a", "path"]), inner,
                                                                                 max_size=2)),
                           max_leaves=8)
number_lists = st.lists(numbers, min_size=0, max_size=6)


@FUZZ
@given(fields=st.fixed_dictionaries({}, optional={
           "timestamps": st.one_of(number_lists, json_values), "bandwidths": st.one_of(number_lists, json_values),
           "delays": st.one_of(number_lists, json_values), "loss": json_values, "queue": json_values,
           "delay_noise": json_values, "T_s": json_values, "name": json_values, "meta": json_values,
           "genet_testbed": json_values}),
       nest_depth=st.sampled_from([0, 0, 0, 50, 100_000]),
       pantheon_name=st.booleans())
def test_near_valid_json(fuzz_dir, fields, nest_depth, pantheon_name):
    path = fuzz_dir / ("x_datalink_run1.json" if pantheon_name else "near.json")
    text = json.dumps(fields)  # writes NaN / Infinity / 400-digit integers as Python's json reads them
    if nest_depth:
        text = text[:-1] + (", " if fields else "") + '"deep": ' + "[" * nest_depth + "]" * nest_depth + "}"
    path.write_text(text, encoding="utf-8")
    check_reader(path, "json")
