"""Progress bars on stderr (rich), silenced in quiet mode or when stderr is not a terminal and MODELPRESS_QUIET=1.

Example:
    >>> with progress_bar("work", total=3, quiet=True) as advance:
    ...     for _ in range(3):
    ...         advance(1)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["console", "is_quiet", "progress_bar", "set_quiet"]

console = Console(stderr=True)
_QUIET = os.environ.get("MODELPRESS_QUIET", "") not in ("", "0")


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress bar and status line of this process."""
    global _QUIET
    _QUIET = quiet


def is_quiet() -> bool:
    """Whether progress output is silenced."""
    return _QUIET


@contextmanager
def progress_bar(description: str, total: int, quiet: bool = False) -> Iterator[Callable[..., None]]:
    """A context giving ``advance(n, **fields)``; shows a bar on stderr unless quiet."""
    if quiet or _QUIET or not sys.stderr.isatty():
        yield lambda n=1, **fields: None
        return
    columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task_id = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields: Any) -> None:
            info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task_id, advance=n, info=info)

        yield advance
