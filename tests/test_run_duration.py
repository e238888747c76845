"""Issue 25, item 16: how long a run over a trace lasts is defined once (``Trace.run_duration_s``) and the
CC simulator (``genet eval cc``) and emulation (``genet emulate cc``) both use it. A one-line Mahimahi
file (a constant 12 Mbit/s link that Mahimahi loops every 1 ms) used to give a 1-ms run: 0 Mbit/s and
100 % loss in the simulator, 12.45 Mbit/s through the 12 Mbit/s link in emulation. Now it loops for
``--duration-s`` (30 s when not given, as Pantheon), and a run shorter than 1 s is refused with one line.
The emulated run itself (root, network namespaces) is in tests/test_sender_emulation.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from foundation.errors import BadInputError
from traces import Trace, TraceFormatError, read_trace
from traces.io import write_trace

GENET = [sys.executable, "-m", "app.cli"]


@pytest.fixture
def one_line_mahimahi(tmp_path):
    f = tmp_path / "const12.mahi"
    f.write_text("1\n")
    return f


def test_run_duration_definition(one_line_mahimahi):
    looping = read_trace(one_line_mahimahi)
    assert looping.loops and looping.duration_s == pytest.approx(0.001)
    assert looping.run_duration_s() == 30.0          # Pantheon's default for a trace that only loops
    assert looping.run_duration_s(2.5) == 2.5
    plain = Trace.constant(5.0, 10.0)
    assert not plain.loops and plain.run_duration_s() == 10.0 and plain.run_duration_s(25) == 25.0
    for bad in (0.5, 0.0, -3, float("nan"), float("inf"), 1e9):
        with pytest.raises(BadInputError):
            looping.run_duration_s(bad)
    with pytest.raises(TraceFormatError, match="shorter than 1 s is refused"):
        Trace([0.0, 0.5], [3.0, 3.0], meta={"path": "short.txt"}).run_duration_s()


def test_looped_to_loops_and_cuts_like_mahimahi():
    step = Trace([0.0, 1.0, 2.0, 3.0], [5.0, 7.0, 9.0, 9.0], name="step", delay_ms=5.0)
    looped = step.looped_to(7.5)
    assert looped.timestamps_s.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 7.5]
    assert looped.bandwidth_mbps[:-1].tolist() == [5, 7, 9, 5, 7, 9, 5, 7]
    assert looped.delay_ms == 5.0 and looped.name == "step"
    cut = step.looped_to(1.5)
    assert cut.timestamps_s.tolist() == [0, 1, 1.5] and cut.bandwidth_mbps[:-1].tolist() == [5, 7]
    assert step.looped_to(3.0) is step
    const = Trace([0.0, 0.001], [12.0, 12.0]).looped_to(30.0)  # a constant trace stays two samples
    assert const.timestamps_s.tolist() == [0.0, 30.0] and const.mean_bandwidth_mbps == 12.0


def test_simulator_runs_a_one_line_mahimahi_trace_for_the_run_duration(one_line_mahimahi):
    from genet.cc.evaluate import compare_policies
    from genet.cc.registry import parse_policies
    traces = [read_trace(one_line_mahimahi)]
    default, = compare_policies(parse_policies(["const:6"]), traces, progress=False, plots=False)
    asked, = compare_policies(parse_policies(["const:6"]), traces, progress=False, plots=False, duration_s=2.0)
    for row, seconds in ((default, 30.0), (asked, 2.0)):
        assert row.trace_mean_bandwidth_mbps == pytest.approx(12.0)
        assert row.throughput_mbps == pytest.approx(6.0, rel=0.02)
        assert row.loss_rate < 0.05
        assert row.packets_sent == pytest.approx(6e6 / 12_000 * seconds, rel=0.02)


def test_genet_eval_cc_duration_option(one_line_mahimahi, tmp_path):
    ok = subprocess.run(GENET + ["eval", "cc", "--traces", str(one_line_mahimahi), "--policy", "const:6",
                                 "--duration-s", "2", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    line = next(x for x in ok.stdout.splitlines() if x.startswith("const:6"))
    assert float(line.split()[2]) == pytest.approx(6.0, rel=0.02)
    short = tmp_path / "short.txt"
    write_trace(Trace(np.array([0.0, 0.5]), np.array([3.0, 3.0])), short, "pensieve")
    for extra, words in ((["--traces", str(one_line_mahimahi), "--duration-s", "0.5"],
                          "--duration-s 0.5: a run shorter than 1 s is refused"),
                         (["--traces", str(short)], f"{short}: the trace lasts 0.5 s and a run shorter than 1 s")):
        out = tmp_path / "out"
        res = subprocess.run(GENET + ["eval", "cc", "--policy", "const:6", "--no-progress", "--out", str(out), *extra],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 1 and res.stderr.startswith("genet: error:"), res.stderr
        assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (out / "run-metadata.json").exists()  # refused before anything is written


def test_emulation_settings_use_the_same_run_duration(one_line_mahimahi):
    from sender.runs import cut_trace, link_settings
    trace = read_trace(one_line_mahimahi)
    assert link_settings(trace, None, None, None, None).duration_s == 30.0
    s = link_settings(trace, None, None, None, 2.0)
    assert s.duration_s == 2.0 and s.mean_bandwidth_mbps == pytest.approx(12.0)
    assert cut_trace(trace, 2.0).duration_s == 2.0  # what the sim_* columns run over
    with pytest.raises(BadInputError, match="shorter than 1 s"):
        link_settings(trace, None, None, None, 0.5)


def test_genet_emulate_cc_refuses_a_sub_second_run_before_any_link(one_line_mahimahi, tmp_path):
    short = tmp_path / "short.txt"
    write_trace(Trace(np.array([0.0, 0.5]), np.array([3.0, 3.0])), short, "pensieve")
    for extra, words in ((["--traces", str(one_line_mahimahi), "--duration-s", "0.2"],
                          "--duration-s 0.2: a run shorter than 1 s is refused"),
                         (["--traces", str(short)], "the trace lasts 0.5 s and a run shorter than 1 s")):
        out = tmp_path / "o"
        res = subprocess.run(GENET + ["emulate", "cc", "--policy", "const:5", "--out", str(out), *extra],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and res.stderr.startswith("genet: error:"), res.stderr
        assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (out / "runs").exists()
