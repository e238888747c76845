"""`genet run --jobs N`: items of the train, export and simulate stages at once (app/run/engine.py), on a tiny CC
config with no training (three trace sets, three `genet eval cc` items): the same results as one at a time, each
item's own CPU time, a failing item failing its stage while the others finish, and a rerun that redoes only it."""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
from pathlib import Path

CONFIG = """
[run]
name = "jobs"
seed = 5
[traces.a]
gen = "cc"
n = 3
[traces.b]
gen = "cc"
n = 3
seed = 6
[traces.c]
{c}
[cc]
baselines = ["bbr", "cubic"]
[cc.simulate]
traces = ["a", "b", "c"]
"""
GEN_C = 'gen = "cc"\nn = 3\nseed = 7'
SIMULATE = ("cc-a", "cc-b", "cc-c")


def genet_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "run", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)  # a hang guard only


def _rows(path: Path) -> list[tuple]:
    return sorted(tuple(r.items()) for r in csv.DictReader(open(path)))


def _records(out: Path, stage: str) -> dict[str, dict]:
    return {p.name[:-len(".done.json")]: json.loads(p.read_text()) for p in (out / "state" / stage).glob("*.done.json")}


def _children_cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def test_jobs_2_gives_the_results_of_jobs_1_with_each_items_own_cpu_time(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(c=GEN_C))
    ref = genet_run(str(cfg), "--out", str(tmp_path / "one"), cwd=tmp_path)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert "started:" not in ref.stdout  # --jobs 1 (the default): the serial display
    cpu0 = _children_cpu_s()
    r = genet_run(str(cfg), "--out", str(tmp_path / "two"), "--jobs", "2", cwd=tmp_path)
    run_cpu_s = _children_cpu_s() - cpu0  # `genet run` and every process under it
    assert r.returncode == 0, r.stdout + r.stderr
    for name in SIMULATE:
        assert _rows(tmp_path / "two" / "simulate" / name / "results.csv") == \
            _rows(tmp_path / "one" / "simulate" / name / "results.csv"), name
    # two items started before either ended: the stage fanned out (the order of the lines, not a time)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("  simulate ")]
    assert [ln.split(":")[1].strip() for ln in lines[:2]] == ["started", "started"], lines
    # each record's CPU time is its own command's: all there, none counted twice
    rec = _records(tmp_path / "two", "simulate")
    assert sorted(rec) == sorted(SIMULATE)
    assert all(rec[n]["cpu_s"] > 0 for n in SIMULATE)
    assert sum(rec[n]["cpu_s"] for n in SIMULATE) <= run_cpu_s + 0.05
    status = json.loads((tmp_path / "two" / "status.json").read_text())
    assert all(status["items"][f"simulate/{n}"]["status"] == "done" for n in SIMULATE)
    # the config's [run] jobs is not part of what the run computes: with the flag's count in it, nothing reruns
    cfg.write_text(cfg.read_text().replace('seed = 5\n', 'seed = 5\njobs = 2\n', 1))
    again = genet_run(str(cfg), "--out", str(tmp_path / "two"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("up to date (skipped)") == 3 + 3 + 1, again.stdout


def test_a_failing_item_fails_its_stage_the_others_finish_and_the_rerun_redoes_only_it(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.json").write_text("{not json")
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(c=f'path = "{bad}"'))
    out = tmp_path / "out"
    r = genet_run(str(cfg), "--out", str(out), "--jobs", "2", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stage simulate failed" in r.stdout and "cc-c: FAILED" in r.stdout
    assert sorted(_records(out, "simulate")) == ["cc-a", "cc-b"]  # the others finished
    assert (out / "state" / "simulate" / "cc-c.failed.json").is_file()
    before = _records(out, "simulate")
    # the cause fixed: the rerun keeps what finished and runs the failed item
    (bad / "x.json").unlink()
    subprocess.run([sys.executable, "-m", "app.cli", "traces", "gen", "cc", "-n", "2", "--seed", "7", "-o",
                    str(bad)], cwd=tmp_path, check=True, capture_output=True, timeout=300)
    r = genet_run(str(cfg), "--out", str(out), "--jobs", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    after = _records(out, "simulate")
    assert {n: after[n] for n in ("cc-a", "cc-b")} == before and "cc-c" in after
    assert not (out / "state" / "simulate" / "cc-c.failed.json").exists()


def test_jobs_0_is_a_one_line_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(c=GEN_C))
    for bad in ("0", "x", "65"):
        r = genet_run(str(cfg), "--jobs", bad, "--out", str(tmp_path / "o"), cwd=tmp_path)
        assert r.returncode != 0 and r.stderr.count("\n") == 1 and "--jobs" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
