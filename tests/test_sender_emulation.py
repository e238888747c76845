"""Fidelity of the sender and of kernel TCP over the netns emulated link (real packets, root,
network namespaces), `genet emulate cc` end to end (columns, resume, --jobs), bad input before
any link, and no leftovers. Figures are printed (pytest -s) as well as checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genet.cc.registry import parse_policy
from traces import Trace
from traces.io import write_trace

# Real-time measurements: one rerun for a run that a scheduling stall spoiled (shown in the summary).
pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (network namespaces, TUN)"),
              pytest.mark.flaky(reruns=1, reruns_delay=2)]

GENET = [sys.executable, "-m", "app.cli"]
LINK_MBPS, DELAY_MS = 12.0, 20.0


def _netns_and_procs(tag: str = ""):
    """Namespaces that are ours (this process) or orphaned (owner process gone), and live processes
    whose command line names ``tag`` (our test directory). Other helpers' live links are not ours."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    mine = set()
    for line in ns.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("gt-") and name.count("-") == 3:
            owner = int(name.split("-")[1], 16)
            if owner == os.getpid() or not os.path.exists(f"/proc/{owner}"):
                mine.add(name)
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if tag and tag in cmd and "pytest" not in cmd:
                procs.append(cmd)
    return mine, procs


@pytest.fixture
def no_leftovers(tmp_path):
    before_ns, _ = _netns_and_procs()
    yield
    after_ns, after_procs = _netns_and_procs(str(tmp_path))
    assert after_ns <= before_ns, f"namespaces left behind: {after_ns - before_ns}"
    assert not after_procs, f"processes left behind: {after_procs}"


def _run(policy: str, tmp_path, queue_packets, duration_s, name="run"):
    from sender.emulate import run_one
    from sender.runs import link_settings, set_priority_for_jobs
    set_priority_for_jobs(1)  # as genet emulate cc --jobs 1
    trace = Trace.constant(LINK_MBPS, duration_s, name="c12", delay_ms=DELAY_MS, queue_packets=queue_packets)
    s = link_settings(trace, None, None, None, None)
    return run_one(parse_policy(policy, real_packets=True), trace, s, "netns", tmp_path / name, 0), trace, s


def test_const_10_fills_10_of_12_mbps_without_loss(tmp_path, no_leftovers):
    row, _, _ = _run("const:10", tmp_path, 1000, 6.0)
    print(f"\nconst:10 over 12 Mbit/s, 20 ms: link throughput {row['throughput_mbps']:.3f} Mbit/s, receiver "
          f"{row['receiver_throughput_mbps']:.3f}, sender RTT min {row['sender_min_rtt_ms']:.2f} ms, "
          f"link loss {row['loss_rate']:.4f}")
    assert row["receiver_throughput_mbps"] == pytest.approx(10.0, rel=0.02)
    assert row["throughput_mbps"] == pytest.approx(10.0, rel=0.02)
    assert 40.0 <= row["sender_min_rtt_ms"] <= 44.0
    assert row["loss_rate"] == 0.0 and row["sender_exit_status"] == 0


def test_const_20_into_a_100_packet_queue_loses_the_excess(tmp_path, no_leftovers):
    from foundation.packets import PACKET_BYTES, UDP_PAYLOAD_BYTES
    row, _, _ = _run("const:20", tmp_path, 100, 8.0)
    goodput = row["throughput_mbps"] * UDP_PAYLOAD_BYTES / PACKET_BYTES
    print(f"\nconst:20 over 12 Mbit/s, droptail 100: link throughput {row['throughput_mbps']:.3f} Mbit/s of IP "
          f"packets ({goodput:.3f} Mbit/s UDP payload), loss {row['loss_rate']:.3f} (sender's view "
          f"{row['sender_loss_rate']:.3f})")
    assert goodput == pytest.approx(11.6, rel=0.03)
    # 1500-byte IP packets on both sides: 1 - 12/20 = 0.40 in steady state, less the 100 packets the queue
    # still delivers after the sender stops (~0.8 % of an 8-s run); the 40-45 % assumed 11.6 of 20.
    expected = 1 - row["throughput_mbps"] / row["sender_send_rate_mbps"] - 100 / row["packets_sent"]
    print(f"expected link loss {expected:.3f}")
    assert row["loss_rate"] == pytest.approx(expected, abs=0.01)
    assert 0.38 <= row["loss_rate"] <= 0.45


def test_random_loss_is_in_the_link_log_and_in_the_loss_rate(tmp_path, no_leftovers):
    """The netns link logs its random losses (``T l 1 SIZE``), so the one metric source (the uplink log)
    counts them: loss_rate = queue drops (none here) + random loss, and throughput is what got through."""
    from emulation.logstats import read_link_log, read_link_log_arrays
    from sender.emulate import run_one
    from sender.runs import link_settings, set_priority_for_jobs
    set_priority_for_jobs(1)
    trace = Trace.constant(LINK_MBPS, 5.0, name="c12-loss", delay_ms=DELAY_MS, queue_packets=1000, loss_rate=0.1)
    s = link_settings(trace, None, None, None, None)
    row = run_one(parse_policy("const:5", real_packets=True), trace, s, "netns", tmp_path / "run", 0,
                  keep_logs=True)
    log = tmp_path / "run" / "uplink.log"
    up = read_link_log_arrays(log)
    assert not list((tmp_path / "run").glob("*.random-loss"))  # appended to the log and removed
    assert read_link_log(log).random_losses and up.dropped_packets == 0
    print(f"\nconst:5, 10 % random loss: link loss {row['loss_rate']:.4f} ({up.random_lost_packets} l lines of "
          f"{up.arrival_ms.size} arrivals), sender's view {row['sender_loss_rate']:.4f}, link throughput "
          f"{row['throughput_mbps']:.3f} Mbit/s, receiver {row['receiver_throughput_mbps']:.3f}")
    assert row["loss_rate"] == pytest.approx(up.random_lost_bytes / float(np.sum(up.arrival_bytes)), rel=1e-9)
    assert 0.07 <= row["loss_rate"] <= 0.13
    assert row["loss_rate"] == pytest.approx(row["sender_loss_rate"], abs=0.015)
    assert row["throughput_mbps"] == pytest.approx(row["receiver_throughput_mbps"], rel=0.03)


def test_the_trace_starts_at_the_senders_first_packet_as_in_the_simulator(tmp_path, no_leftovers):
    """A simulated run's trace starts with its first packet; so does the emulated link's (netns): the
    sender's first packet arrives at the link at trace ms 0, not after the sender process's start-up
    (a few hundred ms, which shifted every trace against the simulator's and cut a start-up trace's first
    half second: docs/fidelity.md)."""
    from emulation.logstats import read_link_log_arrays
    from sender.emulate import run_one
    from sender.runs import link_settings, set_priority_for_jobs
    set_priority_for_jobs(1)
    trace = Trace.constant(LINK_MBPS, 3.0, name="c12-start", delay_ms=DELAY_MS, queue_packets=100)
    s = link_settings(trace, None, None, None, None)
    run_one(parse_policy("const:5", real_packets=True), trace, s, "netns", tmp_path / "run", 0, keep_logs=True)
    up = read_link_log_arrays(tmp_path / "run" / "uplink.log")
    print(f"\nfirst arrival at trace ms {up.arrival_ms[0]}")
    assert up.arrival_ms.size > 100 and 0 <= up.arrival_ms[0] <= 5


def test_shipped_aurora_model_rate_matches_the_simulator(tmp_path, repo_dir, no_leftovers):
    """12 Mbit/s, 20 ms, BDP queue (40 packets), 10 s: mean sending rate in emulation within 15 % of the
    simulator's, both within [0.5, 1.5] x the link rate."""
    from genet.cc.aurora import AuroraConfig
    from genet.cc.env import AuroraEnv
    from genet.cc.registry import load_aurora_policy
    from foundation.packets import PACKET_BITS
    model = str(repo_dir / "models" / "cc" / "genet.onnx")
    bdp = int(LINK_MBPS * 1e6 / PACKET_BITS * 2 * DELAY_MS / 1000)
    row, trace, _ = _run(model, tmp_path, bdp, 10.0)
    net, cfg = load_aurora_policy(model, AuroraConfig())
    env = AuroraEnv(traces=[trace], aurora=cfg)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, _, done, _ = env.step(net.act(obs[None, :])[0])
    log = env.episode_log()
    sim_rate = float(np.count_nonzero(log.kind == 0)) * PACKET_BITS / trace.duration_s / 1e6
    emu_rate = row["sender_send_rate_mbps"]
    print(f"\nshipped genet.onnx, 12 Mbit/s 20 ms queue {bdp}: mean sending rate emulation {emu_rate:.2f} Mbit/s, "
          f"simulator {sim_rate:.2f} Mbit/s; link throughput {row['throughput_mbps']:.2f}, "
          f"sim {row.get('sim_throughput_mbps', float('nan')):.2f}")
    assert emu_rate == pytest.approx(sim_rate, rel=0.15)
    for r in (emu_rate, sim_rate):
        assert 0.5 * LINK_MBPS <= r <= 1.5 * LINK_MBPS


def test_kernel_bbr_uses_the_link_and_the_simulators_bbr_is_close(tmp_path, no_leftovers):
    from sender.emulate import sim_row
    row, trace, s = _run("bbr", tmp_path, 100, 8.0)
    sim = sim_row(parse_policy("bbr"), trace, s, None)
    print(f"\nkernel BBR over 12 Mbit/s: link throughput {row['throughput_mbps']:.2f} Mbit/s (iperf3 "
          f"{row['iperf3_throughput_mbps']:.2f}, retransmits {row['iperf3_retransmits']}); simulator's BBR "
          f"{sim['sim_throughput_mbps']:.2f} Mbit/s")
    assert row["iperf3_congestion_control"] == "bbr"
    assert row["throughput_mbps"] >= 0.9 * LINK_MBPS
    assert sim["sim_throughput_mbps"] == pytest.approx(row["throughput_mbps"], rel=0.10)


def test_emulate_cc_writes_eval_cc_columns_plus_sim_and_resumes(tmp_path, no_leftovers):
    from genet.cc.metrics import RunMetrics
    from dataclasses import fields
    tdir = tmp_path / "traces"
    tdir.mkdir()
    write_trace(Trace.constant(8.0, 3.0, name="c8", delay_ms=10.0, queue_packets=50), tdir / "c8.json")
    out = tmp_path / "out"
    cmd = GENET + ["emulate", "cc", "--policy", "const:3,const:6", "--traces", str(tdir), "--jobs", "2",
                   "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [r["policy"] for r in rows] == ["const:3", "const:6"]
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert [f.name for f in fields(RunMetrics)] == header[:len(fields(RunMetrics))]
    assert {"sim_throughput_mbps", "sim_p90_rtt_ms", "sim_loss_rate", "sim_reward", "repeat", "backend"} <= set(header)
    for r, rate in zip(rows, (3.0, 6.0)):
        assert r["throughput_mbps"] == pytest.approx(rate, rel=0.05)
        assert r["sim_throughput_mbps"] == pytest.approx(rate, rel=0.05)
    for f in ("summary.txt", "gap.txt", "gap.csv", "timeseries.png", "reward_cdf.png", "gap_scatter.png",
              "run-metadata.json"):
        assert (out / f).is_file(), f
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "genet emulate cc:" not in again.stderr  # no run left to do
    assert json.loads((out / "results.json").read_text()) == rows  # nothing redone


@pytest.mark.parametrize("extra,msg", [
    (["--policy", "tcp:nosuchcc"], "kernel TCP 'nosuchcc' is not allowed"),
    (["--policy", "models/abr/genet.onnx"], "not a CC (Aurora) policy"),
    (["--policy", "quic"], "unknown CC policy"),
    (["--policy", "cubic", "--backend", "mininet", "--delay-ms", "20"], "this kernel has no netem"),
    (["--policy", "const:5", "--repeats", "0"], "--repeats must be >= 1"),
])
def test_bad_input_fails_before_any_link_is_made(extra, msg, tmp_path, repo_dir, no_leftovers):
    if "mininet" in extra:
        from emulation.mininet_backend import kernel_has_netem, mininet_problem
        if mininet_problem() or kernel_has_netem():
            pytest.skip("needs Mininet on a kernel without netem (the CI machine's)")
    tdir = tmp_path / "traces"
    tdir.mkdir()
    write_trace(Trace.constant(8.0, 3.0, name="c8"), tdir / "c8.json")
    before, _ = _netns_and_procs()
    res = subprocess.run(GENET + ["emulate", "cc", "--traces", str(tdir), "--out", str(tmp_path / "o"), *extra],
                         capture_output=True, text=True, timeout=60, cwd=repo_dir)
    after, _ = _netns_and_procs()
    assert res.returncode == 1 and res.stderr.startswith("genet: error:") and msg in res.stderr, res.stderr
    assert after == before and not (tmp_path / "o" / "runs").exists()


def test_competing_flows_report_each_share_and_jains_index(tmp_path, no_leftovers):
    tdir = tmp_path / "traces"
    tdir.mkdir()
    write_trace(Trace.constant(12.0, 4.0, name="c12", delay_ms=10.0, queue_packets=100), tdir / "c12.json")
    out = tmp_path / "out"
    res = subprocess.run(GENET + ["emulate", "cc", "--flows", "const:3,const:6,cubic", "--traces", str(tdir),
                                  "--out", str(out), "--no-plots"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    print("\n" + (out / "flows.txt").read_text())
    rows = json.loads((out / "flows.json").read_text())
    assert [r["policy"] for r in rows] == ["const:3", "const:6", "cubic"]
    tput = [r["throughput_mbps"] for r in rows]
    assert tput[0] == pytest.approx(3.0, rel=0.1) and tput[1] == pytest.approx(6.0, rel=0.1)
    assert 0.5 < tput[2] <= 12.0 * 1.03  # each over its own delivery span (Pantheon's per-flow throughput)
    jain = sum(tput) ** 2 / (3 * sum(x * x for x in tput))
    assert all(r["jain_index"] == pytest.approx(jain) for r in rows)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


def test_emulate_cc_crash_while_journaling_then_two_reruns_keep_every_run_once(tmp_path, no_leftovers):
    """A crash tore the journal's last line: the first rerun runs only what is missing and journals it as a
    whole line (not glued onto the fragment, where it was lost and run again on every rerun), the second
    runs nothing; every run is in the journal exactly once."""
    tdir = tmp_path / "traces"
    tdir.mkdir()
    write_trace(Trace.constant(8.0, 2.0, name="c8", delay_ms=10.0, queue_packets=50), tdir / "c8.json")
    out = tmp_path / "out"
    cmd = GENET + ["emulate", "cc", "--traces", str(tdir), "--duration-s", "2", "--no-plots", "--out", str(out)]
    res = subprocess.run(cmd + ["--policy", "const:3"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    path = out / "results.jsonl"
    (line,) = path.read_text().splitlines()
    with open(path, "a") as fh:  # the controller killed while journaling a run
        fh.write(line[:len(line) // 2])
    first = subprocess.run(cmd + ["--policy", "const:3,const:6"], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and "genet emulate cc: 1 runs (1 already done)" in first.stderr, first.stderr
    second = subprocess.run(cmd + ["--policy", "const:3,const:6"], capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "genet emulate cc:" not in second.stderr, second.stderr  # nothing redone
    rows = [json.loads(x) for x in path.read_text().splitlines()]  # every line a whole record
    assert sorted(r["policy"] for r in rows) == ["const:3", "const:6"]
    assert [r["policy"] for r in json.loads((out / "results.json").read_text())] == ["const:3", "const:6"]


def test_one_line_mahimahi_trace_loops_for_the_run_duration(tmp_path, no_leftovers):
    """Issue 25, item 16: a one-line Mahimahi file (a constant 12 Mbit/s link that loops every 1 ms) ran
    for about 1 ms and reported 12.45 Mbit/s through the 12 Mbit/s link; with --duration-s 2 it runs for
    2 s (Trace.run_duration_s, as genet eval cc) and const:6 gets 6 Mbit/s, in emulation and in the
    simulator's columns alike (tests/test_run_duration.py has the simulator and the defaults)."""
    from foundation.packets import PACKET_BITS
    tdir = tmp_path / "traces"
    tdir.mkdir()
    (tdir / "const12.mahi").write_text("1\n")
    out = tmp_path / "out"
    res = subprocess.run(GENET + ["emulate", "cc", "--policy", "const:6", "--traces", str(tdir), "--duration-s", "2",
                                  "--out", str(out), "--no-plots"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    row, = json.loads((out / "results.json").read_text())
    print(f"\none-line Mahimahi trace, const:6 for 2 s: link throughput {row['throughput_mbps']:.3f} Mbit/s, "
          f"receiver {row['receiver_throughput_mbps']:.3f}, simulator {row['sim_throughput_mbps']:.3f}, "
          f"{row['packets_sent']} packets")
    assert row["trace_mean_bandwidth_mbps"] == pytest.approx(12.0)
    assert row["packets_sent"] == pytest.approx(6e6 * 2 / PACKET_BITS, rel=0.05)  # 2 s of sending, not 1 ms
    assert row["throughput_mbps"] == pytest.approx(6.0, rel=0.05)
    assert row["receiver_throughput_mbps"] == pytest.approx(6.0, rel=0.05)
    assert row["sim_throughput_mbps"] == pytest.approx(6.0, rel=0.02)


def test_selfcheck_measures_rate_rtt_and_loss_against_the_settings(tmp_path, no_leftovers):
    out = tmp_path / "selfcheck.json"
    res = subprocess.run(GENET + ["emulate", "selfcheck", "--rates-mbps", "10", "--duration-s", "1", "--delay-ms",
                                  "10", "--loss-rate", "0.02", "--json", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert "RTT model" in res.stdout, res.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert 8.5 < row["achieved_mbps"] <= 10.0  # TCP payload of a 10 Mbit/s link
    assert row["expected_rtt_ms"] == pytest.approx(20.0 + 1.2)  # 2 x 10 ms + half a 1500-B opportunity each way
    assert 0 <= row["measured_rtt_ms"] - row["expected_rtt_ms"] < 4.0  # the emulator's 1-ms clock, no more
    assert abs(row["measured_loss_rate"] - 0.02) < 0.01
    assert res.returncode == 0  # warnings are reported, not failed, unless --strict
    bad = subprocess.run(GENET + ["emulate", "selfcheck", "--rates-mbps", "fast"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "--rates-mbps 'fast': expected comma-separated numbers" in bad.stderr
