"""Atomic text writes: all-or-nothing at the destination, no temporary left behind, shareable permissions."""

from __future__ import annotations

import os
import stat

import pytest

from modelpress.atomic import write_text_atomic


def test_writes_the_text_with_readable_permissions(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "page.html", "<p>é</p>")
    assert path.read_text(encoding="utf-8") == "<p>é</p>"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["page.html"]


def test_replaces_an_existing_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_a_failed_write_leaves_the_old_content_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old")

    def failing_fsync(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
