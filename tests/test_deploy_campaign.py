"""`genet deploy run / push / report` on the local SSH testbed (real sshd, real emulated paths, real iperf3):
rounds and resume, retry limit, hanging runs, a host whose sshd is killed mid-campaign, Ctrl-C and a killed
controller (nothing of ours left on the hosts), push idempotency, sender and player schemes, Tables 6/7."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root]

from conftest import require_ssh_testbed  # noqa: E402

require_ssh_testbed()

from deploy import testbed  # noqa: E402
from deploy.campaign import Journal, plan_runs, run_campaign  # noqa: E402
from deploy.config import load_campaign, load_inventory  # noqa: E402
from deploy.report import write_report  # noqa: E402
from deploy.ssh import Session  # noqa: E402
from foundation.stats import mean_ci95  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    out = tmp_path_factory.mktemp("testbed")
    paths = [testbed.TestbedPath("p1", "h1", "h2", 12.0, 12.0, 5.0, description="12 Mbit/s, 5 ms"),
             testbed.TestbedPath("p2", "h3", "h1", 12.0, 12.0, 5.0, description="12 Mbit/s, 5 ms"),
             # 0.1 Mbit/s with a 100-packet queue: an iperf3 run cannot end within seconds (a hanging run)
             testbed.TestbedPath("slow", "h2", "h3", 0.1, 0.1, 5.0, uplink_queue_args="packets=100",
                                 description="0.1 Mbit/s")]
    inv_file = testbed.up(out, 3, paths)
    try:
        yield out, load_inventory(inv_file)
    finally:
        for sess in _SESSIONS.values():
            sess.close()
        _SESSIONS.clear()
        testbed.down(out)


def campaign(tmp_path: Path, inv, text: str, name: str = "c"):
    f = tmp_path / f"{name}.toml"
    f.write_text(f'name = "{name}"\n' + text)
    return load_campaign(f, inv)


_SESSIONS: dict = {}


def leftovers(inv, hosts=None) -> dict:
    """Processes on the hosts whose working directory is in the host's work directory (ours)."""
    out = {}
    for name in hosts or inv.hosts:
        s = _SESSIONS.get(name)
        if s is None or s.host != inv.hosts[name]:
            s = _SESSIONS[name] = Session(inv.hosts[name])
        procs = s.connect().our_processes()
        if procs:
            out[name] = procs
    return out


def test_rounds_are_shuffled_afresh_and_replanned_identically(bed, tmp_path):
    _, inv = bed
    c = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic", "bbr", "reno"]\nrepetitions = 6\n'
                                'paths = ["p1", "p2"]\nduration_s = 3\nseed = 7\n')
    plan = plan_runs(c)
    assert len(plan) == 36 and plan == plan_runs(c)
    rounds = [[(p.path, p.scheme.name) for p in plan if p.round == r] for r in range(1, 7)]
    for r in rounds:
        assert sorted(r) == sorted((p, s) for p in ("p1", "p2") for s in ("cubic", "bbr", "reno"))
    assert len({tuple(r) for r in rounds}) > 1  # not one order repeated


def test_campaign_report_resume_and_no_leftovers(bed, tmp_path):
    _, inv = bed
    c = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic", "bbr"]\nrepetitions = 2\npaths = ["p1"]\n'
                                'duration_s = 3\n')
    out = tmp_path / "run"
    s = run_campaign(c, inv, out)
    assert (s.planned, s.ok, s.failed) == (4, 4, 0) and s.complete
    recs = Journal(out / "journal.jsonl").records
    assert [r["round"] for r in recs] == [1, 1, 2, 2]
    for r in recs:
        m = r["metrics"]
        assert 8.0 < m["throughput_mbps"] < 12.5, m  # a 12 Mbit/s path
        assert m["p90_rtt_ms"] >= 10.0 and 0 <= m["loss_rate"] < 0.2
        assert m["congestion_control"] == r["scheme"]
        for h in r["hosts"].values():  # the same kernel clock: the estimate is within its error bound
            assert abs(h["clock_offset_ms"]) <= h["clock_rtt_ms"] / 2 + 0.05
            assert h["host_key"].startswith("SHA256:")
        assert (out / r["dir"] / "client.out").is_file()
        assert r["overhead_s"] == pytest.approx(r["wall_s"] - 3.0, abs=1e-3)
    meta = json.loads((out / "run-metadata.json").read_text())
    assert meta["status"] == 0 and meta["extra"]["campaign"] == "c"
    assert leftovers(inv) == {}
    # resume: nothing to redo
    again = run_campaign(c, inv, out)
    assert (again.already_done, again.ok, again.failed) == (4, 0, 0)
    assert len(Journal(out / "journal.jsonl").records) == 4
    rep = write_report(out)
    rows = {r["scheme"]: r for r in rep.rows}
    assert rows["cubic"]["runs"] == 2
    vals = [r["metrics"]["throughput_mbps"] for r in recs if r["scheme"] == "cubic"]
    m, h, n = mean_ci95(vals)
    assert rows["cubic"]["throughput_mbps"] == pytest.approx(m) and rows["cubic"]["throughput_mbps_ci95"] == pytest.approx(h)
    for f in ("report.csv", "report.json", "report.txt", "figure16.png"):
        assert (out / f).stat().st_size > 0
    assert "Table 7" in rep.text and "±" in rep.text


def test_ci95_uses_student_t():
    m, h, n = mean_ci95([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and h == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-4)
    assert mean_ci95([5.0])[1] != mean_ci95([5.0])[1]  # NaN: no interval from one run


def test_failed_runs_retried_up_to_the_limit(bed, tmp_path):
    _, inv = bed
    # vegas is not allowed on the hosts (tcp_allowed_congestion_control): its runs fail before anything starts
    allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read_text().split()
    bad = next(a for a in ("vegas", "westwood", "htcp", "illinois") if a not in allowed)
    c = campaign(tmp_path, inv, f'use_case = "cc"\nschemes = ["{bad}"]\nrepetitions = 1\npaths = ["p1"]\n'
                                f'duration_s = 3\nretry_limit = 1\n')
    out = tmp_path / "run"
    s1 = run_campaign(c, inv, out)
    assert (s1.ok, s1.failed) == (0, 1) and not s1.complete
    rec = [r for r in Journal(out / "journal.jsonl").records if r["status"] == "failed"][0]
    assert "not allowed" in rec["reason"] and bad in rec["reason"]
    s2 = run_campaign(c, inv, out)  # the one retry
    assert (s2.already_done, s2.ok, s2.failed) == (0, 0, 1) and s2.exhausted == [rec["run_id"]]
    s3 = run_campaign(c, inv, out)  # over the limit: not run again
    assert (s3.ok, s3.failed, s3.exhausted) == (0, 0, [rec["run_id"]])
    assert "gave up after the retry limit" in s3.describe()


def test_hanging_run_ends_at_its_timeout(bed, tmp_path):
    _, inv = bed
    c = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic"]\nrepetitions = 1\npaths = ["slow"]\n'
                                'duration_s = 2\ntimeout_s = 4\n')
    t0 = time.monotonic()
    s = run_campaign(c, inv, tmp_path / "run")
    assert s.failed == 1 and time.monotonic() - t0 < 30
    rec = Journal(tmp_path / "run" / "journal.jsonl").records[0]
    assert "did not finish within the timeout" in rec["reason"]
    assert leftovers(inv) == {}


def _genet(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def _wait_records(journal: Path, n: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{journal}: fewer than {n} records after {timeout_s} s")


def _wait_remote_processes(inv, present: bool, timeout_s: float = 20) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        left = leftovers(inv)
        if bool(left) == present or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def test_interrupted_campaign_leaves_nothing_and_resumes(bed, tmp_path):
    """Ctrl-C stops the remote processes at once; a controller killed outright leaves them to the remote
    watchdog or the next run, which stops them first; the reruns finish the campaign."""
    out_dir, inv = bed
    (tmp_path / "c.toml").write_text('name = "ci"\nuse_case = "cc"\nschemes = ["cubic"]\nrepetitions = 1\n'
                                     'paths = ["p1"]\nduration_s = 8\n')  # long enough to be seen under way under load
    out = tmp_path / "run"
    argv = _genet("deploy", "run", str(tmp_path / "c.toml"), "--inventory", str(out_dir / "inventory.toml"),
                  "--out", str(out))
    for sig in (signal.SIGINT, signal.SIGKILL):
        p = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_remote_processes(inv, present=True, timeout_s=60)  # a run is under way on the hosts
            p.send_signal(sig)
            text = p.communicate(timeout=60)[0]
        finally:
            if p.poll() is None:
                p.kill()
        if sig == signal.SIGINT:
            assert p.returncode == 130, text
            assert leftovers(inv) == {}  # stopped by PID on Ctrl-C, before the command exits
            recs = Journal(out / "journal.jsonl").records
            assert recs and recs[-1]["status"] == "interrupted"
        else:
            assert p.returncode == -signal.SIGKILL
            assert leftovers(inv) != {}  # nobody stopped them (the remote timeout or the next run will)
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    recs = Journal(out / "journal.jsonl").records
    assert [r["run_id"] for r in recs if r["status"] == "ok"] == ["r01-p1-cubic"]
    assert leftovers(inv) == {}


@pytest.fixture(scope="module")
def pushed(bed, tmp_path_factory):
    """genet pushed to h1 and h2 with a wheelhouse (hosts have no index of their own)."""
    out_dir, inv = bed
    from deploy.push import build_wheel, push
    tmp = tmp_path_factory.mktemp("push")
    wheel = build_wheel(tmp / "dist")
    wh = tmp / "wheelhouse"
    dl = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(wh),
                         str(wheel)], capture_output=True, text=True, timeout=600)
    if dl.returncode != 0:
        pytest.skip(f"cannot gather the runtime wheels for a wheelhouse: {dl.stderr.strip()[-300:]}")
    for w in wh.glob("genet_testbed-*"):
        w.unlink()
    first = push(inv, wheelhouse=str(wh), wheel=str(wheel), host_names=["h1", "h2"])
    return inv, wheel, wh, first


def test_push_installs_runtime_and_is_idempotent(pushed):
    inv, wheel, wh, first = pushed
    from deploy.push import push
    for r in first:
        assert r.ok, r.error
        assert r.installed and r.uploaded and r.venv_created
    second = push(inv, wheelhouse=str(wh), wheel=str(wheel), host_names=["h1", "h2"])
    for r in second:
        assert r.ok and r.uploaded == [] and r.installed is None, r.describe()
        assert "nothing transferred" in r.describe()
    with Session(inv.hosts["h1"]) as s:
        res = s.run([s.remote_path("venv", "bin", "genet"), "sender", "--help"])
        assert "sender" in res.stdout
        mods = s.run([s.remote_path("venv", "bin", "python"), "-c",
                      "import importlib.util as u; print([m for m in ('torch', 'numba', 'paramiko', 'matplotlib') "
                      "if u.find_spec(m)])"]).stdout.strip()
        assert mods == "[]"  # a runtime install: no extras


def test_sender_and_player_schemes(pushed, tmp_path):
    inv, *_ = pushed
    have_sender = (REPO / "sender" / "cli.py").exists()
    have_player = (REPO / "player" / "cli.py").exists() or (REPO / "player" / "server.py").exists()
    if not have_sender or not have_player:
        pytest.skip("genet sender / genet player are not in this tree yet")
    model = REPO / "models" / "cc" / "genet.onnx"
    c = campaign(tmp_path, inv, f'use_case = "cc"\nschemes = ["{model}"]\nrepetitions = 1\n'
                                f'paths = ["p1"]\nduration_s = 3\nport = 5301\n', "cc")
    s = run_campaign(c, inv, tmp_path / "cc")
    recs = {r["scheme"]: r for r in Journal(tmp_path / "cc" / "journal.jsonl").records}
    assert s.ok == 1, {k: r.get("reason") for k, r in recs.items()}
    m = recs[str(model)]["metrics"]
    assert m["metrics_source"] == "genet sender summary" and 0 < m["throughput_mbps"] < 12.5
    a = campaign(tmp_path, inv, 'use_case = "abr"\nschemes = ["mpc"]\nrepetitions = 1\npaths = ["p1"]\n'
                                'chunks = 2\nduration_s = 20\nport = 8333\n', "abr")
    s = run_campaign(a, inv, tmp_path / "abr")
    recs = {r["scheme"]: r for r in Journal(tmp_path / "abr" / "journal.jsonl").records}
    assert s.ok == 1, {k: r.get("reason") for k, r in recs.items()}
    for r in recs.values():
        assert r["metrics"]["bitrate_mbps"] > 0 and "qoe" in r["metrics"]
    rep = write_report(tmp_path / "abr")
    assert "Table 6" in rep.text
    assert leftovers(inv, ["h1", "h2"]) == {}


def test_killed_sshd_fails_its_runs_and_the_campaign_goes_on(bed, tmp_path):
    """Last in the module: h3 loses its sshd for good (p2's server)."""
    out_dir, inv = bed
    c = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic"]\nrepetitions = 2\npaths = ["p1", "p2"]\n'
                                'duration_s = 3\n')
    out = tmp_path / "run"
    st = testbed.status(out_dir)
    ns = f"gtd{st['index']}-h3"
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("s", run_campaign(c, inv, out)))
    th.start()
    _wait_records(out / "journal.jsonl", 1)
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:  # sshd and every session of it: the host is gone
        try:
            if "sshd" in Path(f"/proc/{pid}/comm").read_text():
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    th.join(timeout=120)
    assert not th.is_alive()
    recs = Journal(out / "journal.jsonl").records
    p1 = [r for r in recs if r["path"] == "p1"]
    p2_failed = [r for r in recs if r["path"] == "p2" and r["status"] == "failed"]
    assert len(p1) == 2 and all(r["status"] == "ok" for r in p1), [r.get("reason") for r in p1]
    assert p2_failed and all("h3" in r["reason"] for r in p2_failed), [r.get("reason") for r in p2_failed]
    assert not result["s"].complete
    assert leftovers(inv, ["h1", "h2"]) == {}


def test_a_torn_journal_line_then_two_reruns_keep_every_run_once(bed, tmp_path):
    """A controller killed while journaling a run (a torn last line): the first rerun redoes that run only,
    into a new attempt folder (the unrecorded attempt's files are kept), and journals it as a whole line (not
    glued onto the fragment, where it was lost and redone on every rerun); the second redoes nothing."""
    _, inv = bed
    c = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic", "bbr"]\nrepetitions = 1\npaths = ["p1"]\n'
                                'duration_s = 2\n')
    out = tmp_path / "run"
    s = run_campaign(c, inv, out)
    assert (s.ok, s.failed) == (2, 0)
    path = out / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lost = json.loads(lines[1])
    path.write_text(lines[0] + lines[1][:len(lines[1]) // 2])
    first = run_campaign(c, inv, out)
    assert (first.already_done, first.ok, first.failed) == (1, 1, 0)
    second = run_campaign(c, inv, out)
    assert (second.already_done, second.ok, second.failed) == (2, 0, 0)
    recs = [json.loads(x) for x in path.read_text().splitlines()]  # every line a whole record
    assert sorted(r["run_id"] for r in recs) == sorted({r["run_id"] for r in recs}) and len(recs) == 2
    (redo,) = [r for r in recs if r["run_id"] == lost["run_id"]]
    assert redo["attempt"] == 2 and redo["dir"] != lost["dir"] and (out / lost["dir"] / "client.out").is_file()
    assert leftovers(inv, ["h1", "h2"]) == {}  # path p1's hosts (an earlier test may have killed h3's sshd)


def test_disjoint_paths_run_at_once_each_path_back_to_back_and_every_record_kept(tmp_path):
    """``parallel = "disjoint-paths"`` on a testbed of 4 hosts: pa (h1 -> h2) and pc (h2 -> h1) share hosts, pb
    (h3 -> h4) shares none: two lanes run at once; within a lane runs never overlap and keep the plan's order."""
    out_bed = tmp_path / "bed"
    paths = [testbed.TestbedPath("pa", "h1", "h2", 12.0, 12.0, 5.0), testbed.TestbedPath("pb", "h3", "h4", 12.0, 12.0,
                                                                                          5.0),
             testbed.TestbedPath("pc", "h2", "h1", 12.0, 12.0, 5.0)]
    inv = load_inventory(testbed.up(out_bed, 4, paths))
    try:
        c = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic"]\nrepetitions = 2\nduration_s = 3\n'
                                    'parallel = "disjoint-paths"\n', name="par")
        out = tmp_path / "run"
        s = run_campaign(c, inv, out)
        assert (s.planned, s.ok, s.failed) == (6, 6, 0) and s.complete
        recs = Journal(out / "journal.jsonl").records
        assert sorted(r["run_id"] for r in recs) == sorted(p.run_id for p in plan_runs(c))

        def span(r):  # (start, end) as the records give them (whole seconds)
            from datetime import datetime
            return tuple(datetime.fromisoformat(r[k].replace("Z", "+00:00")).timestamp()
                         for k in ("started_utc", "finished_utc"))

        lane_a = [r for r in recs if r["path"] in ("pa", "pc")]
        lane_b = [r for r in recs if r["path"] == "pb"]
        planned = [p.run_id for p in plan_runs(c)]
        for lane in (lane_a, lane_b):
            ids = [r["run_id"] for r in lane]
            assert ids == [i for i in planned if i in ids]  # the plan's order within a lane
            spans = sorted(span(r) for r in lane)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # back to back, never at once
        overlap = [(a, b) for a in map(span, lane_a) for b in map(span, lane_b) if a[0] < b[1] and b[0] < a[1]]
        assert overlap, "the two lanes never ran at once"
        for r in recs:  # no interference: every run got its path's 12 Mbit/s
            assert 9.0 < r["metrics"]["throughput_mbps"] < 12.5, r["metrics"]["throughput_mbps"]
        # every host was opened (session, probe, clock offset) before any lane sent: no run, the lanes' first
        # included, spent time connecting or measuring a clock (back to back a first run takes ~1-2 s for it)
        assert all(r["phases_s"]["connect"] + r["phases_s"]["clock"] < 0.2 for r in recs), \
            [r["phases_s"] for r in recs]
        again = run_campaign(c, inv, out)
        assert (again.already_done, again.ok) == (6, 0)
        # max_lanes = 1: the same lanes, one run at a time (a local testbed's links share this machine's cores)
        one = campaign(tmp_path, inv, 'use_case = "cc"\nschemes = ["cubic"]\nrepetitions = 1\nduration_s = 2\n'
                                      'parallel = "disjoint-paths"\nmax_lanes = 1\n', name="one")
        s1 = run_campaign(one, inv, tmp_path / "run1")
        assert (s1.ok, s1.failed, s1.lanes) == (3, 0, 1)
        spans = sorted(span(r) for r in Journal(tmp_path / "run1" / "journal.jsonl").records)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # never two at once
    finally:
        testbed.down(out_bed)
