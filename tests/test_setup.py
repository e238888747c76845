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


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]


def test_pyproject_runtime_install_and_extras():
    """A runtime install is numpy, onnxruntime, flask (+ its WSGI server), tqdm; the heavy parts are extras."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.11"
    assert meta["scripts"] == {"genet": "app.cli:main"}
    base = {_name(d) for d in meta["dependencies"]}
    assert {"numpy", "onnxruntime", "flask", "tqdm"} <= base
    heavy = {"torch", "numba", "gymnasium", "matplotlib", "onnx", "scikit-optimize", "paramiko", "scapy"}
    assert not base & heavy, base & heavy
    extras = meta["optional-dependencies"]
    assert "torch==2.13.0" in extras["train"]
    assert set(extras) >= {"sim", "plots", "train", "deploy", "all", "test"}
    assert extras["all"] == ["genet-testbed[sim,plots,train,deploy]"]
    assert {"pytest", "hypothesis"} <= {_name(d) for d in extras["test"]}


def test_extras_as_installed_expand_and_are_complete_here():
    """foundation/extras.py reads the installed metadata (pyproject's lists), expanding extras that name extras."""
    import pytest

    from foundation.errors import MissingExtraError
    from foundation.extras import extra_distributions, missing_distributions, require
    assert set(extra_distributions("sim")) == {"numba", "gymnasium", "matplotlib", "pillow"}
    assert set(extra_distributions("train")) == {"torch", "onnx", "scikit-optimize", "numba", "gymnasium",
                                                 "matplotlib", "pillow"}
    assert set(extra_distributions("all")) == set(extra_distributions("train")) | {"paramiko"}
    for extra in ("sim", "plots", "train", "deploy", "all"):  # provisioning installs every extra
        assert missing_distributions(extra) == [], extra
        require(extra, "this test")
    with pytest.raises(ValueError, match="no extra 'nope'"):
        require("nope", "this test")
    err = MissingExtraError("sim", "genet eval cc", "numba, gymnasium")
    assert str(err) == ("genet eval cc needs the 'sim' extra (numba, gymnasium are not installed): "
                        "pip install 'genet-testbed[sim]'")


def test_provisioning_installs_every_extra_with_torch_first():
    script = (REPO / "scripts" / "provision.sh").read_text()
    assert '-e ".[all,test]"' in script
    assert script.index('pipq "torch==2.13.0"') < script.index('-e ".[all,test]"')


def test_cli_registration_imports_nothing_heavy():
    """`genet --help` works on a runtime install: building the parser loads only numpy of the third-party
    packages (tests/test_runtime_install.py runs it in a venv without the extras)."""
    import subprocess
    import sys
    heavy = ("numba", "torch", "gymnasium", "matplotlib", "onnx", "onnxruntime", "skopt", "paramiko", "scapy",
             "scipy", "sklearn")
    code = ("import sys, app.cli; app.cli.build_parser(); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


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
    from app.cli import main
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stage traces" in out and "stage simulate" in out
    assert len(list((tmp_path / "traces" / "cc-rl3-mahimahi").iterdir())) == 20
    assert (tmp_path / "plots" / "cc-rl3-cdf.png").stat().st_size > 5000
    assert (tmp_path / "eval-cc" / "results.csv").is_file()
    if (REPO.parent / "shared" / "video" / "envivio").is_dir():
        assert (tmp_path / "eval-abr" / "results.csv").is_file()
