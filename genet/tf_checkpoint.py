"""Read TensorFlow (1.x/2.x) checkpoints without TensorFlow: the tensor-bundle format.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus ``PREFIX.data-SSSSS-of-NNNNN``:

* ``.index`` is a LevelDB-format SSTable (uncompressed blocks): a 48-byte
  footer (metaindex and index BlockHandles as varints, padding, magic
  0xdb4775248b80fb57) points to the index block, whose entries point to data
  blocks; each block holds prefix-compressed key/value entries followed by a
  restart array. Keys are tensor names; the empty key holds the
  ``BundleHeaderProto`` (num_shards, endianness), every other value is a
  ``BundleEntryProto`` (dtype=1, shape=2, shard_id=3, offset=4, size=5,
  crc32c=6, slices=7).
* the tensor bytes live at ``offset`` (``size`` bytes) in shard ``shard_id``,
  little-endian in the dtype's layout.

Protobuf messages are decoded with a minimal wire-format reader (only the
fields above), so neither TensorFlow nor generated protobuf classes are needed.
"""

from __future__ import annotations

from foundation.errors import BadInputError

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
#: TensorFlow DataType enum -> numpy dtype (the ones a checkpoint of a policy network holds).
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 6: np.int8, 9: np.int64, 10: np.bool_,
          14: np.float16, 19: np.float16}


class CheckpointFormatError(BadInputError):
    """A checkpoint file is not what the tensor-bundle format says it should be."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a bundle: name, dtype (numpy), shape, shard, byte offset and size."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError(f"{where}: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise CheckpointFormatError(f"{where}: malformed varint")


def _proto_fields(buf: bytes, where: str) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message (value: int or bytes)."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos, where)
        elif wire == 1:
            val, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos, where)
            val, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            val, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise CheckpointFormatError(f"{where}: unsupported protobuf wire type {wire}")
        out.append((field, wire, val))
    return out


def _block_entries(data: bytes, offset: int, size: int, where: str) -> list[tuple[bytes, bytes]]:
    if offset + size + 5 > len(data):
        raise CheckpointFormatError(f"{where}: block at {offset} (+{size}) runs past the end ({len(data)} bytes)")
    block = data[offset:offset + size]
    ctype = data[offset + size]
    if ctype != 0:
        raise CheckpointFormatError(f"{where}: block at {offset} is compressed (type {ctype}); only uncompressed "
                                    f"tables are supported")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise CheckpointFormatError(f"{where}: block at {offset} has a bad restart count {n_restarts}")
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, where)
        non_shared, pos = _varint(block, pos, where)
        vlen, pos = _varint(block, pos, where)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        entries.append((key, bytes(block[pos:pos + vlen])))
        pos += vlen
    return entries


def _shape(buf: bytes, where: str) -> tuple[int, ...]:
    dims = []
    for field, _, val in _proto_fields(buf, where):
        if field == 2:  # Dim
            size = 0
            for f2, _, v2 in _proto_fields(val, where):
                if f2 == 1:
                    size = v2 - (1 << 64) if v2 >= 1 << 63 else v2
            dims.append(int(size))
    return tuple(dims)


class TensorBundle:
    """A TF checkpoint read without TensorFlow.

    prefix: the checkpoint prefix (``.../nn_model_ep_9900.ckpt``) or a directory holding exactly one
        checkpoint (the newest ``*.index`` is taken)
    """

    def __init__(self, prefix: str | os.PathLike) -> None:
        self.prefix = resolve_prefix(prefix)
        index_path = Path(str(self.prefix) + ".index")
        data = index_path.read_bytes()
        where = str(index_path)
        if len(data) < FOOTER_BYTES:
            raise CheckpointFormatError(f"{where}: too short ({len(data)} bytes) to be a tensor-bundle index")
        footer = data[-FOOTER_BYTES:]
        magic = struct.unpack_from("<Q", footer, FOOTER_BYTES - 8)[0]
        if magic != TABLE_MAGIC:
            raise CheckpointFormatError(f"{where}: bad table magic {magic:#x} (expected {TABLE_MAGIC:#x}); "
                                        f"not a TF2/TF1-V2 checkpoint index")
        pos = 0
        _, pos = _varint(footer, pos, where)  # metaindex offset
        _, pos = _varint(footer, pos, where)  # metaindex size
        idx_off, pos = _varint(footer, pos, where)
        idx_size, pos = _varint(footer, pos, where)
        self.num_shards = 1
        self.entries: dict[str, TensorEntry] = {}
        for _, handle in _block_entries(data, idx_off, idx_size, where):
            off, p = _varint(handle, 0, where)
            size, _ = _varint(handle, p, where)
            for key, value in _block_entries(data, off, size, where):
                name = key.decode("utf-8", errors="replace")
                if name == "":
                    for field, _, val in _proto_fields(value, where):
                        if field == 1:
                            self.num_shards = int(val)
                    continue
                self.entries[name] = self._entry(name, value, where)

    @staticmethod
    def _entry(name: str, value: bytes, where: str) -> TensorEntry:
        dtype, shape, shard, offset, size = 0, (), 0, 0, 0
        for field, _, val in _proto_fields(value, f"{where}: entry {name!r}"):
            if field == 1:
                dtype = int(val)
            elif field == 2:
                shape = _shape(val, f"{where}: entry {name!r}")
            elif field == 3:
                shard = int(val)
            elif field == 4:
                offset = int(val)
            elif field == 5:
                size = int(val)
            elif field == 7:
                raise CheckpointFormatError(f"{where}: tensor {name!r} is stored in slices (unsupported)")
        if dtype not in DTYPES:
            raise CheckpointFormatError(f"{where}: tensor {name!r} has unsupported dtype enum {dtype}")
        return TensorEntry(name, np.dtype(DTYPES[dtype]), shape, shard, offset, size)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: e.shape for k, e in sorted(self.entries.items())}

    def read(self, name: str) -> np.ndarray:
        if name not in self.entries:
            raise KeyError(f"{self.prefix}: no tensor {name!r}; tensors: {', '.join(self.names())}")
        e = self.entries[name]
        shard = Path(f"{self.prefix}.data-{e.shard_id:05d}-of-{self.num_shards:05d}")
        if not shard.is_file():
            raise FileNotFoundError(f"{shard}: data shard of checkpoint {self.prefix} is missing")
        with open(shard, "rb") as fh:
            fh.seek(e.offset)
            raw = fh.read(e.size)
        n = int(np.prod(e.shape)) if e.shape else 1
        if len(raw) != e.size or e.size != n * e.dtype.itemsize:
            raise CheckpointFormatError(f"{shard}: tensor {name!r} should be {n} x {e.dtype} = "
                                        f"{n * e.dtype.itemsize} bytes at {e.offset}, found {len(raw)} of {e.size}")
        return np.frombuffer(raw, dtype=e.dtype.newbyteorder("<")).reshape(e.shape).copy()


def resolve_prefix(path: str | os.PathLike) -> Path:
    """A checkpoint prefix from a prefix, an ``.index``/``.data-*``/``.meta`` file or a directory."""
    p = Path(path)
    if p.is_dir():
        indexes = sorted(p.glob("*.index"), key=lambda f: f.stat().st_mtime)
        if not indexes:
            raise FileNotFoundError(f"{p}: no checkpoint (*.index file) in this directory")
        return indexes[-1].with_suffix("")
    name = p.name
    for suffix in (".index", ".meta"):
        if name.endswith(suffix):
            return p.with_name(name[: -len(suffix)])
    if ".data-" in name:
        return p.with_name(name.split(".data-")[0])
    if not Path(str(p) + ".index").is_file():
        raise FileNotFoundError(f"{p}: no checkpoint here ({p}.index does not exist)")
    return p
