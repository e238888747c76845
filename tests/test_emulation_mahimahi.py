"""The mahimahi backend: its command line (always), real Mahimahi when installed (skips with the reason here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulation import EmulationError, LinkEmulator
from emulation.config import make_link_spec
from emulation.mahimahi_backend import mahimahi_problem, mm_command, schedule_file
from traces.mahimahi import parse_mahimahi_schedule

REPO = Path(__file__).resolve().parents[1]


def test_command_nests_delay_loss_link_as_genet(tmp_path):
    spec = make_link_spec(12, 12, delay_ms=40, uplink_loss=0.01, uplink_queue="droptail",
                          uplink_queue_args="packets=20", downlink_log=tmp_path / "down.log", once=True)
    argv = mm_command(spec, "UP", "DOWN", ["sh", "-c", "echo hi"])
    assert argv == ["mm-delay", "40", "mm-loss", "uplink", "0.01", "mm-link", "UP", "DOWN", "--once",
                    "--uplink-queue=droptail", "--uplink-queue-args=packets=20",
                    f"--downlink-log={tmp_path / 'down.log'}", "--", "sh", "-c", "echo hi"]
    assert mm_command(make_link_spec(12, 12), "U", "D", ["true"]) == ["mm-link", "U", "D", "--", "true"]
    with pytest.raises(ValueError, match="whole milliseconds"):
        mm_command(make_link_spec(12, 12, delay_ms=2.5), "U", "D", ["true"])


def test_schedules_are_written_as_mahimahi_files(tmp_path):
    spec = make_link_spec(3, 24)
    for sched, per_period in ((spec.uplink.schedule, 250), (spec.downlink.schedule, 2000)):
        path = schedule_file(sched, str(tmp_path))
        lines = parse_mahimahi_schedule(path)
        assert len(lines) == per_period and lines[-1] == 1000


def test_missing_mahimahi_is_explained_before_anything_runs():
    problem = mahimahi_problem()
    if problem is None:
        pytest.skip("Mahimahi is usable here; the real-Mahimahi test covers it")
    with pytest.raises(EmulationError) as err:
        with LinkEmulator(12, 12, delay_ms=20, backend="mahimahi"):
            pass
    assert str(err.value) == problem
    res = subprocess.run([sys.executable, "-m", "app.cli", "emulate", "shell", "--backend", "mahimahi",
                          "--uplink", "12mbps", "--downlink", "12mbps", "--", "true"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode != 0 and problem.split(":")[0] in res.stderr


REAL = pytest.mark.skipif(mahimahi_problem() is not None, reason=f"Mahimahi unusable here: {mahimahi_problem()}")
SHELL = [sys.executable, "-m", "app.cli", "emulate", "shell", "--backend", "mahimahi"]


@REAL
def test_real_mahimahi_shell_sets_mahimahi_base_and_returns_status(tmp_path):
    """tmp_path is 0700 root: mm-link (running as the non-root user) could not open a log there itself."""
    up = tmp_path / "up.log"
    res = subprocess.run(SHELL + ["--delay-ms", "20", "--uplink", "12mbps", "--downlink", "12mbps",
                                  "--uplink-log", str(up), "--", "sh", "-c", "echo $MAHIMAHI_BASE; sleep 0.5; exit 5"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 5, res.stderr
    assert res.stdout.strip().count(".") == 3
    head = up.read_text().splitlines()
    assert head[0] == f"# mahimahi mm-link (Uplink) [constant 12 Mbit/s] > {up}"
    assert head[2] == "# queue: infinite" and head[3].startswith("# init timestamp: ")
    assert any(line.endswith(" # 1504") for line in head[5:50])
    from emulation.logstats import link_log_stats, read_link_log
    assert link_log_stats(read_link_log(up)).capacity_mbps == pytest.approx(12.03, abs=0.3)


@REAL
def test_real_mahimahi_reports_signals_and_the_end_of_a_once_trace_as_netns(tmp_path):
    res = subprocess.run(SHELL + ["--uplink", "12mbps", "--downlink", "12mbps", "--", "sh", "-c", "kill -9 $$"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 137, res.stderr  # 128 + SIGKILL, as netns reports it
    trace = tmp_path / "short.mahi"  # in a 0700 folder: the backend hands mm-link a copy it can read
    trace.write_text("1\n300\n")
    res = subprocess.run(SHELL + ["--once", "--uplink", str(trace), "--downlink", str(trace), "--", "sleep", "30"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 77 and "trace ended" in res.stderr, (res.returncode, res.stderr)


@REAL
def test_real_mahimahi_refuses_a_command_its_user_cannot_run(tmp_path):
    script = tmp_path / "cmd.sh"  # tmp_path is 0700 root: the Mahimahi user cannot reach it
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    res = subprocess.run(SHELL + ["--uplink", "12mbps", "--downlink", "12mbps", "--", str(script)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 1
    assert "runs inside Mahimahi as the non-root user" in res.stderr and "cannot execute" in res.stderr


@REAL
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.flaky(reruns=1, reruns_delay=2)  # real-time figures of two emulators: one rerun after a scheduling stall
@pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3")
def test_same_iperf3_and_ping_through_both_backends():
    """The same commands through real Mahimahi and through netns (host side in the root namespace, as
    Mahimahi's): ping-style RTT, iperf3 Cubic and BBR throughput, and BBR's mean RTT (queueing under load)."""
    from sender.iperf3 import run_over_link as iperf3
    from emulation.probes import icmp_rtt_probe
    got = {}
    for backend in ("mahimahi", "netns"):
        with LinkEmulator(12, 12, delay_ms=20, backend=backend) as link:
            ping = link.emulated.call(icmp_rtt_probe, link.host.address, 30, 0.03)
            got[backend] = (ping, iperf3(link, "cubic", 5), iperf3(link, "bbr", 12))
        p, c, b = got[backend]
        print(f"{backend:8s}: ping min {p.min_ms:.2f} median {p.median_ms:.2f} ms | cubic {c.throughput_mbps:.2f} "
              f"Mbit/s | bbr {b.throughput_mbps:.2f} Mbit/s, mean RTT {b.rtt_mean_ms:.1f} ms")
    (pm, cm, bm), (pn, cn, bn) = got["mahimahi"], got["netns"]
    assert pm.received == pn.received == 30
    assert abs(pn.min_ms - pm.min_ms) <= 1.5 and abs(pn.median_ms - pm.median_ms) <= 1.5
    assert abs(cn.throughput_mbps - cm.throughput_mbps) / cm.throughput_mbps <= 0.03
    assert abs(bn.throughput_mbps - bm.throughput_mbps) / bm.throughput_mbps <= 0.03
    # BBR's queueing: the 10 % check against quiet-machine Mahimahi figures is tests/test_emulation_fidelity.py;
    # here, side by side, Mahimahi's own figure grows with the machine's load (its shells run at normal
    # priority: 77 ms quiet, 90-106 ms at load 10-15 here) while the real-time netns link's does not (63.5 vs
    # 92.2 ms, ratio 0.69, beside six training runs). 0.60 still fails a netns link without its queue (BBR's RTT
    # would be the 40-ms path's: 0.52 of quiet Mahimahi's).
    assert 0.60 <= bn.rtt_mean_ms / bm.rtt_mean_ms <= 1.15
