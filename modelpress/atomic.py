"""Atomic file writes: the destination holds its old content or the complete new content, never a part.

Everything modelpress writes (compressed files, reports, cached weights and embeddings) goes through here: a
temporary file beside the destination (same file system), flushed and fsynced, then renamed over the destination
with :func:`os.replace`. A failure at any point, ``KeyboardInterrupt`` included, leaves the destination as it was
and no temporary file behind. Missing parent directories are created.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "sub" / "out.bin"
    >>> write_atomic(path, [b"ab", b"cd"]), path.read_bytes()
    (4, b'abcd')
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_atomic", "write_text_atomic"]


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); platforms that cannot open directories skip it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``dest``; when the block succeeds the file written there is fsynced and
    renamed over ``dest``; when it raises, the temporary file is removed and ``dest`` is untouched.

    For writers that need a path (e.g. ``safetensors.torch.save_file``).

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
    temporary = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield temporary
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(dest.parent)


def write_atomic(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> int:
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
    written = 0
    with atomic_path(path) as temporary:
        # O_EXCL: never clobber a file we did not create; mode 0o666 lets the umask decide like open() does.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
    return written


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns the path.

    Example:
        >>> import tempfile
        >>> write_text_atomic(Path(tempfile.mkdtemp()) / "page.html", "<p>hi</p>").name
        'page.html'
    """
    write_atomic(path, [text.encode("utf-8")])
    return Path(path)
