"""Ray as the executor of independent items (foundation/executor.py RayExecutor) on a local cluster of two nodes
on loopback (a head and one worker node, each with one CPU, stopped afterwards): `genet eval cc --ray-address`
gives the rows of the local run, with runs on both nodes; a batched curriculum search over Ray-run trials gives
the trials of the local one; `genet emulate cc|abr --ray-address` put emulated links on both nodes (as root), every
run's files come back, ABR's rows are the local run's, and a node that fails the check refuses in one line. ray comes with the test extra (CI runs this); without it the test skips."""

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


def test_per_node_items_run_that_many_at_once_on_every_node(two_nodes):
    """RayExecutor(per_node=K) (the sessions of `genet emulate abr --ray-address --jobs K`): K items at once on
    each live node, whatever its CPUs (these have one); every item comes back once, from both nodes."""
    from foundation.executor import RayExecutor
    ex = RayExecutor(two_nodes, per_node=2)
    assert ex.workers == 4 and "2 per node" in ex.describe()
    got = {x: node for x, (_, node) in ex.map_unordered(_node_of, range(8))}
    assert sorted(got) == list(range(8)) and len(set(got.values())) == 2
    with pytest.raises(ValueError, match="per_node"):
        RayExecutor(two_nodes, per_node=0)


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
    from emulation.cluster import node_check
    results = make_executor(1, ray_address=two_nodes).on_every_node(node_check)
    assert len(results) == 2
    import os
    for _, r in results:
        assert r["problems"] == ([] if os.geteuid() == 0 else ["not root"]) or "no /dev/net/tun" in r["problems"]


def _priorities_around_a_node_run() -> dict:
    """On a node: the Ray worker's nice value, and what a run's body and the process it starts see."""
    import os
    import subprocess as sp
    from pathlib import Path as P

    from emulation.cluster import run_in_node_folder
    seen = {"worker": os.getpriority(os.PRIO_PROCESS, 0)}

    def body(tmp):
        seen["body"] = os.getpriority(os.PRIO_PROCESS, 0)
        seen["child"] = int(sp.run(["sh", "-c", "ps -o ni= -p $$"], capture_output=True, text=True).stdout)
        (P(tmp) / "run").mkdir()
        return {}, P(tmp) / "run"

    run_in_node_folder(body)
    seen["after"] = os.getpriority(os.PRIO_PROCESS, 0)
    return seen


def test_an_emulated_run_on_a_node_runs_at_normal_priority_not_at_rays_worker_nice(two_nodes):
    """Ray starts its workers at nice 15; an emulated run (its sender, receiver, link) at that priority loses
    packets' timing on a busy node that a local run keeps, so the run's body and what it starts run at nice 0,
    and the worker's priority comes back afterwards."""
    import os
    if os.geteuid() != 0:
        pytest.skip("emulated runs need root")
    from foundation.executor import make_executor
    results = make_executor(1, ray_address=two_nodes).on_every_node(_priorities_around_a_node_run)
    assert len(results) == 2
    for _, seen in results:
        assert seen["worker"] > 0 and seen["after"] == seen["worker"], seen  # Ray's worker niceness, restored
        assert seen["body"] == 0 and seen["child"] == 0, seen


ABR_CHUNKS = 4  # short sessions (~20 s each): the sized EnvivioDash3 video's first 4 chunks


def test_emulate_abr_on_the_cluster_gives_the_local_rows_and_brings_every_session_back(two_nodes, tmp_path):
    """`genet emulate abr --ray-address`: the sessions run on both nodes (--jobs 1: one at a time on each), every
    session's files come back under --out/sessions, the rows are the local run's (constant links: ABR emulation is
    close to deterministic; QoE within a small tolerance), and a rerun reuses every session."""
    import os
    if os.geteuid() != 0:
        pytest.skip("emulated links need root")
    import csv
    import json

    tdir = tmp_path / "traces"
    tdir.mkdir()
    for name, mbps in (("const3", 3.0), ("const2", 2.0)):
        (tdir / name).write_text("".join(f"{t} {mbps}\n" for t in range(0, 200)))
    base = [sys.executable, "-m", "app.cli", "emulate", "abr", "--policy", "bba", "--traces", str(tdir),
            "--chunks", str(ABR_CHUNKS)]
    local = subprocess.run(base + ["--jobs", "2", "--out", str(tmp_path / "local")], capture_output=True, text=True,
                           timeout=300)
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    on_ray = subprocess.run(base + ["--jobs", "1", "--out", str(tmp_path / "ray"), "--ray-address", two_nodes],
                            capture_output=True, text=True, timeout=300)
    assert on_ray.returncode == 0, on_ray.stdout[-2000:] + on_ray.stderr[-3000:]

    def rows(out):
        return {(r["policy"], r["trace"], r["repeat"]): r for r in csv.DictReader(open(tmp_path / out / "results.csv"))}
    want, got = rows("local"), rows("ray")
    assert set(got) == set(want) and len(got) == 2
    for k, w in want.items():
        g = got[k]
        assert g["status"] == w["status"] == "complete", (g["reason"], w["reason"])
        assert int(g["chunks"]) == int(w["chunks"]) == ABR_CHUNKS
        assert abs(float(g["qoe"]) - float(w["qoe"])) <= 0.05 * abs(float(w["qoe"])) + 0.2, (k, g["qoe"], w["qoe"])
        assert abs(float(g["bitrate_mbps"]) - float(w["bitrate_mbps"])) <= 0.05 * float(w["bitrate_mbps"])
        assert float(g["sim_qoe"]) == pytest.approx(float(g["qoe"]), rel=0.2, abs=0.5)  # the head's sim_* columns
        sess = tmp_path / "ray" / "sessions" / "bba" / f"{k[1]}-r0"
        for name in ("player.jsonl", "server.jsonl", "result.json", "link_run.txt"):
            assert (sess / name).is_file() and (sess / name).stat().st_size > 0, name  # the files came back
        assert g["log"] == str(sess / "player.jsonl")
        assert json.loads((sess / "result.json").read_text())["log"] == g["log"]  # this machine's paths
        assert len((sess / "player.jsonl").read_text().splitlines()) >= ABR_CHUNKS
    journal = [json.loads(line) for line in open(tmp_path / "ray" / "results.jsonl")]
    assert len({r["ray_node"] for r in journal}) == 2  # sessions on both nodes
    again = subprocess.run(base + ["--jobs", "1", "--out", str(tmp_path / "ray"), "--ray-address", two_nodes],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "genet emulate abr:" not in again.stderr  # every session reused
    assert rows("ray") == got


def test_a_node_that_fails_the_check_refuses_the_run_in_one_line(two_nodes):
    """The node check of `genet emulate cc|abr --ray-address` (emulation/cluster.py) runs on every node; a node that
    lacks what a run needs (here a command no node has) refuses the command with one line naming each node and
    what it lacks."""
    from emulation.cluster import check_nodes, node_check
    from foundation.errors import GenetRuntimeError
    from foundation.executor import make_executor
    ex = make_executor(1, ray_address=two_nodes)
    import os
    if os.geteuid() == 0:
        check_nodes(ex, "genet emulate abr --ray-address")  # these nodes pass (root, TUN, ip) ...
    lacking = functools.partial(node_check, ("ip", "genet-no-such-command"))
    with pytest.raises(GenetRuntimeError) as err:  # ... and fail when a command is missing
        check_nodes(ex, "genet emulate abr --ray-address", check=lacking)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("genet emulate abr --ray-address: nodes that cannot run emulated links")
    assert msg.count("no `genet-no-such-command` command") == 2 and "no `ip` command" not in msg
