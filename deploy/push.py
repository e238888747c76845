"""``genet deploy push``: the runtime install, models and videos on each host, over SFTP, idempotently.

On each host, under its work directory::

    dist/genet_testbed-*.whl     the project's wheel (built from this source tree, or --wheel FILE)
    wheelhouse/*.whl             --wheelhouse DIR: wheels pip installs from (--no-index), for hosts
                                 without a package index
    venv/                        python -m venv (the inventory's python); the wheel installed without
                                 extras (numpy, onnxruntime, flask: what sender/player/ONNX need)
    venv/.genet-wheel.json       content digest of the installed wheel
    models/                      *.onnx (+ their .json metadata) from --models DIRs (default: models/)
    videos/NAME/                 each --video DIR

Idempotent: files are compared by SHA-256 with what the host holds (:mod:`deploy.remote_helper`
``manifest``), only missing or different ones are uploaded (to a temporary name, renamed when
complete); the wheel is compared by the digest of its contents (its RECORD, so a rebuild of the same
sources is "unchanged" although zip timestamps differ) and installed only when it changed. A second
push with nothing changed transfers nothing and says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from foundation.errors import BadInputError, GenetRuntimeError

from deploy.config import HostSpec, Inventory
from deploy.ssh import RemoteError, Session

REPO = Path(__file__).resolve().parents[1]
PIP_TIMEOUT_S = 900.0


@dataclass
class PushResult:
    host: str
    ok: bool = False
    uploaded: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    installed: str | None = None
    venv_created: bool = False
    error: str = ""

    def describe(self) -> str:
        if not self.ok:
            return f"{self.host}: FAILED: {self.error}"
        if not self.uploaded and not self.installed and not self.venv_created:
            return f"{self.host}: up to date: nothing changed, nothing transferred"
        parts = []
        if self.uploaded:
            parts.append(f"transferred {len(self.uploaded)} files ({self.uploaded_bytes / 1e6:.2f} MB)")
        if self.venv_created:
            parts.append("created venv")
        if self.installed:
            parts.append(f"installed {self.installed}")
        return f"{self.host}: " + ", ".join(parts)


def build_wheel(dest: Path) -> Path:
    """The project's wheel from this source tree (a copy of the packaged folders: the checkout gets no build/)."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in cfg["tool"]["setuptools"]["packages"]["find"]["include"]}
    with tempfile.TemporaryDirectory(prefix="genet-wheel-") as tmp:
        src = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in packages:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, src / name, ignore=ignore)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (REPO / name).is_file():
                shutil.copy2(REPO / name, src / name)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
        res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                              "-w", str(dest), str(src)], capture_output=True, text=True, timeout=600, env=env)
        if res.returncode != 0:
            raise GenetRuntimeError(f"building the genet wheel failed: {(res.stderr or res.stdout).strip()[-500:]}")
    wheels = sorted(dest.glob("genet_testbed-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise GenetRuntimeError("building the genet wheel produced no genet_testbed-*.whl")
    return wheels[-1]


def wheel_digest(wheel: Path) -> str:
    """SHA-256 over the wheel's RECORD (every file's own hash): equal for equal contents."""
    with zipfile.ZipFile(wheel) as z:
        rec = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
        if not rec:
            raise BadInputError(f"{wheel}: not a wheel (no RECORD)")
        lines = sorted(line for line in z.read(rec[0]).decode().splitlines() if not line.split(",")[0].endswith("RECORD"))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path, patterns: tuple[str, ...] = ("*",)) -> dict[str, Path]:
    out = {}
    for pat in patterns:
        for p in sorted(root.rglob(pat)):
            if p.is_file() and "__pycache__" not in p.parts:
                out[str(p.relative_to(root))] = p
    return out


def remote_model_name(model: Path) -> str:
    """A model's file name on the hosts: content-addressed (``<sha256[:12]>-<name>``), so models of the same
    name from different folders never collide and a campaign finds the exact model it names."""
    return f"{_sha256(model)[:12]}-{model.name}"


def model_files(root: Path) -> dict[str, Path]:
    """Remote name -> local file for every ONNX model under ``root`` and its metadata JSON beside it."""
    out = {}
    for m in sorted(root.rglob("*.onnx")):
        name = remote_model_name(m)
        out[name] = m
        meta = m.with_suffix(".json")
        if meta.is_file():
            out[name[:-len(".onnx")] + ".json"] = meta
    return out


def push(inv: Inventory, wheelhouse: str | None = None, model_dirs: list[str] | None = None,
         video_dirs: list[str] | None = None, wheel: str | None = None, system_site_packages: bool = False,
         accept_new: bool = False, host_names: list[str] | None = None) -> list[PushResult]:
    names = host_names or list(inv.hosts)
    for n in names:
        if n not in inv.hosts:
            raise BadInputError(f"--hosts: {n!r} is not a host of {inv.file} ({', '.join(inv.hosts)})")
    trees: list[tuple[str, dict[str, Path]]] = []  # (remote dir under the work dir, files)
    models: dict[str, Path] = {}
    for d in (model_dirs if model_dirs is not None else [str(REPO / "models")]):
        p = Path(d)
        if not p.is_dir():
            raise BadInputError(f"--models: {d} is not a directory")
        models.update(model_files(p))
    trees.append(("models", models))
    for d in video_dirs or []:
        p = Path(d)
        if not p.is_dir():
            raise BadInputError(f"--video: {d} is not a directory")
        trees.append((f"videos/{p.resolve().name}", _files(p)))
    if wheelhouse is not None:
        p = Path(wheelhouse)
        if not p.is_dir() or not list(p.glob("*.whl")):
            raise BadInputError(f"--wheelhouse: {wheelhouse} is not a directory of wheels")
        trees.append(("wheelhouse", _files(p, ("*.whl",))))
    with tempfile.TemporaryDirectory(prefix="genet-push-") as tmp:
        whl = Path(wheel) if wheel else build_wheel(Path(tmp))
        if not whl.is_file():
            raise BadInputError(f"--wheel: {wheel} does not exist")
        digest = wheel_digest(whl)
        local_sha = {str(p): _sha256(p) for _, files in trees for p in files.values()}

        def one(name: str) -> PushResult:
            return _push_host(inv.hosts[name], whl, digest, trees, local_sha, wheelhouse is not None,
                              system_site_packages, accept_new)

        with ThreadPoolExecutor(max_workers=min(4, len(names))) as ex:
            return list(ex.map(one, names))


def _push_host(host: HostSpec, whl: Path, digest: str, trees, local_sha: dict, use_wheelhouse: bool,
               system_site: bool, accept_new: bool) -> PushResult:
    r = PushResult(host.name)
    try:
        with Session(host, accept_new=accept_new) as s:
            for sub, files in trees:
                remote_dir = s.remote_path(sub)
                s.mkdirs(remote_dir)
                have = s.helper("manifest", remote_dir, timeout_s=300)
                for rel, p in files.items():
                    if have.get(rel, [None, None])[1] != local_sha[str(p)]:
                        r.uploaded_bytes += s.put(p, f"{remote_dir}/{rel}")
                        r.uploaded.append(f"{sub}/{rel}")
            venv = s.remote_path("venv")
            py = f"{venv}/bin/python"
            if s.run(["test", "-x", py], check=False).exit_status != 0:
                s.run([host.python, "-m", "venv", *(["--system-site-packages"] if system_site else []), venv],
                      timeout_s=300)
                r.venv_created = True
            marker = f"{venv}/.genet-wheel.json"
            cur = s.run(["cat", marker], check=False).stdout.strip()
            if cur != digest:
                remote_whl = s.remote_path("dist", whl.name)
                r.uploaded_bytes += s.put(whl, remote_whl)
                r.uploaded.append(f"dist/{whl.name}")
                idx = ["--no-index", "--find-links", s.remote_path("wheelhouse")] if use_wheelhouse else []
                # --no-compile: modules are byte-compiled on first import instead (much faster installs)
                base = [py, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--no-compile", "-q"]
                s.run(base + idx + [remote_whl], timeout_s=PIP_TIMEOUT_S)                  # dependencies
                s.run(base + idx + ["--force-reinstall", "--no-deps", remote_whl], timeout_s=PIP_TIMEOUT_S)
                s.run([py, "-c", "import genet, sender, player"], timeout_s=120)
                s.run(["sh", "-c", 'printf %s "$1" > "$2.part" && mv "$2.part" "$2"', "sh", digest, marker])
                r.installed = whl.name
        r.ok = True
    except RemoteError as exc:
        r.error = str(exc)
    return r
