"""The one executor (foundation/executor.py): serial, threads, processes give the same results; an item's error
is raised; genet eval cc --jobs 2 writes the rows of --jobs 1."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from foundation.executor import ProcessExecutor, SerialExecutor, ThreadExecutor, make_executor


def _square(offset: int, x: int) -> int:
    if x == 13:
        raise ValueError("thirteen")
    return x * x + offset


@pytest.mark.parametrize("executor", [SerialExecutor(), ThreadExecutor(2), ProcessExecutor(2)],
                         ids=["serial", "threads", "processes"])
def test_every_executor_gives_every_item_its_result(executor):
    with executor:
        got = dict(executor.map_unordered(functools.partial(_square, 1), range(10)))
        assert got == {x: x * x + 1 for x in range(10)}
        with pytest.raises(ValueError, match="thirteen"):
            dict(executor.map_unordered(functools.partial(_square, 0), range(10, 20)))
        # still usable after an item failed
        assert dict(executor.map_unordered(functools.partial(_square, 0), [2])) == {2: 4}


def test_make_executor_picks_by_jobs_and_kind():
    assert isinstance(make_executor(1), SerialExecutor)
    assert isinstance(make_executor(3, kind="thread"), ThreadExecutor) and make_executor(3).workers == 3
    assert isinstance(make_executor(2), ProcessExecutor)
    with pytest.raises(ValueError):
        make_executor(0)
    with pytest.raises(ValueError):
        make_executor(2, kind="gpu")


def test_eval_cc_with_two_worker_processes_writes_the_rows_of_one(tmp_path):
    base = [sys.executable, "-m", "app.cli", "eval", "cc", "--policy", "bbr,const:4", "--config", "rl3", "-n", "3",
            "--seed", "2", "--duration-s", "3", "--no-plots", "--no-progress"]
    for jobs in (1, 2):
        res = subprocess.run(base + ["--out", str(tmp_path / f"j{jobs}"), "--jobs", str(jobs)], capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "j1" / "results.csv").read_text() == (tmp_path / "j2" / "results.csv").read_text()
    bad = subprocess.run(base + ["--jobs", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--jobs must be >= 1" in bad.stderr


def test_emulate_abr_on_a_cluster_without_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    """`genet emulate abr --ray-address` without Ray installed says which extra to install (one line, no traceback),
    before any video or result is written."""
    from app.cli import main
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    code = main(["emulate", "abr", "--policy", "bba", "--traces", str(tmp_path), "--out", str(tmp_path / "out"),
                 "--ray-address", "127.0.0.1:6379"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err
    assert err.splitlines()[-1].endswith("--ray-address needs the 'cluster' extra (ray is not installed): "
                                         "pip install 'genet-testbed[cluster]'")
    assert not list((tmp_path / "out").glob("*results*")) and not (tmp_path / "out" / "video-sized").exists()


def test_files_a_node_sends_back_stay_in_their_run_folder(tmp_path):
    from emulation.cluster import write_node_files
    from foundation.errors import GenetRuntimeError
    write_node_files(tmp_path / "run", {"player.jsonl": b"x", "sub/server.out": b"y"})
    assert (tmp_path / "run" / "sub" / "server.out").read_bytes() == b"y"
    for bad in ("../escape", "/etc/passwd", "a/../../b"):
        with pytest.raises(GenetRuntimeError, match="outside its run folder"):
            write_node_files(tmp_path / "run", {bad: b"z"})
    assert not (tmp_path / "escape").exists()
