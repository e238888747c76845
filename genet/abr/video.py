"""The video: bitrate ladder and per-chunk sizes (genet-simulators.md §1.1).

Chunk sizes come from ``video_size_<q>`` files, one per quality index ``q``
(0 = lowest bitrate), each holding one size in **bytes** per line; only the
first whitespace-separated token of a line is read (as Pensieve/Genet do).
The EnvivioDash3 files (``../shared/video/envivio``) hold 49 chunks of 4 s.

Chunk length and video length are environment properties (the ABR config
space's ``chunk_length_s`` and ``video_length_s``). Genet never varies them
(§3.1); genet-testbed's own rule, used by :meth:`Video.chunk_sizes_for`, is:
sizes scale by ``chunk_length_s / source_chunk_length_s`` and the size list is
looped when the video has more chunks than the files.
"""

from __future__ import annotations

from genet.errors import BadInputError

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The EnvivioDash3 bitrate ladder in kbps (Pensieve/Genet VIDEO_BIT_RATE).
ENVIVIO_BITRATES_KBPS = (300, 750, 1200, 1850, 2850, 4300)


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


def load_video(directory: str | os.PathLike, bitrates_kbps: tuple[int, ...] = ENVIVIO_BITRATES_KBPS,
               chunk_length_s: float = 4.0, prefix: str = "video_size_") -> Video:
    """Read ``<directory>/video_size_0 .. video_size_<L-1>`` (bytes per chunk, one per line).

    All files must hold the same number of chunks (else VideoFormatError naming the files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"video directory {directory} does not exist")
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
