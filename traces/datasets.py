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

from foundation.errors import GenetRuntimeError

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

from foundation.atomic import atomic_write_bytes

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


# ---- where a named set comes from when a config asks for it by name (issue 32) -------------------------------
#: Small subsets of the public sets, shipped with the package (traces/samples/README.md: which files, terms).
SAMPLES_DIR = Path(__file__).with_name("samples")
#: A folder laid out as the mirror (``abr/fcc-val/...``, ``cc/pantheon-cellular/...``) holding full copies.
TRACES_DIR_ENV = "GENET_TRACES_DIR"
#: ``GENET_OFFLINE=1``: never try the network for a set (the shipped sample, then synthetic traces, are used).
OFFLINE_ENV = "GENET_OFFLINE"


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def use_case_of(name: str) -> str:
    """``abr`` or ``cc``: the use case a named set's traces are for (its mirror folder)."""
    return get_dataset(name).mirror_path.split("/", 1)[0]


def full_copy_roots() -> list[Path]:
    """Folders searched for a full local copy, in order: ``$GENET_TRACES_DIR``, ``$GENET_SHARED/traces``, and
    ``../shared/traces`` beside the repository (this project's development material) or the current folder."""
    roots = []
    if os.environ.get(TRACES_DIR_ENV):
        roots.append(Path(os.environ[TRACES_DIR_ENV]))
    if os.environ.get("GENET_SHARED"):
        roots.append(Path(os.environ["GENET_SHARED"]) / "traces")
    else:
        roots.append(Path(__file__).resolve().parents[1].parent / "shared" / "traces")
        roots.append(Path.cwd().parent / "shared" / "traces")
    out: list[Path] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def find_full_copy(name: str) -> Path | None:
    """A local folder holding every file of set ``name`` (checked by name, not checksum), or None."""
    dataset = get_dataset(name)
    for root in full_copy_roots():
        folder = root / dataset.mirror_path
        if folder.is_dir() and all((folder / rel).is_file() for rel in dataset.files):
            return folder
    return None


def sample_path(name: str) -> Path | None:
    """The shipped sample of set ``name`` (a folder), or None when none is shipped."""
    folder = SAMPLES_DIR / name
    return folder if folder.is_dir() else None


@dataclass(frozen=True)
class DatasetSource:
    """Where the traces of a named set came from: ``kind`` is ``full`` (a local full copy), ``fetched`` (the
    full set, downloaded), ``sample`` (the shipped sample) or ``synthetic`` (generated instead); ``folder``
    holds the traces; ``detail`` is one line for logs and reports."""

    name: str
    kind: str
    folder: Path
    n_files: int
    detail: str

    def as_dict(self) -> dict:
        return {"dataset": self.name, "kind": self.kind, "folder": str(self.folder), "n_files": self.n_files,
                "detail": self.detail}


def obtain_dataset(name: str, dest: str | os.PathLike, *, base_url: str | None = None, n_synthetic: int = 10,
                   synthetic_range: str = "rl3", seed: int = 0, timeout_s: float = 10.0,
                   log: Callable[[str], None] = print) -> DatasetSource:
    """Put set ``name`` into ``dest/name`` from the best source at hand: a download of the full set (unless
    :func:`offline`), else the shipped sample, else ``n_synthetic`` synthetic traces of the set's use case
    (``synthetic_range`` of its config space, ``seed``). A local full copy (:func:`find_full_copy`) is used in
    place by the caller, not copied. Returns where the traces came from."""
    import shutil

    dataset = get_dataset(name)
    out = Path(dest) / name
    total = len(dataset.files)
    if not offline():
        try:
            fetch_dataset(name, dest, base_url=base_url, timeout_s=timeout_s)
            return DatasetSource(name, "fetched", out, total,
                                 f"full set ({total} files), downloaded from {base_url or dataset.upstream}")
        except DatasetError as exc:
            log(f"{name}: could not download the full set ({exc}); using what is at hand")
    else:
        log(f"{name}: {OFFLINE_ENV} is set: not downloading the full set")
    shutil.rmtree(out, ignore_errors=True)
    sample = sample_path(name)
    if sample is not None:
        files = sorted(p for p in sample.rglob("*") if p.is_file() and p.name != "README.md")
        for f in files:
            atomic_write_bytes(out / f.relative_to(sample), f.read_bytes())
        return DatasetSource(name, "sample", out, len(files),
                             f"shipped sample ({len(files)} of the {total} files; traces/samples/{name})")
    from traces.generators import generate_set
    from traces.io import write_trace
    uc = use_case_of(name)
    generated = generate_set(uc, synthetic_range, n_synthetic, seed)
    for t in generated:
        write_trace(t, out / f"{t.name}.json", "json")
    return DatasetSource(name, "synthetic", out, len(generated),
                         f"synthetic stand-in: {len(generated)} {uc} traces of range {synthetic_range}, seed {seed} "
                         f"(no download and no shipped sample of {name})")
