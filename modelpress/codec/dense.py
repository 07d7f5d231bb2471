"""``dense``: the elements as stored, ``itemsize`` little-endian bytes each (the fallback every tensor can take).

Example:
    >>> import numpy as np
    >>> from modelpress.codec.dtypes import DTYPES
    >>> from modelpress.codec.streams import TensorSpec
    >>> spec = TensorSpec(DTYPES["int16"], 2)
    >>> split = DENSE.split(np.array([1, 0xFFFF], np.uint16), spec)
    >>> split.data.hex(), DENSE.join({}, spec, np.frombuffer(split.data, np.uint8), {}, "demo").tolist()
    ('0100ffff', [1, 65535])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from modelpress.codec.base import Codec, Split, register
from modelpress.codec.streams import Spec, TensorSpec
from modelpress.errors import FormatError

__all__ = ["DENSE", "Dense"]


class Dense(Codec):
    """Raw little-endian elements; ``nbytes = count * itemsize``.

    Example:
        >>> from modelpress.codec.dtypes import DTYPES
        >>> DENSE.check({}, TensorSpec(DTYPES["int32"], 2), 7, "node")
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: node: expected nbytes = 8 (2 x 4 bytes), got 7
    """

    name = "dense"
    consumes = TensorSpec

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """Own data must be exactly the stream's bytes."""
        spec = cast(TensorSpec, spec)
        if nbytes != spec.nbytes:
            raise FormatError(where, f"nbytes = {spec.nbytes} ({spec.count} x {spec.dtype.itemsize} bytes)", nbytes)
        return []

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """The bit patterns as little-endian bytes."""
        spec = cast(TensorSpec, spec)
        return Split({}, values.astype(spec.dtype.little_endian, copy=False).tobytes())

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Read the bytes back as native bit patterns (``check`` fixed their length)."""
        spec = cast(TensorSpec, spec)
        return data.view(spec.dtype.little_endian).astype(spec.dtype.bits)


DENSE = register(Dense())
