"""An LB campaign of `genet deploy run` on the local SSH testbed (real sshd in network namespaces, a real emulated
path): the path's server host runs the worker servers and the balancer (`genet balancer cluster`), the client host
replays a generated workload over the path (`genet balancer replay`); every record holds the LB columns and
`genet deploy report` prints the LB table.

The testbed's hosts share this machine's file system, so the project's own interpreter stands in for the venv
`genet deploy push` installs (tests/test_deploy_campaign.py::test_push_installs_runtime_and_is_idempotent covers the
push itself): each host's WORK_DIR/venv/bin/genet runs this checkout's `genet`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root]

from conftest import require_ssh_testbed  # noqa: E402

require_ssh_testbed()

from deploy import testbed  # noqa: E402
from deploy.campaign import Journal, run_campaign  # noqa: E402
from deploy.config import load_campaign, load_inventory  # noqa: E402
from deploy.report import write_report  # noqa: E402
from deploy.ssh import Session  # noqa: E402
from genet.lb.metrics import COLUMN_NAMES, COLUMNS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
JOBS = 30


def _install_genet(inv) -> None:
    """WORK_DIR/venv/bin/genet on every host: this checkout's `genet` (see the module docstring)."""
    for h in inv.hosts.values():
        bin_dir = Path(h.work_dir) / "venv" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        genet = bin_dir / "genet"
        genet.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m app.cli \"$@\"\n")
        genet.chmod(0o755)


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    out = tmp_path_factory.mktemp("lb-testbed")
    paths = [testbed.TestbedPath("p1", "h1", "h2", 12.0, 12.0, 5.0, description="12 Mbit/s, 5 ms")]
    inv = load_inventory(testbed.up(out, 2, paths))
    try:
        _install_genet(inv)
        yield out, inv
    finally:
        testbed.down(out)


def test_lb_campaign_records_and_report(bed, tmp_path):
    _, inv = bed
    f = tmp_path / "lb.toml"
    f.write_text('name = "lb"\nuse_case = "lb"\nschemes = ["least_work", "round_robin"]\nrepetitions = 1\n'
                 f'paths = ["p1"]\nport = 7311\njobs = {JOBS}\njob_interval_ms = 20\njob_size_max_work = 200\n'
                 'workload_seed = 4\n')
    c = load_campaign(f, inv)
    assert c.timeout_s < 120  # from the workload: a short one
    out = tmp_path / "run"
    s = run_campaign(c, inv, out)
    recs = Journal(out / "journal.jsonl").records
    assert (s.planned, s.ok, s.failed) == (2, 2, 0), [r.get("reason") for r in recs]
    assert sorted(r["scheme"] for r in recs) == ["least_work", "round_robin"]
    workloads = set()
    for r in recs:
        m = r["metrics"]
        assert set(COLUMN_NAMES) <= set(m), m
        assert m["jobs"] == m["jobs_finished"] == JOBS and m["jobs_failed"] == 0
        assert m["policy"] == r["scheme"] and m["n_workers"] == 3 and m["service_rates"] == "0.5 1 2"
        assert 0 < m["mean_completion_time_s"] < 5 and m["p95_slowdown"] >= 1 and 0 < m["mean_utilisation"] <= 1
        assert m["reward"] < 0
        # every job went through the path (5 ms each way): it takes at least the round trip
        assert m["mean_completion_time_s"] > 0.010
        assert sum(int(x) for x in m["jobs_per_worker"].split()) == JOBS
        assert r["server_command"][1:3] == ["balancer", "cluster"] and "--policy" in r["server_command"]
        assert r["client_command"][1:3] == ["balancer", "replay"]
        d = out / r["dir"]
        for name in ("balancer.json", "client.jsonl", "workload.workload"):
            assert (d / name).is_file(), name
        workloads.add((d / "workload.workload").read_text())
    assert len(workloads) == 1  # both schemes of a round replay the same jobs
    rr = next(r["metrics"] for r in recs if r["scheme"] == "round_robin")
    assert rr["jobs_per_worker"] == "10 10 10"  # round robin, 30 jobs, 3 workers
    rep = write_report(out)
    assert "LB table" in rep.text
    for c_ in COLUMNS:
        if c_.table:
            assert c_.name in rep.text
    rows = {r["scheme"]: r for r in rep.rows}
    assert rows["least_work"]["runs"] == 1
    assert rows["least_work"]["mean_completion_time_s"] == pytest.approx(
        next(r["metrics"]["mean_completion_time_s"] for r in recs if r["scheme"] == "least_work"))
    with Session(inv.hosts["h1"]) as sess:  # the workers ended with their balancer
        assert sess.our_processes() == []
