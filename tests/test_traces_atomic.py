"""Atomic writers: the file appears only when the write succeeds, with the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from foundation.atomic import FILE_MODE, atomic_text_writer, atomic_write_bytes, atomic_write_text


def test_finished_files_get_umask_permissions_not_mkstemp_0600(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00")
    for name in ("a.txt", "b.bin"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == FILE_MODE  # 0644 under the usual umask 022 (mkstemp alone gives 0600)
    assert (tmp_path / "a.txt").read_text() == "x" and (tmp_path / "b.bin").read_bytes() == b"\x00"


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_text_writer(tmp_path / "c.txt") as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
