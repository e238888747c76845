"""``genet eval lb`` end to end: results.csv with the use case's columns, summary.txt, a killed run resumed, the
episode sources (a config range, workload files), and one-line errors."""

from __future__ import annotations

import csv
import json

import pytest

from app.cli import main
from foundation.usecase import use_case
from genet.lb.evaluate import episodes, evaluate_lb
from traces.workload import Workload, write_workload


def rows_of(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_eval_lb_writes_rows_summary_and_resumes_a_killed_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["eval", "lb", "--policy", "least_work,random", "--policy", "sed", "-n", "5", "--seed", "3",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    rows = rows_of(out / "results.csv")
    cols = list(rows[0])
    assert cols[:4] == ["policy", "workload", "seed", "source"]
    assert cols[4:4 + len(use_case("lb").column_names)] == list(use_case("lb").column_names)
    assert [r["policy"] for r in rows] == ["least_work"] * 5 + ["random"] * 5 + ["sed"] * 5
    assert [r["workload"] for r in rows[:5]] == [f"genet-{k:04d}" for k in range(5)]
    for r in rows:  # every job of a test episode runs to completion; the return is minus their total sojourn
        assert r["jobs_finished"] == r["jobs"] == "2000"
        assert float(r["reward"]) == pytest.approx(-float(r["mean_completion_time_s"]) * 1000 * 2000)
        assert len(r["worker_utilisation"].split()) == 3
    by = {p: [float(r["reward"]) for r in rows if r["policy"] == p] for p in ("least_work", "random", "sed")}
    assert sum(by["sed"]) > sum(by["least_work"]) > sum(by["random"])
    summary = (out / "summary.txt").read_text()
    assert "least_work" in summary and "reward/1e9" in summary
    first = (out / "results.csv").read_text()

    # a run killed after its first policy's batch, mid-write of the second: whole lines survive, the torn one not
    journal = out / "results.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    assert len(lines) == 15
    journal.write_text("".join(lines[:5]) + lines[5][:40])
    (out / "results.csv").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "5 rows reused" in printed and "10 run now" in printed
    assert (out / "results.csv").read_text() == first
    # a complete run is all reused
    assert main(argv) == 0
    assert "15 rows reused" in capsys.readouterr().out
    assert len(journal.read_text().splitlines()) == 15


def test_chunked_resume_gives_an_uninterrupted_runs_rows(tmp_path):
    """Batches of 2 episodes: a run that lost its later batches redoes just those, with the same random choices."""
    eps = episodes("genet", 5, seed=1)
    whole = evaluate_lb(["random", "power_of_two"], eps, tmp_path / "a", seed=1, batch=2)
    journal = tmp_path / "a" / "results.jsonl"
    keep = journal.read_text().splitlines(keepends=True)[:4]  # random's first two batches (one write each)
    journal.write_text("".join(keep))
    again = evaluate_lb(["random", "power_of_two"], eps, tmp_path / "a", seed=1, batch=2)
    assert again.reused == 4 and again.ran == 6
    strip = lambda rs: [json.dumps(r, sort_keys=True) for r in rs]  # noqa: E731
    assert strip(again.rows) == strip(whole.rows)


def test_config_ranges_and_workload_files(tmp_path, capsys):
    eps = episodes("genet", 3, seed=2, config="rl2")
    assert len({e.setting.service_rates for e in eps}) == 3 and all(e.source == "genet:rl2" for e in eps)
    assert episodes("genet", 3, seed=2, config="rl2")[1].workload.job_sizes_work.tolist() == \
        eps[1].workload.job_sizes_work.tolist()
    out = tmp_path / "cfg"
    assert main(["eval", "lb", "--policy", "least_work", "--config", "rl1", "-n", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert [r["source"] for r in rows_of(out / "results.csv")] == ["genet:rl1"] * 2

    wdir = tmp_path / "workloads"
    write_workload(Workload("burst", [0, 0, 0, 0], [1000, 1000, 1000, 1000]), wdir / "burst.workload")
    write_workload(Workload("calm", [0, 5000, 10000], [100, 100, 100]), wdir / "calm.workload")
    out2 = tmp_path / "files"
    assert main(["eval", "lb", "--policy", "round_robin", "--workloads", str(wdir), "--setting", "genet",
                 "--out", str(out2), "--no-progress"]) == 0
    rows = {r["workload"]: r for r in rows_of(out2 / "results.csv")}
    assert set(rows) == {"burst", "calm"} and rows["calm"]["jobs"] == "3"
    # calm: each job alone on a worker: 100 units at 0.5, 1, 2 units/ms -> 200, 100, 50 ms
    assert float(rows["calm"]["mean_completion_time_s"]) == pytest.approx((200 + 100 + 50) / 3 / 1000)
    assert rows["calm"]["source"].startswith("genet:file:")


def test_genets_own_test_jobs():
    from traces.workload import generate_workload
    eps = episodes("genet", 2, seed=0, genet_test_jobs=True)
    w1 = generate_workload(eps[1].setting.workload, 100000001, legacy_seed=True)
    assert eps[1].workload.job_sizes_work.tolist() == w1.job_sizes_work.tolist()
    assert eps[1].source == "genet:genet-test-jobs"


@pytest.mark.parametrize("argv, message", [
    (["--policy", "nope", "-n", "1"], "--policy 'nope': unknown LB policy"),
    (["--policy", "least_work", "-n", "0"], "-n must be in 1.."),
    (["--policy", "least_work", "--config", "rl9", "-n", "1"], "unknown range 'rl9'"),
    (["--policy", "least_work,least_work", "-n", "1"], "two policies have the same label"),
    (["--policy", "least_work", "--config", "rl1", "--genet-test-jobs"], "not with --config"),
])
def test_bad_options_give_one_line_errors(argv, message, capsys):
    assert main(["eval", "lb", *argv, "--no-progress"]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_bad_workload_file_is_named_with_its_line(tmp_path, capsys):
    (tmp_path / "w.workload").write_text("0 10\n5 x\n")
    assert main(["eval", "lb", "--policy", "least_work", "--workloads", str(tmp_path), "--no-progress"]) != 0
    assert f"{tmp_path / 'w.workload'}:2: job size (field 2) is not a number" in capsys.readouterr().err
