"""``codebook``: a tensor with at most 256 distinct values as the sorted distinct values plus an index stream.

This is how shared weights (k-means clusters, quantized levels) become small: the indices are a symbol stream that
bit-packing or an entropy coder then shrinks. Distinctness is bitwise, so it is lossless for any dtype.

Example:
    >>> import numpy as np
    >>> from modelpress.codec.dtypes import DTYPES
    >>> from modelpress.codec.streams import TensorSpec
    >>> spec = TensorSpec(DTYPES["uint8"], 4)
    >>> split = CODEBOOK.split(np.array([7, 3, 7, 7], np.uint8), spec)
    >>> split.params, split.data.hex(), split.children[0][1].tolist()
    ({'size': 2}, '0307', [1, 0, 1, 1])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np

from modelpress.codec.base import Codec, Split, check_range, register
from modelpress.codec.streams import MAX_ALPHABET, Spec, SymbolSpec, TensorSpec
from modelpress.errors import FormatError

__all__ = ["CODEBOOK", "Codebook"]


class Codebook(Codec):
    """Own data: ``size`` distinct elements, strictly increasing; child ``indices`` ``S(size, count)``.

    Example:
        >>> from modelpress.codec.dtypes import DTYPES
        >>> CODEBOOK.check({"size": 3}, TensorSpec(DTYPES["float32"], 10), 12, "node")
        [('indices', S(3, 10))]
    """

    name = "codebook"
    consumes = TensorSpec
    param_types: ClassVar[dict[str, type]] = {"size": int}

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """``1 <= size <= min(count, 256)`` and the codebook's bytes are the own data."""
        spec = cast(TensorSpec, spec)
        if spec.count < 1:
            raise FormatError(where, "a stream of at least 1 element for a codebook", spec.count)
        size = params["size"]
        check_range(where, "size", size, 1, min(spec.count, MAX_ALPHABET))
        if nbytes != size * spec.dtype.itemsize:
            raise FormatError(where, f"nbytes = {size * spec.dtype.itemsize} (size x itemsize)", nbytes)
        return [("indices", SymbolSpec(size, spec.count))]

    def choices(self, values: np.ndarray, spec: Spec) -> list[dict[str, Any]]:
        """Applies when the values have at most 256 distinct bit patterns."""
        if values.size == 0:
            return []
        # A prefix with too many distinct values settles it cheaply; otherwise count on the sorted values.
        for sample in (values[:4096], values):
            ordered = np.sort(sample)
            if 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1])) > MAX_ALPHABET:
                return []
        return [{}]

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """Sorted distinct values and each element's index into them."""
        spec = cast(TensorSpec, spec)
        book, indices = np.unique(values, return_inverse=True)
        if book.size > MAX_ALPHABET:
            raise ValueError(f"codebook: {book.size} distinct values, at most {MAX_ALPHABET} allowed")
        data = book.astype(spec.dtype.little_endian).tobytes()
        child = ("indices", indices.reshape(-1).astype(np.uint8), SymbolSpec(int(book.size), spec.count))
        return Split({"size": int(book.size)}, data, (child,))

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Look every index up in the codebook (indices are below ``size``: the symbol codecs guarantee it)."""
        spec = cast(TensorSpec, spec)
        book = data.view(spec.dtype.little_endian).astype(spec.dtype.bits)
        if book.size > 1 and not bool(np.all(book[1:] > book[:-1])):
            raise FormatError(where, "a strictly increasing codebook", "<repeated or unsorted entries>")
        return book[children["indices"]]


CODEBOOK = register(Codebook())
