"""Project layout, provisioning and CI wiring."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO


def test_layout_is_as_designed():
    for name in ("genet", "emulation", "sender", "player", "deploy", "traces", "tests", "benchmarks"):
        assert (REPO / name).is_dir(), name
    for name in ("Vagrantfile", "pyproject.toml", "README.md", ".ci/run", "scripts/provision.sh"):
        assert (REPO / name).is_file(), name
    for pkg in ("genet", "emulation", "sender", "player", "deploy", "traces"):
        __import__(pkg)


def test_pyproject_pins_torch_and_declares_one_script():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in meta["dependencies"]
    assert meta["requires-python"] == ">=3.11"
    assert meta["scripts"] == {"genet": "genet.cli:main"}
    deps = " ".join(meta["dependencies"])
    for dep in ("numpy", "onnx", "onnxruntime", "scikit-optimize", "paramiko", "flask", "scapy", "gymnasium",
                "matplotlib", "tqdm"):
        assert dep in deps, dep
    assert {"pytest", "hypothesis"} <= {re.split(r"[<>=]", d)[0] for d in meta["optional-dependencies"]["test"]}


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/demo.sh" in readme
    assert re.search(r"^\s*(exec\s+)?bash scripts/test\.sh", ci, re.M)


def test_vagrantfile_and_commands_use_the_one_provisioning_script():
    vagrant = (REPO / "Vagrantfile").read_text()
    assert "scripts/provision.sh" in vagrant and "ubuntu/jammy64" in vagrant and "mahimahi" in vagrant
    for script in ("scripts/test.sh", "scripts/demo.sh"):
        assert "scripts/provision.sh" in (REPO / script).read_text(), script
    assert (REPO / "scripts" / "provision.sh").stat().st_mode & 0o111


def test_demo_main_job_runs_end_to_end(tmp_path, capsys):
    from genet.cli import main
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stage traces" in out and "stage simulate" in out
    assert len(list((tmp_path / "traces" / "cc-rl3-mahimahi").iterdir())) == 20
    assert (tmp_path / "plots" / "cc-rl3-cdf.png").stat().st_size > 5000
    assert (tmp_path / "eval-cc" / "results.csv").is_file()
    if (REPO.parent / "shared" / "video" / "envivio").is_dir():
        assert (tmp_path / "eval-abr" / "results.csv").is_file()
