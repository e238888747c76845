"""A clone alone (issue 32): the quickstart plans and its simulate stage runs with no ``../shared`` beside the
repository and no network, on the trace samples shipped in ``traces/samples/``.

The repository's files (``git ls-files``: what a clone has) are copied to a temporary folder with nothing beside
it; the commands run there with that copy first on ``sys.path`` (so its code and its samples are the ones used),
``GENET_SHARED`` pointing at a folder that does not exist and ``GENET_OFFLINE=1``. The README's own blocks run the
same way in tests/test_readme_commands.py (its scratch checkout has no traces beside it either).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SAMPLES = REPO / "traces" / "samples"


def _clone_alone(tmp_path: Path) -> Path:
    """The files a clone of this commit has (tracked, plus new files not ignored), under tmp/clone."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            timeout=60)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files a clone has")
    clone = tmp_path / "clone"
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = REPO / rel
        if not src.is_file() or rel.startswith(".venv/"):
            continue
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, clone / rel)
    return clone


def _env(clone: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(clone), GENET_SHARED=str(clone.parent / "no-shared-here"),
               GENET_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
    for var in ("GENET_TRACES_DIR", "GENET_VIDEO_DIR"):
        env.pop(var, None)
    return env


def _genet(clone: Path, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=clone, env=_env(clone),
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    return _clone_alone(tmp_path_factory.mktemp("alone"))


def test_the_clone_imports_its_own_code(clone):
    r = subprocess.run([sys.executable, "-c", "import traces.datasets as d; print(d.__file__)"], cwd=clone,
                       env=_env(clone), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).is_relative_to(clone), r.stdout


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "examples").glob("*.toml")
                                          if "[run]" in p.read_text()))
def test_every_run_config_plans_in_a_clone_alone(clone, config):
    """`genet run EXAMPLE --dry-run` from a clone alone: no path into ../shared, the named sets planned from
    the shipped samples (or a synthetic stand-in where none is shipped)."""
    r = _genet(clone, "run", f"examples/{config}", "--dry-run", "--out", str(clone / "runs" / config), timeout_s=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "shared" not in r.stdout, [ln for ln in r.stdout.splitlines() if "shared" in ln]
    if config == "quickstart.toml":
        assert "shipped sample (traces/samples/fcc-val)" in r.stdout, r.stdout[:3000]


def test_the_quickstart_simulates_on_the_shipped_samples(clone):
    """The quickstart's traces and simulate stages for real (its shipped models and baselines only: training is
    covered by tests/test_readme_commands.py's demo run), and a report whose trace-set table says 'shipped
    sample'."""
    import tomllib
    cfg = tomllib.loads((clone / "examples" / "quickstart.toml").read_text())
    lines = ['[run]\nname = "alone"\nseed = 1\n']
    for name in ("fcc-val", "pantheon-cellular"):
        lines.append(f'[traces.{name}]\ndataset = "{cfg["traces"][name]["dataset"]}"\n')
    lines.append('[traces.fcc-4]\nfrom = "fcc-val"\nn = 4\n[traces.cellular-3]\nfrom = "pantheon-cellular"\nn = 3\n')
    lines.append('[abr]\nbaselines = ["bba", "mpc"]\n[abr.policies.shipped]\nuse = "models/abr/genet.onnx"\n'
                 '[abr.simulate]\ntraces = ["fcc-4"]\n[abr.emulate]\nenabled = false\n')
    lines.append('[cc]\nbaselines = ["bbr", "cubic"]\n[cc.policies.shipped]\nuse = "models/cc/genet.onnx"\n'
                 '[cc.simulate]\ntraces = ["cellular-3"]\n[cc.emulate]\nenabled = false\n')
    config = clone / "alone.toml"
    config.write_text("\n".join(lines))
    out = clone / "runs" / "alone"
    r = _genet(clone, "run", str(config), "--out", str(out))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    source = json.loads((out / "traces" / "fcc-val" / "SOURCE.json").read_text())
    assert source["kind"] == "sample" and source["n_files"] == len(list((SAMPLES / "fcc-val").iterdir()))
    for uc, env in (("abr", "fcc-4"), ("cc", "cellular-3")):
        rows = (out / "simulate" / f"{uc}-{env}" / "results.csv").read_text().splitlines()
        policies = {row.split(",")[1] for row in rows[1:]} if rows else set()
        assert len(rows) > 1, f"{uc}: no results"
        assert policies, rows[:3]
    report = (out / "report" / "report.md").read_text()
    assert "## Trace sets" in report
    assert "fcc-val: shipped sample (24 of the 150 files" in report, report[:4000]
    assert "Traces: first 4 files of fcc-val (fcc-val: shipped sample" in report


def test_the_samples_are_the_public_files_they_name():
    """Every shipped sample file is byte-identical to the file of that path in the full set's manifest."""
    manifest = json.loads((REPO / "traces" / "spaces" / "datasets.json").read_text())["datasets"]
    files = [p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "README.md"]
    assert len(files) >= 80
    for f in files:
        name, rel = f.relative_to(SAMPLES).parts[0], str(f.relative_to(SAMPLES / f.relative_to(SAMPLES).parts[0]))
        assert rel in manifest[name]["files"], f"{f} is not a file of {name}"
        assert hashlib.sha256(f.read_bytes()).hexdigest() == manifest[name]["files"][rel], f


def test_dataset_sources_in_order(tmp_path, monkeypatch):
    """obtain_dataset: a refused download falls back to the shipped sample; a set with no sample gets synthetic
    traces of its use case; find_full_copy takes GENET_TRACES_DIR first."""
    from traces import datasets
    calls = []

    def refuse(name, dest, base_url=None, timeout_s=0.0):
        calls.append(name)
        raise datasets.DatasetError("download failed: no network")

    monkeypatch.setattr(datasets, "fetch_dataset", refuse)
    monkeypatch.delenv(datasets.OFFLINE_ENV, raising=False)
    src = datasets.obtain_dataset("norway-val", tmp_path, log=lambda s: None)
    assert calls == ["norway-val"] and src.kind == "sample" and src.n_files == 24
    assert len(list((tmp_path / "norway-val").iterdir())) == 24
    monkeypatch.setattr(datasets, "sample_path", lambda name: None)
    monkeypatch.setenv(datasets.OFFLINE_ENV, "1")
    src = datasets.obtain_dataset("pantheon-cellular", tmp_path, n_synthetic=3, seed=2, log=lambda s: None)
    assert calls == ["norway-val"], "GENET_OFFLINE=1 must not try the network"
    assert src.kind == "synthetic" and src.n_files == 3 and "cc traces" in src.detail
    # a full copy laid out as the mirror, in GENET_TRACES_DIR
    mirror = tmp_path / "mirror"
    ds = datasets.get_dataset("fcc-val")
    for rel in ds.files:
        (mirror / ds.mirror_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / ds.mirror_path / rel).write_text("0 1\n1 1\n")
    monkeypatch.setenv(datasets.TRACES_DIR_ENV, str(mirror))
    assert datasets.find_full_copy("fcc-val") == mirror / "abr" / "fcc-val"
    (mirror / ds.mirror_path / sorted(ds.files)[0]).unlink()  # incomplete: not a full copy
    monkeypatch.setenv("GENET_SHARED", str(tmp_path / "nowhere"))
    assert datasets.find_full_copy("fcc-val") is None
