"""Atomic writes: all or nothing, and the usual file mode."""

from __future__ import annotations

import os

import pytest

from facecompress.core.atomic import atomic_path, write_csv, write_text


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_mode_follows_umask_and_csv_round_trips(tmp_path):
    old = os.umask(0o022)
    try:
        write_csv(tmp_path / "r.csv", [{"model": "a", "x": 1}, {"model": "b", "x": 2}])
    finally:
        os.umask(old)
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "r.csv").read_text() == "model,x\na,1\nb,2\n"
