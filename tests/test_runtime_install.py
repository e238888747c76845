"""A runtime install — the wheel without extras, in a fresh venv — runs the `genet` command line and
the shipped ONNX policies, and a command that needs an extra names the extra.

What a sender/player host gets from ``pip install genet-testbed``: numpy, onnxruntime, flask (+ its
WSGI server) and tqdm, no torch, numba, gymnasium, matplotlib, onnx, scikit-optimize, paramiko. The
wheel is built from the working tree (a copy of the packaged folders, so the checkout gets no build/
folder) and installed with its base dependencies from the package registry (pip's cache and the
machine's local wheel folders usually hold them); when the registry cannot be reached the test skips
with pip's reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

#: Distributions that only extras bring (a runtime install must not have them).
EXTRA_ONLY = {"torch", "numba", "gymnasium", "matplotlib", "onnx", "scikit-optimize", "paramiko", "scapy", "llvmlite"}
#: Runtime modules that must import in the runtime install (besides those tests/test_runtime_imports.py lists).
RUNTIME_MODULES = ["genet.policy", "foundation.runmeta", "foundation.extras", "genet.abr.qoe", "genet.abr.observations",
                   "genet.abr.registry", "genet.cc.aurora", "sender", "player"]
NETWORK_TROUBLE = re.compile(r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
                             r"Network is unreachable|Could not fetch URL|No matching distribution found|"
                             r"connection (refused|timed out)", re.I)

#: Load every shipped model through the policy interface and act on one seeded observation.
POLICY_PROBE = r"""
import json, sys
import numpy as np
from genet.policy import OnnxPolicy
out = {}
for path in sys.argv[1:]:
    policy = OnnxPolicy(path)
    spec = policy.spec
    obs = np.random.default_rng(7).uniform(0.0, 1.0, (1, *spec.observation_shape)).astype(np.float32)
    action = np.asarray(policy.act(obs))
    out[path] = {"use_case": spec.use_case, "action_type": spec.action_type, "n_actions": spec.n_actions,
                 "action": action.tolist()}
heavy = {"numba", "torch", "gymnasium", "matplotlib", "onnx", "skopt"}
out["heavy_loaded"] = sorted({m.split(".")[0] for m in sys.modules} & heavy)
print(json.dumps(out))
"""


def _runtime_modules() -> list[str]:
    try:
        from test_runtime_imports import RUNTIME_MODULES as listed  # the use cases' runtime modules
    except ImportError:
        listed = []
    names = list(dict.fromkeys([*RUNTIME_MODULES, *listed]))
    def exists(name: str) -> bool:
        p = REPO.joinpath(*name.split("."))
        return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()
    return [n for n in names if exists(n)]


def _packaged_copy(dest: Path) -> Path:
    """The folders and files the wheel is built from, copied (the build writes build/ and egg-info there)."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in cfg["tool"]["setuptools"]["packages"]["find"]["include"]}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in packages:
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runtime-install")
    src = _packaged_copy(tmp / "src")
    dist = tmp / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("genet_testbed-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # The dev venv's pip installs into the new venv (--python): the wheel and its base dependencies, no extras.
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-compile", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=600)
    if inst.returncode != 0:
        text = inst.stdout + inst.stderr
        if NETWORK_TROUBLE.search(text):
            pytest.skip(f"the package registry cannot be reached to install the runtime dependencies: "
                        f"{text.strip().splitlines()[-1]}")
        pytest.fail(f"pip install {wheel.name} failed:\n{text}")
    return venv


def _run(venv: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GENET_DEBUG")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=env, cwd=cwd or venv)


def test_runtime_install_has_no_extra_only_packages(runtime_venv):
    res = _run(runtime_venv, "python", "-c", "import importlib.metadata as m, json; "
               "print(json.dumps(sorted(d.metadata['Name'].lower() for d in m.distributions())))")
    assert res.returncode == 0, res.stderr
    installed = set(json.loads(res.stdout))
    assert {"genet-testbed", "numpy", "onnxruntime", "flask", "tqdm"} <= installed
    assert not installed & EXTRA_ONLY, installed & EXTRA_ONLY
    # and the code really is the installed wheel, not this checkout
    where = _run(runtime_venv, "python", "-c", "import genet; print(genet.__file__)")
    assert str(runtime_venv) in where.stdout, where.stdout


def test_genet_help_and_runtime_commands_work(runtime_venv, tmp_path):
    res = _run(runtime_venv, "genet", "--help")
    assert res.returncode == 0, res.stderr
    for command in ("traces", "eval", "train", "emulate"):
        assert command in res.stdout, command
    for sub in (["eval", "cc", "--help"], ["eval", "abr", "--help"], ["train", "cc", "--help"],
                ["emulate", "shell", "--help"]):
        res = _run(runtime_venv, "genet", *sub)
        assert res.returncode == 0, (sub, res.stderr)
    res = _run(runtime_venv, "genet", "traces", "gen", "cc", "--range", "rl1", "-n", "2", "--seed", "1",
               "-o", str(tmp_path / "cc"))
    assert res.returncode == 0, res.stderr
    stats = _run(runtime_venv, "genet", "traces", "stats", str(tmp_path / "cc"))
    assert stats.returncode == 0 and "2" in stats.stdout, stats.stderr


def test_runtime_modules_import(runtime_venv):
    modules = _runtime_modules()
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')"
    res = _run(runtime_venv, "python", "-c", code, *modules)
    assert res.returncode == 0 and res.stdout.strip() == "ok", f"{modules}: {res.stderr}"


def test_run_metadata_of_an_installed_wheel(runtime_venv, tmp_path):
    """No git checkout there: the record carries the package version instead of a commit."""
    code = ("import sys; from foundation.runmeta import write_run_metadata; "
            "m = write_run_metadata(sys.argv[1], seed=1); m.finish(sys.argv[1])")
    res = _run(runtime_venv, "python", "-c", code, str(tmp_path))
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "run-metadata.json").read_text())
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert meta["commit"] is None and meta["dirty"] is None and meta["version"] == version
    assert {"numpy", "onnxruntime", "flask"} <= set(meta["versions"]) and not set(meta["versions"]) & EXTRA_ONLY
    assert meta["status"] == 0 and meta["seed"] == 1


def test_the_run_report_template_ships_in_the_wheel(runtime_venv, tmp_path):
    """app/run/templates/report.html.j2 is package data: Jinja2's package loader finds it in the installed wheel
    (from another working directory), and it escapes what it renders."""
    code = ("import jinja2; env = jinja2.Environment(loader=jinja2.PackageLoader('app.run', 'templates'), "
            "autoescape=True); t = env.get_template('report.html.j2'); print(t.filename); "
            "print(t.render(title='<x>', blocks=[]))")
    res = _run(runtime_venv, "python", "-c", code, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    where, page = res.stdout.split("\n", 1)
    assert str(runtime_venv) in where and where.endswith("report.html.j2"), where
    assert "<title>&lt;x&gt;</title>" in page


def test_shipped_onnx_policies_act_on_one_observation(runtime_venv):
    models = sorted(str(p) for p in (REPO / "models").glob("*/*.onnx"))
    assert any("/abr/" in m for m in models) and any("/cc/" in m for m in models), models
    res = _run(runtime_venv, "python", "-c", POLICY_PROBE, *models)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got.pop("heavy_loaded") == []
    for path in models:
        r = got[path]
        assert r["use_case"] == Path(path).parent.name
        action = r["action"]
        if r["action_type"] == "discrete":
            assert len(action) == 1 and 0 <= action[0] < r["n_actions"], (path, r)
        else:
            assert len(action) == 1 and all(abs(a) < 1e6 for a in sum(([x] if not isinstance(x, list) else x
                                                                       for x in action), [])), (path, r)
    # the same actions as the full development install (same code, same onnxruntime semantics)
    dev = subprocess.run([sys.executable, "-c", POLICY_PROBE, *models], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert dev.returncode == 0, dev.stderr
    want = json.loads(dev.stdout)
    want.pop("heavy_loaded")
    import numpy as np
    for path in models:
        np.testing.assert_allclose(np.asarray(got[path]["action"], float), np.asarray(want[path]["action"], float),
                                   rtol=1e-5, atol=1e-6, err_msg=path)


@pytest.mark.parametrize("argv, extra", [
    (["eval", "cc", "--policy", "bbr", "--config", "rl1", "-n", "1"], "sim"),
    (["eval", "abr", "--policy", "bba", "--config", "rl1", "-n", "1"], "sim"),
    (["demo", "--out", "demo"], "sim"),
    (["train", "cc", "--steps", "200"], "train"),
    (["export", "run-dir", "-o", "policy.onnx"], "train"),
    (["import-tf-checkpoint", "ckpt", "-o", "policy.onnx"], "train"),
    (["traces", "plot", "{traces}", "-o", "cdf.png"], "plots"),
    (["emulate", "link-stats", "down.log", "--png", "cdf.png"], "plots"),
])
def test_command_needing_an_extra_names_it(runtime_venv, tmp_path, argv, extra):
    traces = tmp_path / "t"
    assert _run(runtime_venv, "genet", "traces", "gen", "abr", "--range", "rl1", "-n", "1", "-o", str(traces),
                cwd=tmp_path).returncode == 0
    res = _run(runtime_venv, "genet", *[a.format(traces=traces) for a in argv], cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("genet: error: genet ") and f"needs the '{extra}' extra" in lines[0], lines[0]
    assert f"pip install 'genet-testbed[{extra}]'" in lines[0]
    assert not list(tmp_path.glob("demo")) and not (tmp_path / "cdf.png").exists()  # failed before writing
