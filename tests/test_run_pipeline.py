"""`genet run` end to end on tiny configs: real `genet` commands as subprocesses, hashing (a rerun redoes only
what changed), resume after SIGKILL (same result as an uninterrupted run), stages this build lacks reported as
such, the progress display, and the report opened in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from app.run import engine, plan, schema
from app.run.progress import Progress

TINY = """
[run]
name = "tiny"
seed = 3

[traces.abr-syn]
gen = "abr"
range = "rl2"
n = 2

[traces.cc-syn]
gen = "cc"
range = "rl3"
n = 2

[abr]
baselines = ["bba", "mpc"]
[abr.policies.udr]
method = "udr"
range = "rl2"
steps = 768
n_envs = 4
steps_per_update = 384
[abr.policies.shipped]
use = "{repo}/models/abr/genet.onnx"
[abr.simulate]
traces = ["abr-syn"]

[cc]
baselines = ["bbr", "cubic"]
[cc.policies.shipped]
use = "{repo}/models/cc/genet.onnx"
[cc.simulate]
traces = ["cc-syn"]
"""


def genet_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=1800)  # a hang guard only (a loaded machine is slow)


def done_records(out: Path) -> dict[str, dict]:
    return {f"{p.parent.name}/{p.name[:-len('.done.json')]}": json.loads(p.read_text())
            for p in (out / "state").rglob("*.done.json")}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    cfg = d / "tiny.toml"
    cfg.write_text(TINY.format(repo=REPO))
    r = genet_run(str(cfg), "--out", str(d / "out"), cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    return cfg, d / "out", r


def test_every_stage_that_can_run_runs_with_its_own_folder(tiny_run):
    cfg, out, r = tiny_run
    for folder in ("traces/abr-syn", "train/abr-udr", "export/abr-udr", "export/abr-shipped", "simulate/abr-abr-syn",
                   "simulate/cc-cc-syn", "report", "logs/train"):
        assert (out / folder).is_dir(), folder
    assert (out / "export" / "abr-udr" / "udr.onnx").stat().st_size > 1000
    assert (out / "train" / "abr-udr" / "learning_curve.csv").is_file()
    rows = list(csv.DictReader(open(out / "simulate" / "abr-abr-syn" / "results.csv")))
    assert {row["policy"] for row in rows} == {"udr", "shipped", "bba", "mpc"} and len(rows) == 8
    # the commands a user would type, recorded per item
    rec = done_records(out)
    assert rec["train/abr-udr"]["commands"][0].startswith("genet train abr --method udr --range rl2 --steps 768")
    assert "time per stage" in r.stdout and "report:" in r.stdout
    # the shipped model was used as is: training skipped
    assert not (out / "train" / "abr-shipped").exists()
    assert (out / "export" / "abr-shipped" / "shipped.onnx").read_bytes() == (REPO / "models/abr/genet.onnx").read_bytes()


def test_rerun_redoes_nothing_and_a_change_redoes_only_what_depends_on_it(tiny_run, tmp_path):
    cfg, out, _ = tiny_run
    before = done_records(out)
    r = genet_run(str(cfg), "--out", str(out), cwd=cfg.parent)
    assert r.returncode == 0, r.stderr
    assert done_records(out) == before
    assert r.stdout.count("up to date (skipped)") == len(before)
    # a changed key of the CC simulation: only the CC simulation (and the report) would rerun
    changed = cfg.parent / "changed.toml"
    changed.write_text(cfg.read_text().replace('traces = ["cc-syn"]', 'traces = ["cc-syn"]\ndelay_ms = 30'))
    dry = genet_run(str(changed), "--out", str(out), "--dry-run", cwd=cfg.parent)
    assert "cc-cc-syn: will run" in dry.stdout and "abr-udr: up to date" in dry.stdout
    assert "abr-abr-syn: up to date" in dry.stdout and "--delay-ms 30" in dry.stdout
    # a trace set added to the CC simulation: its traces and its evaluation run, nothing else is redone
    added = cfg.parent / "added.toml"
    added.write_text(cfg.read_text().replace('traces = ["cc-syn"]', 'traces = ["cc-syn", "cc-more"]')
                     + '[traces.cc-more]\ngen = "cc"\nn = 1\nseed = 9\n')
    r = genet_run(str(added), "--out", str(out), cwd=cfg.parent)
    assert r.returncode == 0, r.stderr
    after = done_records(out)
    redone = {k for k in after if after[k] != before.get(k)}
    assert redone == {"traces/cc-more", "simulate/cc-cc-more", "report/report"}
    assert "cc-more" in (out / "report" / "report.md").read_text()


def test_only_and_from_need_upstream_outputs(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY.format(repo=REPO))
    r = genet_run(str(cfg), "--out", str(tmp_path / "fresh"), "--only", "simulate", cwd=tmp_path)
    assert r.returncode == 1
    assert "needs traces/abr-syn, which has not run" in r.stderr and r.stderr.count("\n") == 1


def test_dry_run_prints_stages_commands_and_time_and_runs_nothing(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY.format(repo=REPO))
    r = genet_run(str(cfg), "--out", str(tmp_path / "o"), "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for needle in ("traces:", "train:", "export:", "simulate:", "emulate:", "deploy:", "report:",
                   "genet train abr --method udr", "genet eval cc --traces", "estimated time:"):
        assert needle in r.stdout, needle
    assert not (tmp_path / "o").exists()


def test_a_stage_this_build_lacks_is_reported_not_faked(tmp_path, monkeypatch):
    text = TINY.format(repo=REPO) + '[cc.emulate]\ntraces = ["cc-syn"]\n[cc.deploy]\nrepetitions = 1\n'
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(text)
    cfg, _ = schema.load(cfg_path)
    monkeypatch.setattr(plan, "registered", lambda *path: path[0] not in ("emulate", "deploy"))
    items = plan.build(cfg, tmp_path / "o")
    (emu,) = items["emulate"]
    (dep,) = items["deploy"]
    assert emu.unavailable == "not available in this build (`genet emulate cc` is not registered)"
    assert "not available in this build" in dep.unavailable
    # the command it would run is the one issue 12 specifies
    assert emu.steps[0][:3] == ["emulate", "cc", "--policy"] and "--traces" in emu.steps[0]
    text_plan = engine.Runner(items, tmp_path / "o").describe(list(schema.STAGES))
    assert "cc-cc-syn: not available in this build" in text_plan


def test_registered_answers_from_the_declared_commands():
    assert plan.registered("traces", "gen") and plan.registered("eval", "cc") and plan.registered("run")
    assert plan.registered("emulate", "cc") and plan.registered("emulate", "abr") and plan.registered("emulate")
    assert not plan.registered("emulate", "no-such-command") and not plan.registered("eval", "abr", "x")


KILL = """
[run]
name = "kill"
seed = 5
[traces.a]
gen = "cc"
n = 6
[traces.b]
gen = "cc"
n = 6
seed = 6
[traces.c]
gen = "cc"
n = 6
seed = 7
[cc]
baselines = ["bbr", "cubic", "const:4"]
[cc.simulate]
traces = ["a", "b", "c"]
"""


def _rows(path: Path) -> list[tuple]:
    return sorted(tuple(r.items()) for r in csv.DictReader(open(path)))


def test_a_killed_run_resumes_to_the_same_result_as_an_uninterrupted_one(tmp_path):
    cfg = tmp_path / "kill.toml"
    cfg.write_text(KILL)
    ref = genet_run(str(cfg), "--out", str(tmp_path / "ref"), cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", str(cfg), "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    killed_in = None
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and proc.poll() is None and killed_in is None:
            for name in ("cc-a", "cc-b", "cc-c"):
                jsonl = out / "simulate" / name / "results.jsonl"
                started = out / "state" / "simulate" / f"{name}.started.json"
                if started.is_file() and jsonl.is_file() and jsonl.read_text().count("\n") >= 1:
                    os.killpg(proc.pid, signal.SIGKILL)  # `genet run` and its `genet eval cc` child
                    killed_in = name
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_in is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed_in, "the run ended before it could be killed in the middle of an evaluation"
    assert not (out / "state" / "simulate" / f"{killed_in}.done.json").exists()
    partial = (out / "simulate" / killed_in / "results.jsonl").read_text().count("\n")
    assert 1 <= partial < 18
    r = genet_run(str(cfg), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = done_records(out)
    assert rec[f"simulate/{killed_in}"]["resumed"] is True
    log = (out / "logs" / "simulate" / f"{killed_in}.log").read_text()
    assert "resuming simulate/" in log
    for name in ("cc-a", "cc-b", "cc-c"):
        assert _rows(out / "simulate" / name / "results.csv") == _rows(tmp_path / "ref" / "simulate" / name /
                                                                     "results.csv"), name
    # the report's tables are the same too (provenance and timings aside)
    head = lambda p: p.read_text().split("## Stages")[0].replace(str(p.parents[1]), "RUN")  # noqa: E731
    assert head(out / "report" / "report.md") == head(tmp_path / "ref" / "report" / "report.md")
    assert rec["traces/a"] == json.loads((out / "state" / "traces" / "a.done.json").read_text())


def test_progress_is_one_status_line_on_a_terminal_and_plain_lines_otherwise():
    plain = io.StringIO()
    p = Progress(10.0, plain, tty=False)
    p.stage_start("simulate", "4/7", 2)
    p.item_start("cc-a", "1/2", 4.0, "genet eval cc ...")
    p.item_output("some output\n")
    p.item_end(4.0, "done", 8.0)
    text = plain.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert "== stage 4/7 simulate" in text and "cc-a: genet eval cc ... (est 0:04, ETA 0:10)" in text
    assert "cc-a: done in 0:08" in text
    # the finished item took twice its estimate: the remaining estimate grows (a 30-s prior damps one item)
    assert p.eta_s() == pytest.approx(6.0 * (8.0 + 30.0) / (4.0 + 30.0))
    tty = io.StringIO()
    p = Progress(10.0, tty, tty=True)
    p.stage_start("simulate", "4/7", 1)
    p.item_start("cc-a", "1/1", 4.0, "genet eval cc ...")
    p._last_draw = 0
    p.item_output("trace 3/6")
    assert "\r\x1b[K[4/7 simulate] 1/1 cc-a" in tty.getvalue() and "ETA" in tty.getvalue()
    assert "trace 3/6" in tty.getvalue()


def test_report_tables_and_figures(tiny_run):
    _, out, _ = tiny_run
    md = (out / "report" / "report.md").read_text()
    headline = md.split("### ABR")[1].split("###")[0]
    for pol in ("udr", "shipped", "bba", "mpc"):
        assert f"| {pol} (" in headline  # the name, then what it is (tests/test_run_report.py: the labels)
    # the shipped model and the baselines first, then the policy this run trained, with its budget
    assert headline.index("| shipped (shipped model") < headline.index("| bba (rule-based baseline) |") \
        < headline.index("| mpc (") < headline.index("| udr (trained here, 768 steps) |")
    assert "simulation (abr-syn)" in headline and "Emulation: not run" in headline
    assert "Table 6 form" in md and "Table 7 form" in md and "learning curves" in md
    html = (out / "report" / "index.html").read_text()
    assert "<img" in html and 'src="http' not in html and "src='http" not in html  # self-contained
    assert html.count("data:image/png;base64,") == html.count("<img")
    assert "genet train abr --method udr" in html and "Provenance" in html


def test_report_in_headless_chromium(tiny_run):
    pytest.importorskip("selenium", reason="selenium is in the test extras")
    if not (shutil.which("chromium") and Path("/usr/bin/chromedriver").exists()):
        pytest.skip("chromium / chromium-driver not installed (scripts/provision.sh installs them when root)")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    _, out, _ = tiny_run
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get((out / "report" / "index.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        assert len(images) >= 4
        broken = [alt for complete, width, alt in images if not (complete and width > 0)]
        assert not broken, broken
        for uc, policies in (("abr", {"udr", "shipped", "bba", "mpc"}), ("cc", {"shipped", "bbr", "cubic"})):
            cells = driver.execute_script(
                f"return Array.from(document.querySelectorAll('#headline-{uc} tbody tr'))"
                ".map(r => r.dataset.policy)")
            assert set(cells) == policies, (uc, cells)
        shot = out / "report" / "screenshot.png"
        driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10000
    finally:
        driver.quit()


def test_deploy_stage_runs_the_deploy_commands_with_a_campaign_deploy_accepts(tmp_path):
    text = TINY.format(repo=REPO) + ('[cc.deploy]\nschemes = ["shipped", "bbr"]\nrepetitions = 2\nduration_s = 7\n'
                                     'paths = ["p1"]\n')
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(text)
    cfg, _ = schema.load(cfg_path)
    items = plan.build(cfg, tmp_path / "o")
    (item,) = items["deploy"]
    export = next(i for i in items["export"] if i.name == "cc-shipped")
    export.steps[0](export)  # the campaign names the exported model, which must exist
    commands = [s for s in item.steps + item.cleanup if isinstance(s, list)]
    assert [c[:3] for c in commands] == [["deploy", "testbed", "up"], ["deploy", "push", str(tmp_path / "o/deploy/testbed-cc/inventory.toml")],
                                         ["deploy", "run", str(tmp_path / "o/deploy/cc/campaign.toml")],
                                         ["deploy", "report", str(tmp_path / "o/deploy/cc/campaign")],
                                         ["deploy", "testbed", "down"]]
    assert "--models" in commands[1] and str(tmp_path / "o/export/cc-shipped") in commands[1]
    writer = next(s for s in item.steps if callable(s) and "campaign" in s.describe)
    writer(item)
    campaign = tmp_path / "o" / "deploy" / "cc" / "campaign.toml"
    config = pytest.importorskip("deploy.config", reason="deploy/config.py (issue 15) is not in this build")
    c = config.load_campaign(campaign)
    assert c.use_case == "cc" and c.repetitions == 2 and c.duration_s == 7 and c.paths == ("p1",)
    assert [s.name for s in c.schemes] == [str(tmp_path / "o/export/cc-shipped/shipped.onnx"), "bbr"]


EMU_KILL = """
[run]
name = "emu-kill"
seed = 2
[traces.one]
gen = "cc"
range = "rl1"
n = 1
[cc]
baselines = ["const:2", "cubic"]
[cc.emulate]
traces = ["one"]
duration_s = 3
jobs = 1
"""


def test_a_run_killed_in_the_middle_of_emulate_resumes_without_redoing_finished_runs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("emulation needs root (network namespaces, TUN devices)")
    if not plan.registered("emulate", "cc"):
        pytest.skip("`genet emulate cc` (issue 12) is not in this build")
    if not shutil.which("iperf3"):
        pytest.skip("iperf3 is not installed (scripts/provision.sh installs it)")
    cfg = tmp_path / "emu.toml"
    cfg.write_text(EMU_KILL)
    out = tmp_path / "out"
    journal = out / "emulate" / "cc-one" / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", str(cfg), "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and journal.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed in the middle of emulate"
        os.killpg(proc.pid, signal.SIGTERM)  # as a user's `kill`; the children get it too
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (out / "state" / "emulate" / "cc-one.done.json").exists()
    before = journal.read_text().splitlines()
    assert len(before) == 1
    r = genet_run(str(cfg), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert journal.read_text().splitlines()[:len(before)] == before  # finished runs kept, not redone
    assert done_records(out)["emulate/cc-one"]["resumed"] is True
    rows = list(csv.DictReader(open(out / "emulate" / "cc-one" / "results.csv")))
    assert sorted(r_["policy"] for r_ in rows) == ["const:2", "cubic"]
    assert "| const:2 (rule-based baseline) |" in (out / "report" / "report.md").read_text().split("## Stages")[0]


TINY_LB = """
[run]
name = "tiny-lb"
seed = 2

[lb]
baselines = ["least_work", "round_robin"]
[lb.simulate]
configs = ["default", "rl1"]
n = 3
[lb.emulate]
n = 1
jobs = 12
job_interval_ms = 20
job_size_max_work = 150
backend = "{backend}"
"""


def test_a_tiny_lb_run_simulates_emulates_and_reports_the_lb_table(tmp_path):
    """`[lb]` end to end: `genet eval lb` on two episode sources, `genet emulate lb` (real balancer and workers: over
    emulated links as root, on loopback otherwise), and the report's LB table beside the headline."""
    backend = "netns" if os.geteuid() == 0 else "loopback"
    cfg = tmp_path / "lb.toml"
    cfg.write_text(TINY_LB.format(backend=backend))
    out = tmp_path / "out"
    # (the checkout first on the path: an editable install made before balancer/ existed does not map it)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-m", "app.cli", "run", str(cfg), "--out", str(out)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    from genet.lb.metrics import COLUMNS
    for name in ("simulate/lb-default", "simulate/lb-rl1", "emulate/lb-generated"):
        with open(out / name / "results.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert {r["policy"] for r in rows} == {"least_work", "round_robin"}, name
        assert len(rows) == (2 if name.startswith("emulate") else 6), name
    emu = list(csv.DictReader(open(out / "emulate" / "lb-generated" / "results.csv", newline="")))
    assert all(r["jobs_finished"] == "12" and r["backend"] == backend and r["sim_mean_completion_time_s"] for r in emu)
    md = (out / "report" / "report.md").read_text()
    headline = md.split("### LB")[1].split("###")[0]
    assert "| least_work (rule-based baseline) |" in headline and "| round_robin (rule-based baseline) |" in headline
    assert "simulation (default, rl1)" in headline and "emulation (generated)" in headline
    assert "LB table form — LB, simulation: default" in md and "LB table form — LB, emulation: generated" in md
    for c in COLUMNS:
        if c.table:
            assert f"[{c.name}]" in md, c.name
    assert "genet eval lb" in (out / "report" / "index.html").read_text()


TRAIN_LB = """
[run]
name = "train-lb"
seed = 4

[lb]
baselines = ["least_work"]
[lb.policies.mine]               # trained by the run: 16 PPO updates, a checkpoint every 2
method = "udr"
range = "rl1"
steps = 8192
n_envs = 4
steps_per_update = 512
extra_args = ["--checkpoint-every", "2"]
[lb.policies.shipped]
use = "{repo}/models/lb/genet.onnx"
[lb.simulate]
n = 3
[lb.emulate]
enabled = false
"""


def test_an_lb_policy_is_trained_exported_simulated_and_reported_and_a_killed_training_resumes(tmp_path):
    """`[lb.policies.NAME] method = "udr"`: `genet run` trains it (`genet train lb`), exports it (`genet export`),
    evaluates it beside the shipped model and the baseline (`genet eval lb`) and reports it as "trained here", as
    ABR and CC policies. Killed in the middle of the training, the rerun continues it (`genet train lb --resume`)
    to the full budget; a third run redoes nothing."""
    from app.run.report import format_steps
    cfg = tmp_path / "lb.toml"
    cfg.write_text(TRAIN_LB.format(repo=REPO))
    out = tmp_path / "out"
    latest = out / "train" / "lb-mine" / "checkpoints" / "latest.pt"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "run", str(cfg), "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    killed = False
    deadline = time.monotonic() + 600  # a hang guard only
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if latest.is_file():
                os.killpg(proc.pid, signal.SIGKILL)  # `genet run` and its `genet train lb` child
                killed = True
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed, "the run ended before its training wrote a checkpoint"
    assert not (out / "state" / "train" / "lb-mine.done.json").exists()
    r = genet_run(str(cfg), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = done_records(out)
    assert rec["train/lb-mine"]["resumed"] is True
    assert rec["train/lb-mine"]["commands"][0].startswith("genet train lb --method udr --range rl1 --steps 8192")
    assert rec["train/lb-mine"]["commands"][0].endswith(" --resume")
    assert "resuming" in (out / "logs" / "train" / "lb-mine.log").read_text()
    run = json.loads((out / "train" / "lb-mine" / "run-metadata.json").read_text())
    assert run["extra"]["env_steps"] == 8192 and run["extra"]["resume"] is True, run
    assert rec["export/lb-mine"]["commands"][0].startswith("genet export ")
    assert (out / "export" / "lb-mine" / "mine.onnx").stat().st_size > 1000
    assert not (out / "train" / "lb-shipped").exists()  # `use`: training skipped
    rows = list(csv.DictReader(open(out / "simulate" / "lb-default" / "results.csv", newline="")))
    assert sorted(row["policy"] for row in rows) == ["least_work"] * 3 + ["mine"] * 3 + ["shipped"] * 3
    by = {}
    for row in rows:
        by.setdefault(row["policy"], []).append(float(row["mean_completion_time_s"]))
    assert by["mine"] != by["shipped"]  # the trained model, not a copy of the shipped one
    md = (out / "report" / "report.md").read_text()
    trained = f"| mine (trained here, {format_steps(8192)} steps) |"
    headline = md.split("### LB")[1].split("###")[0]
    assert trained in headline and "| shipped (shipped model models/lb/genet.onnx" in headline
    assert trained in md.split("LB table form — LB, simulation: default")[1]
    training = md.split("### LB: training")[1].split("###")[0]
    assert "| mine | udr | rl1 | 4 |" in training and "learning-lb.png" in training
    # a rerun redoes nothing
    before = done_records(out)
    r = genet_run(str(cfg), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert done_records(out) == before and r.stdout.count("up to date (skipped)") == len(before)


BC_RUN = """
[run]
name = "bc"
seed = 5

[traces.syn]
gen = "abr"
range = "rl2"
n = 2

[abr]
baselines = ["bba"]
[abr.policies.student]
agent = "bc"
teacher = "bba"
method = "udr"
range = "rl2"
steps = 768
n_envs = 4
steps_per_update = 384
[abr.simulate]
traces = ["syn"]
"""


def test_an_abr_policy_of_another_agent_is_trained_exported_simulated_and_labelled(tmp_path):
    """`agent = "bc"`, `teacher = "bba"`: `genet run` trains the student with `genet train abr --agent bc --teacher
    bba` (its run folder says so), exports and evaluates it beside BBA, and the report labels it with its agent. A
    rerun redoes nothing; another agent would retrain it (the dry run says so)."""
    cfg = tmp_path / "bc.toml"
    cfg.write_text(BC_RUN)
    out = tmp_path / "out"
    r = genet_run(str(cfg), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = done_records(out)
    assert rec["train/abr-student"]["commands"][0].startswith(
        "genet train abr --agent bc --teacher bba --method udr --range rl2 --steps 768")
    run = json.loads((out / "train" / "abr-student" / "run.json").read_text())
    assert run["agent"] == "bc" and run["teacher"] == "bba", run
    assert (out / "export" / "abr-student" / "student.onnx").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "simulate" / "abr-syn" / "results.csv", newline="")))
    assert sorted(row["policy"] for row in rows) == ["bba", "bba", "student", "student"]
    md = (out / "report" / "report.md").read_text()
    assert "| student (trained here, bc from bba, 768 steps) |" in md.split("### ABR")[1].split("###")[0]
    again = genet_run(str(cfg), "--out", str(out), "--dry-run", cwd=tmp_path)
    assert again.returncode == 0 and "abr-student: up to date" in again.stdout, again.stdout
    dagger = tmp_path / "dagger.toml"
    dagger.write_text(BC_RUN.replace('agent = "bc"', 'agent = "dagger"'))
    dry = genet_run(str(dagger), "--out", str(out), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "abr-student: will run" in dry.stdout and "genet train abr --agent dagger --teacher bba" in dry.stdout
