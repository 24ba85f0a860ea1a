"""The one atomic write: complete files or none, the permissions a plain write would give, no temp file left."""

from __future__ import annotations

import os
import stat

import pytest

from fastfcn.utils.io import atomic_write, atomic_write_text, temp_files


def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path) -> None:
    (tmp_path / "plain.txt").write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    mode = lambda name: stat.S_IMODE(os.stat(tmp_path / name).st_mode)  # noqa: E731
    assert mode("atomic.txt") == mode("plain.txt")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = atomic_write_text(tmp_path / "a.json", "old")

    def broken(f) -> None:
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old" and temp_files(target) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
