"""Atomic file writes: the destination holds either its old content or the complete new content, never a part.

The text is written to a temporary file in the destination's directory (same file system), flushed to disk, then
moved over the destination with :func:`os.replace`. Callers render everything first and write last, so an error
while rendering leaves no file behind either.

Example:
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out" / "report.json"
    >>> write_text_atomic(target, "{}").read_text()
    '{}'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_text_atomic"]

_MODE = 0o644  # a report is a document to share: readable by all, like a file written with open()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating missing parent directories; returns the path.

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "page.html"
        >>> write_text_atomic(target, "<p>hi</p>").name
        'page.html'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, _MODE)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return target
