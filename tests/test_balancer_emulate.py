"""``genet emulate lb`` end to end (balancer/emulate.py): workers, the balancer and the client as processes in
network namespaces joined by emulated links, every policy on the same workload, rows with the simulator's
figures beside them, a rerun reusing finished runs, and a worker killed mid-run. Root (namespaces, TUN) and real
time (a 20-job workload of ~0.6 s per run)."""

from __future__ import annotations

import json
import math
import os

import pytest

from app.cli import main
from genet.lb.metrics import COLUMN_NAMES

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (network namespaces, TUN)")]

WORKLOAD = ["-n", "1", "--seed", "4", "--num-jobs", "20", "--job-interval-ms", "30", "--job-size-max-work", "100"]
WORKER_DELAY_MS, CLIENT_DELAY_MS = 3.0, 2.0


def test_emulate_lb_end_to_end(tmp_path, capsys):
    out = tmp_path / "lb"
    argv = ["emulate", "lb", "--policy", "least_work,round_robin", *WORKLOAD, "--delay-ms", str(WORKER_DELAY_MS),
            "--client-delay-ms", str(CLIENT_DELAY_MS), "--out", str(out)]
    assert main(argv) == 0
    rows = json.loads((out / "results.json").read_text())
    assert [r["policy"] for r in rows] == ["least_work", "round_robin"]
    assert len({r["workload"] for r in rows}) == 1                    # every policy on the same workload
    for r in rows:
        assert r["backend"] == "netns" and r["jobs"] == r["jobs_finished"] == 20 and r["jobs_failed"] == 0
        assert r["mean_completion_time_s"] > 0 and r["p95_slowdown"] >= 1.0
        for k in COLUMN_NAMES:
            assert math.isfinite(r[k]) and math.isfinite(r[f"sim_{k}"])
        # a job's completion holds its service and the round trips over the client's and its worker's links
        client = [json.loads(line) for line in (out / r["run_dir"] / "client.jsonl").read_text().splitlines()]
        rates = (0.5, 1.0, 2.0)
        for j in client:
            floor = j["size"] / rates[j["worker"]] + 2 * (WORKER_DELAY_MS + CLIENT_DELAY_MS)
            assert j["answered_ms"] - j["sent_ms"] >= floor - 1.0      # the links' ms ticks: within 1 ms
    assert (out / "summary.txt").read_text().count("least_work") == 1
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert {"policy", "workload", "repeat", "sim_mean_completion_time_s", "failure_reasons"} <= set(header)
    # a rerun with the same settings reuses both runs (the journal keeps one line per run)
    assert main(argv) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_emulate_lb_reports_a_killed_worker(tmp_path):
    out = tmp_path / "kill"
    argv = ["emulate", "lb", "--policy", "round_robin", *WORKLOAD, "--rates", "1,0.2", "--kill-worker", "1:250",
            "--no-sim", "--out", str(out)]
    assert main(argv) == 0
    (row,) = json.loads((out / "results.json").read_text())
    assert row["killed_worker"] == 1 and "worker 1" in row["dead_workers"]
    assert row["jobs_finished"] + row["jobs_failed"] == row["jobs"] == 20
    assert row["jobs_failed"] >= 1 and "died" in row["failure_reasons"]
    assert int(row["jobs_per_worker"].split()[0]) >= 10       # worker 0 took the rest
    # worker 1 (rate 0.2, every other job) had a queue when it was killed at 250 ms
