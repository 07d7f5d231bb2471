"""What every codec provides, and the registry that maps a codec's name (as written in files) to it.

A codec is one invertible step. ``split`` turns a stream into the codec's own bytes plus child streams (for example
``codebook`` turns a tensor stream into the codebook bytes and an index symbol stream); ``join`` inverts it.
``check`` validates a node read from a file against the stream its parent expects, before anything is decoded, and
returns the child streams in payload order; this is where the reader bounds every allocation.

Example:
    >>> import numpy as np
    >>> from modelpress.codec.catalog import CODECS
    >>> from modelpress.codec.streams import SymbolSpec
    >>> bitpack = CODECS.get("bitpack")
    >>> split = bitpack.split(np.array([1, 0, 1], np.uint8), SymbolSpec(2, 3))
    >>> split.params, split.data
    ({'bits': 1}, b'\\x05')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from modelpress.codec.streams import Spec
from modelpress.errors import FormatError
from modelpress.registry import Registry

__all__ = ["CODECS", "Codec", "Split", "check_range", "register"]

CODECS: Registry[str, Codec] = Registry("codec")


@dataclass(frozen=True)
class Split:
    """One encoding step: the node's parameters, its own bytes, and its child streams in payload order.

    Example:
        >>> Split({"bits": 2}, b"\\x01").children
        ()
    """

    params: dict[str, int | str]
    data: bytes
    children: tuple[tuple[str, np.ndarray, Spec], ...] = ()


class Codec(ABC):
    """An invertible stage; subclasses set ``name``, ``consumes`` and ``param_types`` and register one instance.

    Example:
        >>> from modelpress.codec.catalog import CODECS
        >>> CODECS.get("huffman").param_types
        {'lane': <class 'int'>}
    """

    name: ClassVar[str]
    consumes: ClassVar[type]  # TensorSpec or SymbolSpec: the stream this codec decodes to
    param_types: ClassVar[dict[str, type]] = {}

    @abstractmethod
    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """Validate a node against its stream before decoding; return its child streams in payload order."""

    @abstractmethod
    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """Encode one step: ``values`` (bit patterns or symbols, 1-D) into own bytes and child streams."""

    @abstractmethod
    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Decode one step: own bytes (uint8) and decoded children back into the stream ``spec`` describes."""

    def choices(self, values: np.ndarray, spec: Spec) -> list[dict[str, Any]]:
        """The parameter choices the planner tries for these values ([] if the codec does not apply)."""
        return [{}]

    def estimate(self, values: np.ndarray, spec: Spec, hist: np.ndarray) -> tuple[int, bool] | None:
        """Leaf codecs: (bytes, whether exact) without encoding, from the symbol histogram; None if not usable."""
        return None

    def label(self, params: Mapping[str, Any]) -> str:
        """The parameters worth showing in a chain's text form."""
        return ",".join(f"{key}={params[key]}" for key in self.param_types)


def register(codec: Codec) -> Codec:
    """Add a codec instance to :data:`CODECS` under its ``name`` (each name once).

    Example:
        >>> from modelpress.codec.dense import DENSE
        >>> register(DENSE)
        Traceback (most recent call last):
        ...
        ValueError: codec 'dense' is registered twice
    """
    return CODECS.register(codec.name)(codec)


def check_range(where: str, key: str, value: int, low: int, high: int, fix: str | None = None) -> None:
    """A :class:`FormatError` unless ``low <= value <= high``.

    Example:
        >>> check_range("node", "bits", 9, 1, 8)
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: node: expected bits in [1, 8], got 9
    """
    if not low <= value <= high:
        raise FormatError(where, f"{key} in [{low}, {high}]", value, fix)
