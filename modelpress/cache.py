"""Where modelpress keeps what it computes once: trained reference weights and reference embeddings.

``MODELPRESS_CACHE`` overrides the default ``~/.cache/modelpress``. Files are written atomically, so an interrupted
run never leaves a half-written cache entry.

Example:
    >>> import os, tempfile
    >>> os.environ["MODELPRESS_CACHE"] = tempfile.mkdtemp()
    >>> cache_dir().exists()
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "cache_dir"]


def cache_dir() -> Path:
    """The cache directory (created if missing)."""
    path = Path(os.environ.get("MODELPRESS_CACHE", Path.home() / ".cache" / "modelpress"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest`` atomically, on any error (including
    KeyboardInterrupt) it is removed and ``dest`` is left as it was.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
