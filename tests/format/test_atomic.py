"""Writes are atomic: an exception or KeyboardInterrupt at any point leaves no file at the destination (or the old
file intact) and no temporary file behind."""

from __future__ import annotations

import os

import pytest
import torch

import modelpress.atomic as atomic
from modelpress.format import read_file, write_file

TENSORS = {"w": torch.randn(20, 20), "b": torch.zeros(20)}


class Boom(Exception):
    pass


def fail_on(monkeypatch, target: str, exception: BaseException) -> None:
    """Make ``os.<target>`` (as the atomic writer calls it) raise ``exception``."""

    def failing(*args, **kwargs):
        raise exception

    monkeypatch.setattr(atomic.os, target, failing)


@pytest.mark.parametrize("exception", [Boom("disk full"), KeyboardInterrupt()], ids=["error", "interrupt"])
@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_failed_write_leaves_nothing(tmp_path, monkeypatch, target, exception):
    fail_on(monkeypatch, target, exception)
    with pytest.raises(type(exception)):
        write_file(tmp_path / "model.mpz", TENSORS, {"v": 1})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exception", [Boom("disk full"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_interrupt_in_the_middle_of_writing_keeps_the_old_file(tmp_path, monkeypatch, exception):
    path = tmp_path / "model.mpz"
    write_file(path, {"old": torch.ones(3)}, {"version": "old"})
    before = path.read_bytes()
    calls = []
    real_fdopen = os.fdopen

    class HalfWriter:
        """A file object that writes the first chunk, then fails on the second."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, chunk):
            calls.append(len(chunk))
            if len(calls) == 2:
                raise exception
            return self.handle.write(chunk)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(type(exception)):
        write_file(path, TENSORS, {"version": "new"})
    assert len(calls) == 2  # the header was written, the first payload was not
    assert [p.name for p in tmp_path.iterdir()] == ["model.mpz"]
    assert path.read_bytes() == before
    assert read_file(path)[1] == {"version": "old"}


def test_interrupt_while_encoding_touches_nothing(tmp_path, monkeypatch):
    import modelpress.format.writer as writer

    def interrupted(tensor, name):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "encode_tensor", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "model.mpz", TENSORS, {})
    assert list(tmp_path.iterdir()) == []


def test_successful_write_replaces_and_respects_umask(tmp_path):
    path = tmp_path / "model.mpz"
    write_file(path, {"a": torch.zeros(1)}, {})
    size = write_file(path, TENSORS, {"second": True})
    assert path.stat().st_size == size
    assert read_file(path)[1] == {"second": True}
    assert [p.name for p in tmp_path.iterdir()] == ["model.mpz"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
