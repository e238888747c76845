"""`genet emulate abr`: real players over emulated links (needs root), fidelity on a constant link,
failures recorded, resume, no leftovers. Short (8-chunk) sessions keep it to about a minute."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genet.abr.evaluate import evaluate
from genet.abr.params import PENSIEVE, EnvParams
from genet.abr.video import load_video
from player.client import read_log
from player.emulate import emulator_view
from traces.trace import Trace

# Real-time measurements: one rerun for a run that a scheduling stall spoiled (shown in the summary).
pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root"),
              pytest.mark.flaky(reruns=1, reruns_delay=2)]

CHUNKS = 8
DELAY_MS = 40.0


def _genet(*args, **kw):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, **kw)


def _leftovers(out: Path) -> list[str]:
    """Processes still running from this output directory, and the emulation resources its links made."""
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(out) in cmd:
                procs.append(cmd)
    from emulation.resources import state_dir
    from emulation.sysnet import list_links, list_netns
    runs = [p.read_text().strip() for p in out.glob("sessions/*/*/link_run.txt")]
    assert runs, "no session started a link"
    left = [n for n in list_netns() + list_links("gt-") for run in runs if n.startswith(run + "-")]
    left += [str(state_dir() / f"{run}.json") for run in runs if (state_dir() / f"{run}.json").exists()]
    return procs + left


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    (d / "const3").write_text("".join(f"{t} 3.0\n" for t in range(0, 400)))
    (d / "broken").write_text("0 3.0\n1 banana\n")
    return d


@pytest.fixture(scope="module")
def run(traces, tmp_path_factory):
    out = tmp_path_factory.mktemp("emu") / "out"
    proc = _genet("emulate", "abr", "--policy", "bba", "--traces", str(traces), "--chunks", str(CHUNKS),
                  "--repeats", "2", "--jobs", "2", "--out", str(out), timeout=400)
    return out, proc


def test_constant_link_bba_matches_simulator_per_chunk(run):
    out, proc = run
    rows = {(r["trace"], r["repeat"]): r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows[("const3", "0")]["status"] == "complete", proc.stdout + proc.stderr
    video = load_video(out / "video-sized")
    for rep in ("0", "1"):
        row = rows[("const3", rep)]
        log = read_log(row["log"])
        emu = log["chunks"]
        assert len(emu) == CHUNKS
        trace = emulator_view(Trace(np.arange(400.0), np.full(400, 3.0)), float(row["trace_offset_s"]))
        params = EnvParams(60.0, video.chunk_length_s, 2 * DELAY_MS, CHUNKS * video.chunk_length_s)
        _, sim = evaluate("bba", [trace], video, PENSIEVE, params=params, record_chunks=True)
        same = sum(int(c["quality"]) == int(s["quality"][0]) for c, s in zip(emu, sim))
        assert same >= 0.9 * CHUNKS, [(c["quality"], int(s["quality"][0])) for c, s in zip(emu, sim)]
        for c, s in zip(emu, sim):
            if int(c["quality"]) == int(s["quality"][0]):
                sim_ms = float(s["delay_ms"][0])
                assert abs(c["download_ms"] - sim_ms) <= 0.10 * sim_ms + 2 * DELAY_MS, (c, sim_ms)
        assert float(row["qoe"]) == pytest.approx(float(row["sim_qoe"]), rel=0.10, abs=0.5)
    # repeatability: the same trace and policy twice
    q0, q1 = float(rows[("const3", "0")]["qoe"]), float(rows[("const3", "1")]["qoe"])
    assert abs(q0 - q1) <= 0.02 * max(abs(q0), abs(q1)) + 0.05


def test_outputs_failures_and_no_leftovers(run):
    out, proc = run
    assert proc.returncode == 1  # one trace could not be played: reported, not fatal
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {r["trace"] for r in rows} == {"const3", "broken"} and len(rows) == 4
    broken = [r for r in rows if r["trace"] == "broken"]
    assert all(r["status"] == "error" and "broken" in r["reason"] for r in broken)
    header = rows[0].keys()
    for col in ("policy", "trace", "bitrate_mbps", "rebuffer_s", "bitrate_change_mbps", "qoe", "sim_qoe",
                "sim_rebuffer_s", "sim_bitrate_mbps", "sim_bitrate_change_mbps"):
        assert col in header
    for name in ("results.json", "summary.txt", "qoe_cdf.png", "sim_vs_emulation.png", "run-metadata.json"):
        assert (out / name).is_file(), name
    assert "FAILED bba broken" in (out / "summary.txt").read_text()
    assert (out / "sessions" / "bba" / "const3-r0" / "server.jsonl").is_file()
    assert _leftovers(out) == []


def test_rerun_resumes_and_an_interrupted_run_leaves_nothing(run, traces, tmp_path):
    out, _ = run
    before = (out / "sessions" / "bba" / "const3-r0" / "player.jsonl").stat().st_mtime
    t0 = time.monotonic()
    proc = _genet("emulate", "abr", "--policy", "bba", "--traces", str(traces), "--chunks", str(CHUNKS),
                  "--repeats", "2", "--jobs", "2", "--out", str(out), timeout=200)
    assert time.monotonic() - t0 < 15, proc.stdout  # only the broken trace runs again
    assert (out / "sessions" / "bba" / "const3-r0" / "player.jsonl").stat().st_mtime == before
    assert len(list(csv.DictReader(open(out / "results.csv")))) == 4
    # interrupt a run mid-session
    out2 = tmp_path / "interrupted"
    p = subprocess.Popen([sys.executable, "-m", "app.cli", "emulate", "abr", "--policy", "bba", "--traces",
                          str(traces / "const3"), "--chunks", str(CHUNKS), "--out", str(out2)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    log = out2 / "sessions" / "bba" / "const3-r0" / "player.jsonl"
    while time.monotonic() < deadline and not (log.is_file() and '"chunk"' in log.read_text()):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    p.wait(60)
    assert p.returncode != 0
    time.sleep(0.5)
    assert _leftovers(out2) == []


def test_crash_while_journaling_then_two_reruns_keep_every_session_once(tmp_path):
    """A crash tore the journal's last line: the first rerun plays only the session that is missing and
    journals it as a whole line, the second plays nothing; every session is in the journal exactly once."""
    tdir = tmp_path / "traces"
    tdir.mkdir()
    (tdir / "const3").write_text("".join(f"{t} 3.0\n" for t in range(0, 400)))
    out = tmp_path / "out"
    args = ["emulate", "abr", "--policy", "bba", "--traces", str(tdir), "--chunks", "2", "--out", str(out)]
    proc = _genet(*args, "--repeats", "1", timeout=200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = out / "results.jsonl"
    (line,) = path.read_text().splitlines()
    with open(path, "a") as fh:  # the controller killed while journaling a session
        fh.write(line[:len(line) // 2])
    log0 = out / "sessions" / "bba" / "const3-r0" / "player.jsonl"
    before = log0.stat().st_mtime_ns
    played = []
    for _ in range(2):
        proc = _genet(*args, "--repeats", "2", timeout=200)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        played.append([x.split("]")[0] for x in proc.stdout.splitlines() if x.startswith("[bba ")])
    assert played == [["[bba const3 r1"], []]
    assert log0.stat().st_mtime_ns == before
    rows = [json.loads(x) for x in path.read_text().splitlines()]  # every line a whole record
    assert sorted((r["trace"], r["repeat"], r["status"]) for r in rows) == [("const3", 0, "complete"),
                                                                           ("const3", 1, "complete")]
    assert _leftovers(out) == []
