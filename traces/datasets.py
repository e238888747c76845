"""Public trace datasets: names, where they are published, and a verified download.

``genet traces fetch NAME --dest DIR`` downloads every file of a named set
from its published location (the Genet repository's public files, pinned to
one commit), checks each file's SHA-256 against the manifest shipped with
genet-testbed (``traces/spaces/datasets.json``), and writes it atomically
under ``DIR/NAME/``. A file already present with the right checksum is not
downloaded again, so an interrupted fetch resumes.

``--base-url URL`` replaces the published location by a mirror laid out as
``URL/<mirror_path>/<file>`` (``abr/fcc-val/...``, ``cc/pantheon-cellular/...``),
which is how a lab without GitHub access serves its own copy (and how the
tests exercise this path against a local HTTP server).

``fetch_archive`` downloads a ``.tar.gz``/``.tgz``/``.zip`` archive, checks
its SHA-256 and unpacks it safely (no absolute paths, no ``..``).
"""

from __future__ import annotations

from genet.errors import GenetRuntimeError

import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from genet.atomic import atomic_write_bytes

MANIFEST_PATH = Path(__file__).with_name("spaces") / "datasets.json"
#: Published location of every set: the Genet repository at a pinned commit.
GENET_RAW = "https://raw.githubusercontent.com/GenetProject/Genet/6adabdcc2b95cb924f051fa8edbc7c6a24f2a7ec"


class DatasetError(GenetRuntimeError):
    """A dataset name, download or checksum problem (the message names the file or URL)."""


@dataclass(frozen=True)
class Dataset:
    """name: set name; upstream: published URL of its folder; mirror_path: folder in a
    mirror / in ../shared/traces; files: {relative path: sha256}; description: one line."""

    name: str
    upstream: str
    mirror_path: str
    files: dict[str, str]
    description: str = ""


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Dataset]:
    raw = json.loads(path.read_text())
    return {name: Dataset(name, d["upstream"], d["mirror_path"], d["files"], d.get("description", ""))
            for name, d in raw["datasets"].items()}


def get_dataset(name: str) -> Dataset:
    sets = load_manifest()
    if name not in sets:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(sets))}")
    return sets[name]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"download failed: {url}: {reason} (no network? use --base-url for a mirror)") from None


def file_url(dataset: Dataset, rel: str, base_url: str | None) -> str:
    quoted = urllib.parse.quote(rel)
    if base_url:
        return f"{base_url.rstrip('/')}/{dataset.mirror_path}/{quoted}"
    return f"{dataset.upstream}/{quoted}"


def fetch_dataset(name: str, dest: str | os.PathLike, base_url: str | None = None, timeout_s: float = 30.0,
                  progress: Callable[[Iterable], Iterable] | None = None) -> Path:
    """Download, verify and store dataset ``name`` under ``dest/name``; returns that folder."""
    dataset = get_dataset(name)
    out_dir = Path(dest) / name
    items = sorted(dataset.files.items())
    for rel, digest in (progress(items) if progress else items):
        target = out_dir / rel
        if target.is_file() and sha256_file(target) == digest:
            continue
        url = file_url(dataset, rel, base_url)
        data = _download(url, timeout_s)
        got = sha256_bytes(data)
        if got != digest:
            raise DatasetError(f"checksum mismatch for {url}: expected sha256 {digest}, got {got}; "
                               "nothing was written for this file")
        atomic_write_bytes(target, data)
    return out_dir


def _safe_member(name: str, where: str) -> str:
    p = Path(name)
    if p.is_absolute() or ".." in p.parts:
        raise DatasetError(f"{where}: refusing unsafe archive member {name!r}")
    return name


def fetch_archive(url: str, dest: str | os.PathLike, sha256: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download an archive, check its SHA-256 (when given) and unpack it into ``dest``."""
    data = _download(url, timeout_s)
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise DatasetError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {sha256_bytes(data)}")
    dest = Path(dest)
    lower = urllib.parse.urlparse(url).path.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                atomic_write_bytes(dest / _safe_member(info.filename, url), zf.read(info))
    elif lower.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            for member in tf.getmembers():
                if not member.isfile():
                    continue
                fh = tf.extractfile(member)
                atomic_write_bytes(dest / _safe_member(member.name, url), fh.read())
    else:
        raise DatasetError(f"{url}: unknown archive type (expected .tar.gz, .tgz, .tar or .zip)")
    return dest


def build_manifest_entry(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder`` (used to write the manifest)."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
