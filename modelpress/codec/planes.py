"""``planes``: split ``w``-byte elements into ``w`` byte planes, each an entropy-codable symbol stream.

Trained float weights are near-random in their low mantissa bytes but the byte holding sign and exponent has a few
bits of entropy at most; coding each plane separately captures that losslessly (typically 10-15% off float32).

Example:
    >>> import numpy as np
    >>> from modelpress.codec.dtypes import DTYPES
    >>> from modelpress.codec.streams import TensorSpec
    >>> split = PLANES.split(np.array([0x0102, 0x0304], np.uint16), TensorSpec(DTYPES["int16"], 2))
    >>> [(name, plane.tolist()) for name, plane, _ in split.children]
    [('plane0', [2, 4]), ('plane1', [1, 3])]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from modelpress.codec.base import Codec, Split, register
from modelpress.codec.streams import Spec, SymbolSpec, TensorSpec
from modelpress.errors import FormatError

__all__ = ["PLANES", "Planes"]


class Planes(Codec):
    """Children ``plane0`` (least significant byte) to ``plane{w-1}``, each ``S(256, count)``.

    Example:
        >>> from modelpress.codec.dtypes import DTYPES
        >>> PLANES.check({}, TensorSpec(DTYPES["float16"], 5), 0, "node")
        [('plane0', S(256, 5)), ('plane1', S(256, 5))]
    """

    name = "planes"
    consumes = TensorSpec

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """Needs elements of at least 2 bytes and no own data."""
        spec = cast(TensorSpec, spec)
        if spec.dtype.itemsize < 2:
            raise FormatError(where, "a dtype of at least 2 bytes for byte planes", f"<{spec.dtype.name}>")
        if nbytes != 0:
            raise FormatError(where, "nbytes = 0", nbytes)
        return [(f"plane{k}", SymbolSpec(256, spec.count)) for k in range(spec.dtype.itemsize)]

    def choices(self, values: np.ndarray, spec: Spec) -> list[dict[str, Any]]:
        """Applies to every multi-byte dtype."""
        return [{}] if cast(TensorSpec, spec).dtype.itemsize >= 2 and values.size else []

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """(count,) u{w} -> w planes of (count,) uint8."""
        spec = cast(TensorSpec, spec)
        width = spec.dtype.itemsize
        # (count, w) bytes, little-endian: column k is byte k of every element.
        table = values.astype(spec.dtype.little_endian, copy=False).view(np.uint8).reshape(-1, width)
        children = tuple((f"plane{k}", np.ascontiguousarray(table[:, k]), SymbolSpec(256, spec.count))
                         for k in range(width))
        return Split({}, b"", children)

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Interleave the planes back into little-endian elements."""
        spec = cast(TensorSpec, spec)
        table = np.stack([children[f"plane{k}"] for k in range(spec.dtype.itemsize)], axis=1)
        return table.reshape(-1).view(spec.dtype.little_endian).astype(spec.dtype.bits)


PLANES = register(Planes())
