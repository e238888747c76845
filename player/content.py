"""Video content the server plays out: a directory with an MPD, a chunk-size table and the segments.

Layout of a video directory (Pensieve's, testbeds.md §2.1; quality index q = 0 is the lowest level)::

    DIR/manifest.mpd             static DASH MPD (isoff-live profile, SegmentTemplate)
    DIR/video.json               chunk-size table: bitrates_kbps, chunk_length_s, chunk_sizes_bytes [q][k]
    DIR/video<L-q>/Header.m4s    initialisation segment of level q (L levels: video1 is the top level)
    DIR/video<L-q>/<k+1>.m4s     media segment k (0-based k; numbers start at 1 as in Pensieve)

Two kinds, served the same way:

* **sized** (:func:`write_sized_video`): every media segment holds exactly the bytes of the chunk-size
  table (sparse files of zeros: no disk space, same bytes on the wire as the simulator moves). The
  headless player needs nothing else; a browser cannot decode them.
* **encoded** (:func:`make_encoded_video`, ``genet player make-video``): a synthetic test video encoded
  by ffmpeg (libx264 or libvpx-vp9, CBR at each ladder bitrate, one key frame per segment), whose own
  table is written from the real segment sizes — so the simulator can replay exactly that video.

:func:`segment_path` is the one URL <-> file rule (server, player and MPD use it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genet.abr.video import TABLE_NAME, Video, load_video_table, resolve_video, write_video_table
from foundation.errors import BadInputError, GenetRuntimeError

MPD_NAME = "manifest.mpd"
INIT_NAME = "Header.m4s"
#: Pensieve's EnvivioDash3 resolutions, lowest level first.
RESOLUTIONS = ((320, 180), (640, 360), (768, 432), (1024, 576), (1280, 720), (1920, 1080))
#: Size of a sized video's initialisation segments, bytes (not in the table; the headless player skips them).
SIZED_INIT_BYTES = 1024


class ContentError(BadInputError):
    """A video directory that cannot be served or played (names the file)."""


def representation_id(quality: int, n_levels: int) -> str:
    """Pensieve's naming: the top level is ``video1``, the lowest ``video<L>``."""
    return f"video{n_levels - int(quality)}"


def segment_path(quality: int, chunk_index: int, n_levels: int) -> str:
    """URL path (relative to the video root) of media chunk ``chunk_index`` (0-based) of level ``quality``."""
    return f"{representation_id(quality, n_levels)}/{int(chunk_index) + 1}.m4s"


def init_path(quality: int, n_levels: int) -> str:
    return f"{representation_id(quality, n_levels)}/{INIT_NAME}"


@dataclass(frozen=True)
class VideoContent:
    """A servable video directory: root (Path), video (the table), kind ("sized" or "encoded"),
    codec ("h264", "vp9" or "" for sized)."""

    root: Path
    video: Video
    kind: str
    codec: str = ""

    @property
    def n_chunks(self) -> int:
        return self.video.n_source_chunks


def load_content(root: str | os.PathLike) -> VideoContent:
    """Open a video directory (checks the table and that every segment is present with its table size)."""
    root = Path(root)
    table = root / TABLE_NAME
    if not table.is_file():
        raise ContentError(f"{root}: no {TABLE_NAME} (make one with `genet player make-video`)")
    video = load_video_table(table)
    meta = json.loads(table.read_text(encoding="utf-8"))
    n_levels = video.n_levels
    for q in range(n_levels):
        for k in range(video.n_source_chunks):
            p = root / segment_path(q, k, n_levels)
            if not p.is_file():
                raise ContentError(f"{root}: missing segment {p.relative_to(root)} (level {q}, chunk {k})")
            if p.stat().st_size != int(video.chunk_sizes_bytes[q, k]):
                raise ContentError(f"{p}: {p.stat().st_size} bytes but {table.name} says "
                                   f"{int(video.chunk_sizes_bytes[q, k])}")
    return VideoContent(root, video, str(meta.get("kind", "sized")), str(meta.get("codec", "")))


def write_mpd(root: Path, video: Video, codec: str = "h264", codecs: list[str] | None = None) -> Path:
    """A static MPD for ``video`` (valid for dash.js: isoff-live, SegmentTemplate with $Number$);
    codecs: per-level RFC 6381 strings (lowest level first; default one generic string for the codec)."""
    from foundation.atomic import atomic_text_writer
    n_levels = video.n_levels
    duration_s = video.chunk_length_s * video.n_source_chunks
    timescale = 90000
    mime, generic = ("video/webm", "vp09.00.40.08") if codec == "vp9" else ("video/mp4", "avc1.4D401E")
    codecs = list(codecs) if codecs else [generic] * n_levels
    reps = []
    for q in reversed(range(n_levels)):
        w, h = RESOLUTIONS[min(q, len(RESOLUTIONS) - 1)]
        reps.append(f'      <Representation id="{representation_id(q, n_levels)}" bandwidth="'
                    f'{int(video.bitrates_kbps[q]) * 1000}" width="{w}" height="{h}" codecs="{codecs[q]}" '
                    f'frameRate="30" sar="1:1"/>')
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" '
        f'type="static" mediaPresentationDuration="PT{duration_s:.3f}S" minBufferTime="PT{video.chunk_length_s:.3f}S" '
        f'maxSegmentDuration="PT{video.chunk_length_s:.3f}S">\n'
        '  <Period id="0" start="PT0S">\n'
        f'    <AdaptationSet id="0" contentType="video" mimeType="{mime}" segmentAlignment="true" '
        'startWithSAP="1">\n'
        f'      <SegmentTemplate timescale="{timescale}" duration="{int(round(video.chunk_length_s * timescale))}" '
        f'initialization="$RepresentationID$/{INIT_NAME}" media="$RepresentationID$/$Number$.m4s" '
        'startNumber="1"/>\n' + "\n".join(reps) + "\n    </AdaptationSet>\n  </Period>\n</MPD>\n")
    path = root / MPD_NAME
    with atomic_text_writer(path) as fh:
        fh.write(text)
    return path


def _write_table(root: Path, video: Video, name: str, kind: str, codec: str, codecs: list[str] | None = None) -> None:
    write_video_table(video, root / TABLE_NAME, name=name)
    doc = json.loads((root / TABLE_NAME).read_text())
    doc.update(kind=kind, codec=codec)
    if codecs:
        doc["codecs"] = codecs
    from foundation.atomic import atomic_text_writer
    with atomic_text_writer(root / TABLE_NAME) as fh:
        fh.write(json.dumps(doc) + "\n")


def write_sized_video(root: str | os.PathLike, video: Video | str | None = None,
                      n_chunks: int | None = None) -> VideoContent:
    """A sized video directory for ``video`` (a Video, a ``--video`` spec, None = EnvivioDash3), its first
    ``n_chunks`` chunks (all by default). Segments are sparse files of exactly the table's sizes."""
    if not isinstance(video, Video):
        video = resolve_video(video)
    if n_chunks is not None:
        if not 1 <= int(n_chunks) <= video.n_source_chunks:
            raise BadInputError(f"n_chunks must be in [1, {video.n_source_chunks}], got {n_chunks}")
        video = Video(video.bitrates_kbps, video.chunk_sizes_bytes[:, : int(n_chunks)], video.chunk_length_s,
                      video.source)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_levels = video.n_levels
    for q in range(n_levels):
        (root / representation_id(q, n_levels)).mkdir(exist_ok=True)
        with open(root / init_path(q, n_levels), "wb") as fh:
            fh.truncate(SIZED_INIT_BYTES)
        for k in range(video.n_source_chunks):
            with open(root / segment_path(q, k, n_levels), "wb") as fh:
                fh.truncate(int(video.chunk_sizes_bytes[q, k]))
    _write_table(root, video, Path(video.source).stem or "sized", "sized", "")
    write_mpd(root, video, "h264")
    return VideoContent(root, video, "sized", "")


def make_encoded_video(root: str | os.PathLike, duration_s: float = 32.0, codec: str = "h264",
                       bitrates_kbps: tuple[int, ...] = (300, 750, 1200, 1850, 2850, 4300),
                       chunk_length_s: float = 4.0, ffmpeg: str = "ffmpeg") -> VideoContent:
    """Encode a synthetic test video (ffmpeg's ``testsrc2``) into the ladder, CBR, ``chunk_length_s``
    segments with one key frame each, in the layout above; the table holds the real segment sizes."""
    if codec not in ("h264", "vp9"):
        raise BadInputError(f"codec must be h264 or vp9, got {codec!r}")
    if shutil.which(ffmpeg) is None:
        raise GenetRuntimeError(f"{ffmpeg} not found: install Debian's ffmpeg (scripts/provision.sh does)")
    n_chunks = int(round(duration_s / chunk_length_s))
    if n_chunks < 1:
        raise BadInputError(f"--duration-s {duration_s} is shorter than one {chunk_length_s}-s segment")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_levels = len(bitrates_kbps)
    fps = 30
    gop = int(round(chunk_length_s * fps))
    sizes = np.zeros((n_levels, n_chunks))
    codecs: list[str] = []
    for q, kbps in enumerate(bitrates_kbps):
        w, h = RESOLUTIONS[min(q, len(RESOLUTIONS) - 1)]
        with tempfile.TemporaryDirectory(prefix="genet-enc-", dir=root) as tmp:
            if codec == "h264":
                enc = ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main",
                       "-x264-params", f"nal-hrd=cbr:force-cfr=1:keyint={gop}:min-keyint={gop}:scenecut=0",
                       "-pix_fmt", "yuv420p"]
                ext = "mp4"
            else:
                enc = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
                       "-keyint_min", str(gop), "-g", str(gop), "-pix_fmt", "yuv420p"]
                ext = "webm"
            cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                   f"testsrc2=size={w}x{h}:rate={fps}:duration={n_chunks * chunk_length_s}", *enc,
                   "-b:v", f"{kbps}k", "-minrate", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k",
                   "-g", str(gop), "-threads", "2", "-f", "dash", "-seg_duration", str(chunk_length_s),
                   "-use_template", "1", "-use_timeline", "0", "-init_seg_name", f"init.{ext}",
                   "-media_seg_name", f"seg-$Number$.{ext}", str(Path(tmp) / "out.mpd")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise GenetRuntimeError(f"ffmpeg failed for level {q} ({kbps} kbps): {proc.stderr.strip()[-500:]}")
            found = re.search(r'codecs="([^"]+)"', (Path(tmp) / "out.mpd").read_text())
            codecs.append(found.group(1) if found else "")
            segs = sorted(Path(tmp).glob(f"seg-*.{ext}"), key=lambda p: int(p.stem.split("-")[1]))
            if len(segs) != n_chunks:
                raise GenetRuntimeError(f"ffmpeg wrote {len(segs)} segments for level {q}, expected {n_chunks}")
            rep = root / representation_id(q, n_levels)
            rep.mkdir(exist_ok=True)
            shutil.move(str(Path(tmp) / f"init.{ext}"), rep / INIT_NAME)
            for k, seg in enumerate(segs):
                sizes[q, k] = seg.stat().st_size
                shutil.move(str(seg), rep / f"{k + 1}.m4s")
    video = Video(tuple(int(b) for b in bitrates_kbps), sizes, float(chunk_length_s), str(root))
    _write_table(root, video, f"testsrc2-{codec}", "encoded", codec, codecs)
    write_mpd(root, video, codec, codecs if all(codecs) else None)
    return VideoContent(root, video, "encoded", codec)


__all__ = ["VideoContent", "ContentError", "load_content", "write_sized_video", "make_encoded_video", "write_mpd",
           "segment_path", "init_path", "representation_id", "MPD_NAME"]
