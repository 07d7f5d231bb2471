"""Strict JSON for file headers: duplicate keys, ``NaN``/``Infinity`` and runaway nesting are errors, not surprises.

Python's ``json`` keeps the last of duplicate keys, accepts ``NaN`` and overflows the stack on deep nesting; each of
these is a :class:`FormatError` here.

Example:
    >>> loads_strict('{"a": 1}', "header")
    {'a': 1}
    >>> loads_strict('{"a": 1, "a": 2}', "header")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    modelpress.errors.FormatError: header: expected JSON without duplicate keys, got <'a' twice>...
"""

from __future__ import annotations

import json
from typing import Any

from modelpress.errors import FormatError

__all__ = ["dumps_compact", "loads_strict"]


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON value {name}")


def loads_strict(text: str | bytes, where: str) -> Any:
    """Parse JSON, raising :class:`FormatError` for invalid JSON, duplicate keys, NaN/Infinity or deep nesting.

    Example:
        >>> loads_strict("[NaN]", "index")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: index: expected valid JSON, got <non-standard JSON value NaN>...
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise FormatError(where, "JSON without duplicate keys", f"<{key!r} twice>", "the file is corrupted")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=_no_constants)
    except FormatError:
        raise
    except RecursionError:
        raise FormatError(where, "JSON of reasonable nesting depth", "<nesting too deep>",
                          "the file is corrupted") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, bad UTF-8, huge integers
        raise FormatError(where, "valid JSON", f"<{str(exc)[:120]}>", "the file is corrupted") from None


def dumps_compact(obj: Any) -> str:
    """Deterministic compact JSON (ASCII only, no NaN): the bytes a writer puts in a file.

    Example:
        >>> dumps_compact({"b": [1, 2], "a": "é"})
        '{"b":[1,2],"a":"\\\\u00e9"}'
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
