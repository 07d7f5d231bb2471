"""One generic registry: maps a key (a config type, or a name) to the thing that handles it.

Unknown keys raise an error that lists the known ones, so a typo in a recipe says what would have worked.

Example:
    >>> handlers = Registry[str, int]("toy handler")
    >>> @handlers.register("one")
    ... def _one() -> int:
    ...     return 1
    >>> handlers.get("one")()
    1
    >>> handlers.get("two")
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: toy handler: expected one of one, got 'two'
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from modelpress.errors import ConfigError

__all__ = ["Registry"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _key_name(key: Any) -> str:
    return key.__name__ if isinstance(key, type) else str(key)


class Registry(Generic[K, V]):
    """A named mapping with a decorator to fill it and helpful errors for unknown keys."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[K, Any] = {}

    def register(self, key: K) -> Callable[[V], V]:
        """Decorator: ``@registry.register(key)`` stores the decorated object under ``key`` (once)."""

        def wrap(obj: V) -> V:
            if key in self._items:
                raise ValueError(f"{self.what} {_key_name(key)!r} is registered twice")
            self._items[key] = obj
            return obj

        return wrap

    def get(self, key: K, fix: str | None = None) -> V:
        """The object registered under ``key``; a :class:`ConfigError` naming the known keys if there is none."""
        try:
            return self._items[key]
        except KeyError:
            known = ", ".join(sorted(_key_name(k) for k in self._items))
            got = key.__name__ if isinstance(key, type) else key
            raise ConfigError(self.what, f"one of {known}", got, fix) from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def items(self) -> list[tuple[K, V]]:
        """All (key, object) pairs in registration order."""
        return list(self._items.items())
