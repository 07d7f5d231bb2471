"""Where modelpress keeps what it computes once: trained reference weights and reference embeddings.

``MODELPRESS_CACHE`` overrides the default ``~/.cache/modelpress``. Files are written atomically
(:mod:`modelpress.atomic`), so an interrupted run never leaves a half-written cache entry.

Example:
    >>> cache_dir().is_dir()
    True
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The cache directory (created if missing)."""
    path = Path(os.environ.get("MODELPRESS_CACHE", Path.home() / ".cache" / "modelpress"))
    path.mkdir(parents=True, exist_ok=True)
    return path
