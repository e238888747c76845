"""Issue 25, items 7 and 8 and the symlink remark: each malformed trace file that gave a traceback, an
accepted trace with an inf/NaN mean, a 745-GiB allocation or an echoed secret now gives one
:class:`TraceFormatError` line naming the file (and line or field where one applies)."""

from __future__ import annotations

import json
import math
import os

import pytest

from traces import TraceFormatError, read_trace
from traces.mahimahi import MAX_TRACE_DURATION_MS, parse_mahimahi_schedule, schedule_to_trace
from traces.textfile import MAX_TRACE_FILE_BYTES

CSV_HEAD = "timestamp_s,bandwidth_mbps"
JSON_OK = '"timestamps": [0, 1], "bandwidths": [1, 1]'

# name, content, format (None: detected), line or None, field or None, words in the message
MALFORMED = [
    # Genet JSON: nested JSON, huge integers, NaN/inf (bandwidth, delays, queue, loss), huge finite values
    ("nested.json", "[" * 100_000 + "]" * 100_000, None, None, None, "nested too deeply"),
    ("nested-field.json", '{"timestamps": ' + "[" * 100_000 + "]" * 100_000 + "}", None, None, None,
     "nested too deeply"),
    ("huge-int-t.json", '{"timestamps": [0, 1' + "0" * 400 + '], "bandwidths": [1, 1]}', None, None, "timestamps",
     "not a finite number"),
    ("huge-int-bw.json", '{"timestamps": [0, 1], "bandwidths": [1' + "0" * 400 + ", 1]}", None, None, "bandwidths",
     "not a finite number"),
    ("digits.json", '{"timestamps": [0, 1], "bandwidths": [1, 1], "queue": 1' + "0" * 5000 + "}", None, None, None,
     "number too long to read"),
    ("nan-queue.json", "{" + JSON_OK + ', "queue": NaN}', None, None, "queue", "finite"),
    ("inf-queue.json", "{" + JSON_OK + ', "queue": Infinity}', None, None, "queue", "finite"),
    ("neg-inf-queue.json", "{" + JSON_OK + ', "queue": -Infinity}', None, None, "queue", "finite"),
    ("huge-queue.json", "{" + JSON_OK + ', "queue": 1e308}', None, None, "queue", "queue_packets"),
    ("inf-delay.json", "{" + JSON_OK + ', "delays": [Infinity]}', None, None, "delays", "finite"),
    ("nan-loss.json", "{" + JSON_OK + ', "loss": NaN}', None, None, "loss", "finite"),
    ("inf-bw.json", '{"timestamps": [0, 1], "bandwidths": [Infinity, 1]}', None, None, "bandwidths", "finite"),
    ("big-bw.json", '{"timestamps": [0, 2], "bandwidths": [1e308, 1e308]}', None, None, "bandwidths",
     "MAX_BANDWIDTH_MBPS"),
    ("long.json", '{"timestamps": [0, 1e308], "bandwidths": [1, 1]}', None, None, None, "MAX_TRACE_DURATION_S"),
    ("name.json", "{" + JSON_OK + ', "name": {"a": 1}}', None, None, "name", "must be a string"),
    ("empty.json", "", None, 1, None, "invalid JSON"),
    # Mahimahi: '²' passes str.isdigit but not int(); other non-ASCII digits int() accepts; int64 overflow
    ("superscript.mahi", "1\n²\n", None, 2, None, "integer"),
    ("arabic-indic.mahi", "1\n١٢\n", None, 2, None, "integer"),
    ("overflow.mahi", "1\n" + "9" * 30 + "\n", None, 2, None, "MAX_TRACE_DURATION_MS"),
    ("int64.mahi", "1\n9223372036854775808\n", None, 2, None, "MAX_TRACE_DURATION_MS"),
    ("not-utf8.mahi", b"1\n\xff\xfe\n", "mahimahi", 2, None, "not UTF-8"),
    ("empty.mahi", "", "mahimahi", None, None, "empty"),
    # CSV: the csv module's field-size limit, NaN/inf queue_packets, huge values, non-UTF-8
    ("field-limit.csv", CSV_HEAD + '\n"' + "1" * 200_000 + '",1\n', None, 2, None, "field limit"),
    ("nan-queue.csv", CSV_HEAD + ",queue_packets\n0,1,nan\n1,1,\n", None, 2, "queue_packets", "finite"),
    ("inf-queue.csv", CSV_HEAD + ",queue_packets\n0,1,inf\n1,1,\n", None, 2, "queue_packets", "finite"),
    ("huge-queue.csv", CSV_HEAD + ",queue_packets\n0,1,1e308\n1,1,\n", None, 2, "queue_packets", "queue_packets"),
    ("big-bw.csv", CSV_HEAD + "\n0,1e308\n2,1e308\n", None, 2, None, "MAX_BANDWIDTH_MBPS"),
    ("nan-bw.csv", CSV_HEAD + "\n0,nan\n1,1\n", None, 2, None, "non-finite"),
    ("not-utf8.csv", CSV_HEAD.encode() + b"\n0,1\xff\n", None, 2, None, "not UTF-8"),
    ("empty.csv", "", None, None, None, "empty"),
    # Pensieve: huge finite values (an inf mean before), non-UTF-8, empty
    ("big-bw.txt", "0 1e308\n2 1e308\n", None, 1, None, "MAX_BANDWIDTH_MBPS"),
    ("not-utf8.txt", b"0 1\n\xff 1\n", "pensieve", 2, None, "not UTF-8"),
    ("empty.txt", "", None, None, None, "empty"),
]


@pytest.mark.parametrize("name,content,fmt,line,field,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_gives_one_line_naming_the_file(tmp_path, name, content, fmt, line, field, words):
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content, encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        read_trace(f, fmt)
    err = info.value
    msg = str(err)
    assert "\n" not in msg and msg.startswith(str(f)), msg
    assert words in msg, msg
    assert err.line == line, msg
    if field is not None:
        assert err.field == field, msg
    assert len(msg) < len(str(f)) + 300, msg  # a short reason, not the file's content


def test_745_gib_mahimahi_file_is_refused_before_allocating(tmp_path):
    """A 2-line Mahimahi file ('1', '100000000000000') used to ask numpy for 745 GiB of rate bins."""
    f = tmp_path / "absurd.mahi"
    f.write_text("1\n100000000000000\n")
    with pytest.raises(TraceFormatError, match=r"absurd\.mahi:2: timestamp above 86,400,000 ms") as info:
        read_trace(f)
    assert "MAX_TRACE_DURATION_MS" in str(info.value)
    # the longest allowed period still reads (one day in 1-s bins: 86,400 samples)
    f.write_text(f"1\n{MAX_TRACE_DURATION_MS}\n")
    trace = read_trace(f)
    assert trace.duration_s == MAX_TRACE_DURATION_MS / 1000 and len(trace) == 86_401
    # and the schedule -> trace step refuses on its own too (emulation calls it directly)
    with pytest.raises(TraceFormatError, match="MAX_TRACE_SAMPLES"):
        schedule_to_trace(parse_mahimahi_schedule(f), bin_ms=1)


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    f = tmp_path / "big.mahi"
    with open(f, "wb") as fh:
        fh.truncate(MAX_TRACE_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(TraceFormatError, match="MAX_TRACE_FILE_BYTES") as info:
        read_trace(f, "mahimahi")
    assert str(f) in str(info.value)


FAKE_SHADOW = "root:$y$j9T$Zm9vYmFyYmF6cXV4$4Kq8e1FAKEHASHc5m1Xw0rS2pQ7vN:19700:0:99999:7:::"


@pytest.mark.parametrize("link_name,fmt,before", [
    ("trace.mahi", None, ""), ("trace.txt", None, ""), ("trace.txt", "pensieve", "0 1\n"),
    ("trace.csv", None, ""), ("trace.csv", None, "timestamp_s,bandwidth_mbps\n"), ("trace.json", None, ""),
    ("trace", "mahimahi", "1\n2\n"),
])
def test_error_through_a_symlink_does_not_echo_the_secret(tmp_path, link_name, fmt, before):
    """A trace path that is a symlink to a file of secrets (/etc/shadow in the report): the error names
    the path given and the line, never the line's text."""
    secret = tmp_path / "shadow"
    secret.write_text(before + FAKE_SHADOW + "\ndaemon:*:19700:0:99999:7:::\n")
    os.chmod(secret, 0o600)
    link = tmp_path / link_name
    link.symlink_to(secret)
    with pytest.raises(TraceFormatError) as info:
        read_trace(link, fmt)
    msg = str(info.value)
    assert msg.startswith(str(link)) and "\n" not in msg, msg
    reason = msg[len(str(link)):]  # (the temporary path itself may hold "root")
    for piece in ("root", "$y$", "FAKEHASH", "99999", "daemon"):
        assert piece not in reason, msg
    if not link_name.endswith(".json"):
        assert info.value.line == before.count("\n") + 1, msg


def test_accepted_traces_have_a_finite_mean(tmp_path):
    """The two files accepted with an inf mean before (1e308 Mbit/s over 2 s) are refused; a sane one
    close to the limits reads with finite figures."""
    f = tmp_path / "ok.json"
    f.write_text(json.dumps({"timestamps": [0, 86_400], "bandwidths": [1e6, 1e6], "queue": 1e9, "delays": [6e4]}))
    trace = read_trace(f)
    assert math.isfinite(trace.mean_bandwidth_mbps) and trace.queue_packets == 10 ** 9
