"""Ray as the executor of independent items (foundation/executor.py RayExecutor) on a local cluster of two nodes
on loopback (a head and one worker node, each with one CPU, stopped afterwards): `genet eval cc --ray-address`
gives the rows of the local run, with runs on both nodes; a batched curriculum search over Ray-run trials gives
the trials of the local one. ray comes with the test extra (CI runs this); without it the test skips."""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'genet-testbed[cluster]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_nodes():
    exe = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if exe is None:
        pytest.skip("the `ray` command is not installed")
    port = _free_port()
    tmp = Path("/tmp") / f"genet-ray-{port}"  # Ray's socket paths must stay short
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    head = subprocess.run([exe, "start", "--head", "--port", str(port), "--include-dashboard=false",
                           "--temp-dir", str(tmp), *common], capture_output=True, text=True, timeout=300)
    if head.returncode != 0:
        pytest.skip(f"`ray start --head` failed here: {head.stderr.strip().splitlines()[-1:]}")
    try:
        worker = subprocess.run([exe, "start", "--address", f"127.0.0.1:{port}", "--temp-dir", str(tmp), *common],
                                capture_output=True, text=True, timeout=300)
        assert worker.returncode == 0, worker.stderr[-2000:]
        # this module's functions travel by value (the workers cannot import a test module)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([exe, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def _node_of(x: int) -> tuple[int, str]:
    import time

    import ray as r
    time.sleep(0.5)  # long enough that both nodes get work
    return x, r.get_runtime_context().get_node_id()


def test_the_cluster_has_two_nodes_and_items_run_on_both(two_nodes):
    from foundation.executor import RayExecutor, make_executor
    ex = make_executor(1, ray_address=two_nodes)
    assert isinstance(ex, RayExecutor) and ex.workers == 2
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    got = {x: node for x, (_, node) in ex.map_unordered(_node_of, range(6))}
    assert sorted(got) == list(range(6)) and len(set(got.values())) == 2


def test_eval_cc_on_the_cluster_writes_the_rows_of_the_local_run(two_nodes, tmp_path):
    base = [sys.executable, "-m", "app.cli", "eval", "cc", "--policy", "bbr,cubic", "--config", "rl3", "-n", "3",
            "--seed", "4", "--duration-s", "3", "--no-plots", "--no-progress"]
    local = subprocess.run(base + ["--out", str(tmp_path / "local")], capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-2000:]
    on_ray = subprocess.run(base + ["--out", str(tmp_path / "ray"), "--ray-address", two_nodes], capture_output=True,
                            text=True, timeout=600)
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert (tmp_path / "local" / "results.csv").read_text() == (tmp_path / "ray" / "results.csv").read_text()


def test_a_batched_search_with_trials_on_the_cluster_equals_the_local_one(two_nodes):
    from foundation.executor import make_executor
    from genet.curriculum.search import search_gap
    from traces.config_space import load_space
    space = load_space("cc")
    score = functools.partial(_toy_gap)
    ex = make_executor(1, ray_address=two_nodes)

    def on_ray(configs):
        got = {id(config): gap for config, gap in ex.map_unordered(_toy_gap, configs)}
        return [got[id(c)] for c in configs]

    local = search_gap(space, score, n_trials=8, n_random=4, seed=5, batch=2)
    remote = search_gap(space, score, n_trials=8, n_random=4, seed=5, gap_many=on_ray, batch=2)
    assert [t.config for t in remote.trials] == [t.config for t in local.trials]
    assert [t.gap for t in remote.trials] == [t.gap for t in local.trials]


def _toy_gap(config: dict) -> float:
    return float(sum((v - 1.0) ** 2 for v in config.values()) ** 0.5)



def test_emulate_cc_on_the_cluster_runs_links_on_both_nodes_and_brings_every_run_back(two_nodes, tmp_path):
    import os
    if os.geteuid() != 0:
        pytest.skip("emulated links need root")
    import csv

    tdir = tmp_path / "traces"
    tdir.mkdir()
    for i, mbps in enumerate((6.0, 8.0)):
        (tdir / f"c{i}.csv").write_text(f"time_s,bandwidth_mbps,queue_packets\n0,{mbps},50\n10,{mbps},50\n")
    base = [sys.executable, "-m", "app.cli", "emulate", "cc", "--policy", "const:3,cubic", "--traces", str(tdir),
            "--duration-s", "2", "--delay-ms", "10", "--no-sim", "--no-plots"]
    res = subprocess.run(base + ["--out", str(tmp_path / "ray"), "--ray-address", two_nodes], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "ray" / "results.csv")))
    assert len(rows) == 4 and len({r["ray_node"] for r in rows}) == 2  # links on both nodes
    for r in rows:
        assert (tmp_path / "ray" / r["run_dir"]).is_dir()  # the run's files came back
        if r["policy"] == "const:3":
            assert 2.5 < float(r["throughput_mbps"]) < 3.2
        else:
            cap = 6.0 if r["trace"].startswith("c0") else 8.0
            assert 0.6 * cap < float(r["throughput_mbps"]) <= cap * 1.02
    again = subprocess.run(base + ["--out", str(tmp_path / "ray"), "--ray-address", two_nodes], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0 and "genet emulate cc:" not in again.stderr  # every run reused


def test_a_node_check_names_what_a_node_lacks(two_nodes):
    from foundation.executor import make_executor
    from sender.emulate import node_check
    results = make_executor(1, ray_address=two_nodes).on_every_node(node_check)
    assert len(results) == 2
    import os
    for _, r in results:
        assert r["problems"] == ([] if os.geteuid() == 0 else ["not root"]) or "no /dev/net/tun" in r["problems"]
