"""The one run-metadata record (foundation/runmeta.py) and the commands that write it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

from conftest import REPO
from foundation import runmeta
from foundation.errors import BadInputError
from foundation.runmeta import (RUN_METADATA_FILE, RunMetadata, command_context, read_run_metadata,
                           write_run_metadata)

UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
HEAVY = ("numpy", "numba", "torch", "gymnasium", "matplotlib", "onnx", "onnxruntime", "skopt", "flask")


def _head_commit() -> str | None:
    res = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def test_record_fields(tmp_path):
    with command_context(["genet", "eval", "cc", "--seed", "3"]):
        meta = write_run_metadata(tmp_path / "out", seed=3, extra={"traces": "x"})
    data = json.loads((tmp_path / "out" / RUN_METADATA_FILE).read_text())
    assert data["argv"] == ["genet", "eval", "cc", "--seed", "3"] and data["command"] == "genet eval cc --seed 3"
    assert data["seed"] == 3 and data["extra"] == {"traces": "x"} and data["schema"] == 1
    assert data["commit"] == _head_commit()  # this checkout's commit (None where git is absent)
    assert data["version"] == metadata.version("genet-testbed")
    host = data["host"]
    assert host["cpu_count"] == os.cpu_count() and host["kernel"] == os.uname().release
    assert host["hostname"] == os.uname().nodename and host["machine"] == os.uname().machine
    versions = data["versions"]
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    for dist in ("numpy", "onnxruntime", "flask", "numba", "torch"):  # all installed in the dev venv
        assert versions[dist] == metadata.version(dist), dist
    assert "pytest" not in versions  # test tools are not the run's dependencies
    assert UTC.fullmatch(data["started_utc"]) and data["finished_utc"] is None and data["wall_s"] is None
    meta.finish(tmp_path / "out", status=0, n_rows=4)
    done = read_run_metadata(tmp_path / "out")
    assert UTC.fullmatch(done.finished_utc) and done.finished_utc >= done.started_utc
    assert done.wall_s >= 0 and done.status == 0 and done.extra == {"traces": "x", "n_rows": 4}
    assert done.to_dict() == {**data, "finished_utc": done.finished_utc, "wall_s": done.wall_s, "status": 0,
                              "extra": {"traces": "x", "n_rows": 4}}


def test_seed_list_and_no_seed(tmp_path):
    assert write_run_metadata(tmp_path / "a", seed=(1, 2)).seed == [1, 2]
    assert json.loads((tmp_path / "a" / RUN_METADATA_FILE).read_text())["seed"] == [1, 2]
    assert write_run_metadata(tmp_path / "b").seed is None


def test_rerun_keeps_earlier_records(tmp_path):
    first = write_run_metadata(tmp_path, seed=1, argv=["genet", "one"])
    first.finish(tmp_path)
    write_run_metadata(tmp_path, seed=2, argv=["genet", "two"])
    third = write_run_metadata(tmp_path, seed=3, argv=["genet", "three"])
    third.finish(tmp_path, status=5)
    back = read_run_metadata(tmp_path / RUN_METADATA_FILE)
    assert back.argv == ["genet", "three"] and back.status == 5
    assert [p["argv"] for p in back.previous] == [["genet", "one"], ["genet", "two"]]
    assert back.previous[0]["finished_utc"] and back.previous[1]["finished_utc"] is None  # the 2nd never finished
    assert all("previous" not in p for p in back.previous)


def test_unreadable_earlier_record_is_kept(tmp_path):
    (tmp_path / RUN_METADATA_FILE).write_text('{"argv": [cut short')
    meta = write_run_metadata(tmp_path, argv=["genet", "x"])
    assert meta.previous == [{"unreadable": '{"argv": [cut short'}]
    assert read_run_metadata(tmp_path).previous == meta.previous


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("host"), "missing field(s) host"),
    (lambda d: d.__setitem__("colour", 1), "unknown field(s) colour"),
    (lambda d: d["host"].pop("kernel"), "field 'host'"),
])
def test_bad_file_names_the_field(tmp_path, edit, message):
    write_run_metadata(tmp_path, argv=["genet"])
    data = json.loads((tmp_path / RUN_METADATA_FILE).read_text())
    edit(data)
    (tmp_path / RUN_METADATA_FILE).write_text(json.dumps(data))
    with pytest.raises(BadInputError, match=re.escape(message)) as err:
        read_run_metadata(tmp_path)
    assert str(tmp_path / RUN_METADATA_FILE) in str(err.value)
    (tmp_path / RUN_METADATA_FILE).write_text("{not json")
    with pytest.raises(BadInputError, match="not valid JSON"):
        read_run_metadata(tmp_path)


def test_no_git_checkout_gives_only_the_package_version(tmp_path, monkeypatch):
    """An installed copy (no .git beside genet/) has no commit, even inside some other git repository."""
    other = tmp_path / "other-repo"
    (other / "site" / "foundation").mkdir(parents=True)
    (other / "site" / "foundation" / "runmeta.py").write_text("")
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    monkeypatch.setattr(runmeta, "PROJECT_ROOT", other / "site")
    meta = RunMetadata.collect(argv=["genet"])
    assert meta.commit is None and meta.dirty is None and meta.version == metadata.version("genet-testbed")


def test_bottom_of_the_import_graph():
    """runmeta and extras load nothing heavy (standard library and foundation.errors/atomic only)."""
    code = ("import sys, tempfile; import foundation.runmeta as r, foundation.extras as e; e.require('sim', 'x'); "
            "r.write_run_metadata(tempfile.mkdtemp()); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    genet_modules = subprocess.run(
        [sys.executable, "-c", "import sys, foundation.runmeta; print(sorted(m for m in sys.modules "
                               "if m.split('.')[0] in ('genet', 'foundation')))"],
        capture_output=True, text=True, cwd=REPO, timeout=60).stdout.strip()
    assert genet_modules == "['foundation', 'foundation.runmeta']"


# --------------------------------------------------------------- the commands that write it
def _without_previous(meta: RunMetadata) -> dict:
    return {k: v for k, v in meta.to_dict().items() if k != "previous"}


def _check_written(out, argv_tail, seed):
    meta = read_run_metadata(out)
    assert meta.argv[0] == "genet" and meta.argv[1:] == argv_tail
    assert meta.seed == seed and meta.status == 0 and meta.finished_utc is not None
    assert meta.commit == _head_commit()
    return meta


def test_eval_cc_writes_run_metadata(tmp_path):
    from app.cli import main
    argv = ["eval", "cc", "--policy", "const:5", "--config", "rl1", "-n", "1", "--seed", "4", "--no-plots",
            "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    meta = _check_written(tmp_path, argv, 4)
    assert meta.extra["use_case"] == "cc" and meta.extra["policies"] == ["const:5"]
    assert (tmp_path / "results.csv").is_file()


def test_eval_abr_writes_run_metadata_and_a_rerun_keeps_the_first(tmp_path):
    from app.cli import main
    argv = ["eval", "abr", "--policy", "bba", "--config", "rl1", "-n", "2", "--seed", "2", "--no-progress",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    first = _check_written(tmp_path, argv, 2)
    assert main(argv) == 0  # resumes from results.jsonl
    second = _check_written(tmp_path, argv, 2)
    assert second.extra["use_case"] == "abr" and second.extra["policies"] == ["bba"]
    assert second.previous == [_without_previous(first)]


def test_train_writes_run_metadata_with_run_json_commit(tmp_path):
    from app.cli import main
    out = tmp_path / "run"
    argv = ["train", "cc", "--range", "rl1", "--steps-per-update", "200", "--minibatch", "50", "--epochs", "1",
            "--no-progress", "--steps", "200", "--seed", "6", "--out", str(out)]
    assert main(argv) == 0
    meta = _check_written(out, argv, 6)
    run = json.loads((out / "run.json").read_text())
    assert run["commit"] == (meta.commit or "") and run["started"] == meta.started_utc
    assert meta.extra["env_steps"] == 200 and meta.extra["method"] == "udr"
    assert main(argv + ["--resume"]) == 0  # nothing left to train; the resume is recorded too
    again = read_run_metadata(out)
    assert again.argv[-1] == "--resume" and again.previous == [_without_previous(meta)]
    assert json.loads((out / "run.json").read_text())["resumes"][0]["time"] == again.started_utc


def _netns_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


@pytest.mark.root
def test_emulate_shell_writes_run_metadata_beside_its_logs(tmp_path):
    if _netns_missing():
        pytest.skip(_netns_missing())
    logs = tmp_path / "logs"
    logs.mkdir()
    cmd = [sys.executable, "-m", "app.cli", "emulate", "shell", "--isolate-host", "--uplink", "12mbps",
           "--downlink", "12mbps", "--seed", "9", "--downlink-log", str(logs / "down.log"), "--", "sh", "-c", "exit 3"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 3, res.stderr
    meta = read_run_metadata(logs)
    assert meta.argv == ["genet", *cmd[3:]] and meta.seed == 9 and meta.status == 3
    assert meta.extra["backend"] == "netns" and meta.finished_utc is not None
