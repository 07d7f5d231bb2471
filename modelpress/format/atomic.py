"""Atomic file replacement: write a temporary file beside the destination, fsync it, rename it over the destination.

Readers never see a half-written file, and a failure at any point, ``KeyboardInterrupt`` included, leaves the
destination as it was and no temporary file behind.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "out.bin"
    >>> write_atomic(path, [b"ab", b"cd"]), path.read_bytes()
    (4, b'abcd')
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, chunks: Iterable[bytes]) -> int:
    """Write the concatenated ``chunks`` to ``path`` atomically; returns the bytes written.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> def failing():
        ...     yield b"partial"
        ...     raise KeyboardInterrupt
        >>> try:
        ...     write_atomic(folder / "x.bin", failing())
        ... except KeyboardInterrupt:
        ...     pass
        >>> sorted(p.name for p in folder.iterdir())
        []
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    written = 0
    try:
        # O_EXCL: never clobber a file we did not create; mode 0o666 lets the umask decide like open() does.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)
    return written


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); platforms that cannot open directories skip it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
