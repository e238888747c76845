"""The video: bitrate ladder and per-chunk sizes (genet-simulators.md §1.1).

Chunk sizes come from ``video_size_<q>`` files, one per quality index ``q``
(0 = lowest bitrate), each holding one size in **bytes** per line; only the
first whitespace-separated token of a line is read (as Pensieve/Genet do);
or from one JSON table (:data:`TABLE_NAME` in a video directory, or any
``.json`` file): ``{"name", "bitrates_kbps", "chunk_length_s",
"chunk_sizes_bytes": [[level 0 sizes...], ...]}``.

The EnvivioDash3 table (49 chunks of 4 s, Pensieve's ``video_size_0..5``)
ships with the package (``genet/abr/data/envivio_dash3.json``) and is the
default video everywhere: :func:`default_video`, ``--video envivio``.

Chunk length and video length are environment properties (the ABR config
space's ``chunk_length_s`` and ``video_length_s``). Genet never varies them
(§3.1); genet-testbed's own rule, used by :meth:`Video.chunk_sizes_for`, is:
sizes scale by ``chunk_length_s / source_chunk_length_s`` and the size list is
looped when the video has more chunks than the files.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The EnvivioDash3 bitrate ladder in kbps (Pensieve/Genet VIDEO_BIT_RATE).
ENVIVIO_BITRATES_KBPS = (300, 750, 1200, 1850, 2850, 4300)


#: The shipped EnvivioDash3 chunk-size table.
ENVIVIO_TABLE = Path(__file__).resolve().parent / "data" / "envivio_dash3.json"
#: Name of the JSON chunk-size table in a video directory (written by ``genet player make-video``).
TABLE_NAME = "video.json"
#: Names ``--video`` accepts besides a path.
BUILTIN_VIDEOS = {"envivio": ENVIVIO_TABLE}


class VideoFormatError(BadInputError):
    """Bad video description (size files)."""


@dataclass(frozen=True, eq=False)
class Video:
    """A video ladder with per-chunk sizes.

    bitrates_kbps: the ladder, lowest first (e.g. (300, ..., 4300))
    chunk_sizes_bytes: array (levels, n_chunks) of chunk sizes in bytes
    chunk_length_s: playback duration of one chunk in the size files (4.0)
    source: where the sizes came from (a directory, or "")
    """

    bitrates_kbps: tuple[int, ...]
    chunk_sizes_bytes: np.ndarray
    chunk_length_s: float = 4.0
    source: str = ""

    def __post_init__(self) -> None:
        sizes = np.asarray(self.chunk_sizes_bytes, dtype=np.float64)
        object.__setattr__(self, "chunk_sizes_bytes", sizes)
        if sizes.ndim != 2 or sizes.shape[0] != len(self.bitrates_kbps):
            raise VideoFormatError(f"{self.source or 'video'}: chunk_sizes_bytes has shape {sizes.shape}, "
                                   f"expected ({len(self.bitrates_kbps)}, n_chunks)")
        if sizes.shape[1] == 0 or np.any(sizes <= 0):
            raise VideoFormatError(f"{self.source or 'video'}: chunk sizes must be positive")

    @property
    def n_levels(self) -> int:
        return len(self.bitrates_kbps)

    @property
    def n_source_chunks(self) -> int:
        return int(self.chunk_sizes_bytes.shape[1])

    def chunk_sizes_for(self, n_chunks: int, chunk_length_s: float | None = None) -> np.ndarray:
        """Sizes (levels, n_chunks) for a video of ``n_chunks`` chunks of ``chunk_length_s``
        (scaled by chunk_length_s / self.chunk_length_s, the size list looped)."""
        if n_chunks < 1:
            raise VideoFormatError(f"a video needs at least one chunk, got n_chunks={n_chunks}")
        idx = np.arange(n_chunks) % self.n_source_chunks
        sizes = self.chunk_sizes_bytes[:, idx]
        if chunk_length_s is not None and chunk_length_s != self.chunk_length_s:
            sizes = sizes * (float(chunk_length_s) / self.chunk_length_s)
        return sizes


def _read_size_file(path: Path) -> list[float]:
    sizes = []
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            tok = line.split()
            if not tok:
                continue
            try:
                value = int(tok[0])
            except ValueError:
                raise VideoFormatError(f"{path}:{lineno}: chunk size must be an integer number of bytes, "
                                       f"got {tok[0]!r}") from None
            if value <= 0:
                raise VideoFormatError(f"{path}:{lineno}: chunk size must be positive, got {value}")
            sizes.append(float(value))
    if not sizes:
        raise VideoFormatError(f"{path}: no chunk sizes")
    return sizes


def load_video_table(path: str | os.PathLike) -> Video:
    """Read a JSON chunk-size table (see the module docstring); errors name the file and field."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise VideoFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise VideoFormatError(f"{path}: expected a JSON object with bitrates_kbps and chunk_sizes_bytes")
    for key in ("bitrates_kbps", "chunk_sizes_bytes"):
        if key not in doc:
            raise VideoFormatError(f"{path}: missing field {key!r}")
    try:
        bitrates = tuple(int(b) for b in doc["bitrates_kbps"])
        sizes = np.array([[float(int(x)) for x in row] for row in doc["chunk_sizes_bytes"]])
        chunk_s = float(doc.get("chunk_length_s", 4.0))
    except (TypeError, ValueError) as exc:
        raise VideoFormatError(f"{path}: bitrates_kbps / chunk_sizes_bytes must hold integers, "
                               f"chunk_length_s a number ({exc})") from None
    if list(bitrates) != sorted(bitrates) or len(set(bitrates)) != len(bitrates):
        raise VideoFormatError(f"{path}: bitrates_kbps must increase strictly (lowest first), got {list(bitrates)}")
    if not chunk_s > 0:
        raise VideoFormatError(f"{path}: chunk_length_s must be positive, got {chunk_s}")
    return Video(bitrates, sizes, chunk_s, str(path))


def default_video() -> Video:
    """The shipped EnvivioDash3 table (no ../shared needed)."""
    return load_video_table(ENVIVIO_TABLE)


def resolve_video(spec: str | os.PathLike | None) -> Video:
    """A video from ``--video``: None or a builtin name ("envivio"), a JSON table, or a directory
    (its ``video.json`` if present, else ``video_size_0..5``)."""
    if spec is None or str(spec) in BUILTIN_VIDEOS:
        return load_video_table(BUILTIN_VIDEOS[str(spec or "envivio")])
    return load_video(spec)


def load_video(directory: str | os.PathLike, bitrates_kbps: tuple[int, ...] = ENVIVIO_BITRATES_KBPS,
               chunk_length_s: float = 4.0, prefix: str = "video_size_") -> Video:
    """Read ``<directory>/video_size_0 .. video_size_<L-1>`` (bytes per chunk, one per line), or a
    JSON table (a ``.json`` file, or ``<directory>/video.json`` when present).

    All files must hold the same number of chunks (else VideoFormatError naming the files)."""
    directory = Path(directory)
    if directory.is_file() and directory.suffix == ".json":
        return load_video_table(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"video directory {directory} does not exist")
    if (directory / TABLE_NAME).is_file():  # the table carries its own ladder
        return load_video_table(directory / TABLE_NAME)
    rows, counts = [], {}
    for q in range(len(bitrates_kbps)):
        path = directory / f"{prefix}{q}"
        if not path.is_file():
            raise VideoFormatError(f"{directory}: missing {path.name} (need {prefix}0..{prefix}"
                                   f"{len(bitrates_kbps) - 1} for a {len(bitrates_kbps)}-level ladder)")
        rows.append(_read_size_file(path))
        counts[path.name] = len(rows[-1])
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
        raise VideoFormatError(f"{directory}: size files hold different numbers of chunks ({detail})")
    return Video(tuple(int(b) for b in bitrates_kbps), np.array(rows), float(chunk_length_s), str(directory))


def constant_bitrate_video(bitrates_kbps: tuple[int, ...] = ENVIVIO_BITRATES_KBPS, n_chunks: int = 49,
                           chunk_length_s: float = 4.0) -> Video:
    """A stand-in video whose chunks are exactly bitrate x chunk length (for use without size files)."""
    per_chunk = np.array([b * 1000.0 / 8.0 * chunk_length_s for b in bitrates_kbps])
    return Video(tuple(bitrates_kbps), np.repeat(per_chunk[:, None], n_chunks, axis=1).round(), chunk_length_s,
                 "constant-bitrate")


def write_video_table(video: Video, path: str | os.PathLike, name: str = "") -> Path:
    """Write ``video`` as a JSON chunk-size table (atomically)."""
    from foundation.atomic import atomic_text_writer
    path = Path(path)
    doc = {"name": name or Path(video.source).stem or "video", "bitrates_kbps": [int(b) for b in video.bitrates_kbps],
           "chunk_length_s": float(video.chunk_length_s),
           "chunk_sizes_bytes": [[int(x) for x in row] for row in video.chunk_sizes_bytes]}
    with atomic_text_writer(path) as fh:
        fh.write(json.dumps(doc) + "\n")
    return path


@dataclass(frozen=True, eq=False)
class SessionVideos:
    """What a batch of sessions plays: the argument of ``Policy.bind`` for ABR (genet/policy.py).

    bitrates_kbps: the ladder, lowest first (levels,)
    chunk_sizes_bytes: (n_sessions, levels, >= max n_chunks) sizes, bytes
    n_chunks: (n_sessions,) chunks in each session's video
    chunk_length_s: (n_sessions,) playback seconds per chunk
    source_sizes_bytes: (levels, n) the video's own table (for look-ahead past the end), or None
    """

    bitrates_kbps: np.ndarray
    chunk_sizes_bytes: np.ndarray
    n_chunks: np.ndarray
    chunk_length_s: np.ndarray
    source_sizes_bytes: np.ndarray | None = None

    def __post_init__(self) -> None:
        sizes = np.asarray(self.chunk_sizes_bytes, dtype=np.float64)
        if sizes.ndim != 3:
            raise VideoFormatError(f"SessionVideos.chunk_sizes_bytes must be (n_sessions, levels, chunks), "
                                   f"got shape {sizes.shape}")
        n = sizes.shape[0]
        object.__setattr__(self, "chunk_sizes_bytes", sizes)
        object.__setattr__(self, "bitrates_kbps", np.asarray(self.bitrates_kbps, dtype=np.float64))
        object.__setattr__(self, "n_chunks", np.broadcast_to(np.asarray(self.n_chunks, np.int64), (n,)).copy())
        object.__setattr__(self, "chunk_length_s",
                           np.broadcast_to(np.asarray(self.chunk_length_s, np.float64), (n,)).copy())
        if self.bitrates_kbps.shape != (sizes.shape[1],):
            raise VideoFormatError(f"SessionVideos: {len(self.bitrates_kbps)} bitrates for {sizes.shape[1]} levels")

    @property
    def n_sessions(self) -> int:
        return int(self.chunk_sizes_bytes.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.chunk_sizes_bytes.shape[1])

    @classmethod
    def from_video(cls, video: Video, n_sessions: int = 1, n_chunks: int | None = None) -> "SessionVideos":
        """``n_sessions`` sessions that all play ``video`` (its first ``n_chunks`` chunks; all by default)."""
        c = video.n_source_chunks if n_chunks is None else int(n_chunks)
        table = video.chunk_sizes_for(c)
        sizes = np.repeat(table[None], int(n_sessions), axis=0)
        return cls(np.asarray(video.bitrates_kbps, np.float64), sizes, c, video.chunk_length_s,
                   video.chunk_sizes_bytes)
