"""The one module-name matcher: exact names, shell globs or regular expressions, with include and exclude lists.

A pattern starting with ``re:`` is a regular expression matched against the whole name; a pattern containing
``*``, ``?`` or ``[`` is a glob; anything else must equal the name.

Example:
    >>> names = ["fc1", "fc2", "fc3", "conv1"]
    >>> select_names(names, include=["fc*"], exclude=["fc3"])
    ['fc1', 'fc2']
    >>> select_names(names, include=["re:conv\\\\d"])
    ['conv1']
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

from modelpress.errors import ConfigError

__all__ = ["matches", "select_names"]


def matches(name: str, pattern: str) -> bool:
    """Whether ``name`` matches one pattern (exact, glob, or ``re:`` regex).

    Example:
        >>> matches("layer1.0.conv1", "layer1.*"), matches("fc", "re:f.")
        (True, True)
    """
    if pattern.startswith("re:"):
        try:
            return re.fullmatch(pattern[3:], name) is not None
        except re.error as e:
            raise ConfigError(f"pattern {pattern!r}", "a valid regular expression", pattern,
                              f"fix the regex ({e})") from None
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern


def select_names(names: Iterable[str], include: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None) -> list[str]:
    """Names matching any ``include`` pattern (all names if ``include`` is None) and no ``exclude`` pattern.

    Example:
        >>> select_names(["a", "b"], exclude=["b"])
        ['a']
    """
    chosen = []
    for name in names:
        if include is not None and not any(matches(name, p) for p in include):
            continue
        if exclude and any(matches(name, p) for p in exclude):
            continue
        chosen.append(name)
    return chosen
