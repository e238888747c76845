"""The mahimahi backend: its command line (always), real Mahimahi when installed (skips with the reason here)."""

from __future__ import annotations

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
    res = subprocess.run([sys.executable, "-m", "genet.cli", "emulate", "shell", "--backend", "mahimahi",
                          "--uplink", "12mbps", "--downlink", "12mbps", "--", "true"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode != 0 and problem.split(":")[0] in res.stderr


@pytest.mark.skipif(mahimahi_problem() is not None, reason=f"Mahimahi unusable here: {mahimahi_problem()}")
def test_real_mahimahi_shell_sets_mahimahi_base_and_returns_status(tmp_path):
    up = tmp_path / "up.log"
    res = subprocess.run([sys.executable, "-m", "genet.cli", "emulate", "shell", "--backend", "mahimahi",
                          "--delay-ms", "20", "--uplink", "12mbps", "--downlink", "12mbps", "--uplink-log", str(up),
                          "--", "sh", "-c", "echo $MAHIMAHI_BASE; exit 5"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 5, res.stderr
    assert res.stdout.strip().count(".") == 3
    assert up.read_text().startswith("# mahimahi mm-link (Uplink)")
