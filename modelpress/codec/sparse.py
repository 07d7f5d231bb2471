"""``sparse``: a tensor with zeros as the positions of its nonzero elements plus their values; three variants.

* ``fillers`` (Deep Compression): each entry stores the gap since the previous entry in ``bits`` bits; a gap longer
  than ``2^bits - 1`` is bridged by filler entries (gap ``2^bits - 1``, value zero), which cost a value each.
* ``escape``: the same relative indices, but the top symbol ``2^bits - 1`` is an escape whose real gap (minus the
  escape) is a LEB128 integer in a separate ``long`` byte stream: no filler values, long gaps cost a few bytes.
* ``bitmask``: one symbol per element, 1 where the element is nonzero.

Positions and long gaps are symbol streams, so they are bit-packed or entropy coded downstream; the planner tries
every variant at every width and keeps the smallest.

Example:
    >>> import numpy as np
    >>> from modelpress.codec.dtypes import DTYPES
    >>> from modelpress.codec.streams import TensorSpec
    >>> values = np.array([0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 7], np.uint8)
    >>> spec = TensorSpec(DTYPES["uint8"], values.size)
    >>> split = SPARSE.split(values, spec, variant="escape", bits=2)
    >>> split.params
    {'variant': 'escape', 'bits': 2, 'entries': 2, 'long': 1}
    >>> [(name, child.tolist()) for name, child, _ in split.children]
    [('positions', [1, 3]), ('long', [5]), ('values', [5, 7])]
    >>> SPARSE.split(values, spec, variant="fillers", bits=2).children[0][1].tolist()
    [1, 3, 3, 0]
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, cast

import numpy as np

from modelpress.codec.base import Codec, Split, check_range, register
from modelpress.codec.streams import Spec, SymbolSpec, TensorSpec
from modelpress.codec.varint import leb128_decode, leb128_encode
from modelpress.errors import FormatError

__all__ = ["LONG_GAP_BYTES", "SPARSE", "Sparse", "Variant"]

LONG_GAP_BYTES = 6  # a long gap is a LEB128 integer of at most 6 bytes (below 2^42)


class Variant(StrEnum):
    """How the positions of the nonzero elements are stored.

    Example:
        >>> Variant("escape") is Variant.ESCAPE
        True
    """

    BITMASK = "bitmask"
    ESCAPE = "escape"
    FILLERS = "fillers"


def _gaps(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, gaps) of the nonzero elements: gap k = zeros skipped before entry k, both int64 (nnz,)."""
    positions = np.flatnonzero(values)
    return positions, np.diff(positions, prepend=-1) - 1


def _place(count: int, positions: np.ndarray, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.zeros(count, dtype=dtype)
    out[positions] = values
    return out


class Sparse(Codec):
    """Parameters ``variant``, ``bits`` (0 for bitmask), ``entries`` (values stored), ``long`` (escape bytes).

    Example:
        >>> from modelpress.codec.dtypes import DTYPES
        >>> params = {"variant": "escape", "bits": 4, "entries": 3, "long": 2}
        >>> SPARSE.check(params, TensorSpec(DTYPES["int8"], 100), 0, "node")
        [('positions', S(16, 3)), ('long', S(256, 2)), ('values', T(int8, 3))]
    """

    name = "sparse"
    consumes = TensorSpec
    param_types: ClassVar[dict[str, type]] = {"variant": str, "bits": int, "entries": int, "long": int}

    def label(self, params: Mapping[str, Any]) -> str:
        """E.g. ``escape,bits=4``."""
        variant = params["variant"]
        return variant if variant == Variant.BITMASK.value else f"{variant},bits={params['bits']}"

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """Validate the variant's parameters against the stream; children depend on the variant."""
        spec = cast(TensorSpec, spec)
        try:
            variant = Variant(params["variant"])
        except ValueError:
            raise FormatError(where, "variant one of bitmask, escape, fillers", params["variant"]) from None
        if spec.count < 1:
            raise FormatError(where, "a stream of at least 1 element for sparse", spec.count)
        if nbytes != 0:
            raise FormatError(where, "nbytes = 0", nbytes)
        entries, bits, long = params["entries"], params["bits"], params["long"]
        check_range(where, "entries", entries, 0, spec.count)
        values = ("values", TensorSpec(spec.dtype, entries))
        if variant is Variant.BITMASK:
            check_range(where, "bits", bits, 0, 0)
            check_range(where, "long", long, 0, 0)
            return [("mask", SymbolSpec(2, spec.count)), values]
        check_range(where, "bits", bits, 1, 8)
        positions = ("positions", SymbolSpec(1 << bits, entries))
        if variant is Variant.FILLERS:
            check_range(where, "long", long, 0, 0)
            return [positions, values]
        check_range(where, "long", long, 0, LONG_GAP_BYTES * entries)
        return [positions, ("long", SymbolSpec(256, long)), values]

    def choices(self, values: np.ndarray, spec: Spec) -> list[dict[str, Any]]:
        """Every variant and width, when at least one element is zero."""
        if values.size == 0 or np.count_nonzero(values) == values.size:
            return []
        out: list[dict[str, Any]] = [{"variant": Variant.BITMASK}]
        for variant in (Variant.ESCAPE, Variant.FILLERS):
            out.extend({"variant": variant, "bits": bits} for bits in range(1, 9))
        return out

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """Positions (and long gaps) as symbol streams, the stored values as a tensor stream."""
        spec = cast(TensorSpec, spec)
        variant = Variant(choice["variant"])
        positions, gaps = _gaps(values)
        nonzero = values[positions]
        if variant is Variant.BITMASK:
            mask = (values != 0).astype(np.uint8)
            params = {"variant": variant.value, "bits": 0, "entries": int(positions.size), "long": 0}
            return Split(params, b"", (("mask", mask, SymbolSpec(2, spec.count)),
                                       ("values", nonzero, TensorSpec(spec.dtype, int(positions.size)))))
        bits = int(choice["bits"])
        top = (1 << bits) - 1
        if variant is Variant.ESCAPE:
            symbols = np.minimum(gaps, top).astype(np.uint8)
            long = np.frombuffer(leb128_encode(gaps[gaps >= top] - top), dtype=np.uint8)
            params = {"variant": variant.value, "bits": bits, "entries": int(positions.size), "long": int(long.size)}
            return Split(params, b"", (("positions", symbols, SymbolSpec(1 << bits, int(positions.size))),
                                       ("long", long, SymbolSpec(256, int(long.size))),
                                       ("values", nonzero, TensorSpec(spec.dtype, int(positions.size)))))
        # Fillers: a gap g becomes g // 2^bits filler entries (gap `top`, value 0) then one entry of gap g % 2^bits.
        fillers = gaps >> bits
        slots = np.cumsum(fillers + 1) - 1  # index of each real entry among all entries
        entries = int(positions.size + fillers.sum())
        symbols = np.full(entries, top, dtype=np.uint8)
        symbols[slots] = gaps & top
        stored = np.zeros(entries, dtype=values.dtype)
        stored[slots] = nonzero
        params = {"variant": variant.value, "bits": bits, "entries": entries, "long": 0}
        return Split(params, b"", (("positions", symbols, SymbolSpec(1 << bits, entries)),
                                   ("values", stored, TensorSpec(spec.dtype, entries))))

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Scatter the values to their positions; counts and ranges are checked before the scatter."""
        spec = cast(TensorSpec, spec)
        variant = Variant(params["variant"])
        stored = children["values"]
        if variant is Variant.BITMASK:
            mask = children["mask"].astype(bool)
            ones = int(np.count_nonzero(mask))
            if ones != stored.size:
                raise FormatError(where, f"a mask with {stored.size} ones (entries)", ones)
            return _place(spec.count, np.flatnonzero(mask), stored, spec.dtype.bits)
        symbols = children["positions"]
        gaps = symbols.astype(np.int64)
        if variant is Variant.ESCAPE:
            top = (1 << params["bits"]) - 1
            escapes = symbols == top
            long, _ = leb128_decode(children["long"], None, LONG_GAP_BYTES, f"{where}.long")
            if long.size != int(np.count_nonzero(escapes)):
                raise FormatError(where, f"{int(np.count_nonzero(escapes))} long gaps (one per escape)", long.size)
            gaps[escapes] += long.astype(np.int64)  # each below 2^42: no overflow in int64
        # Position of entry k: sum of (gap + 1) up to k, minus 1. A float sum first rules out int64 overflow.
        if gaps.size and float(np.sum(gaps, dtype=np.float64)) + gaps.size > spec.count + 1.0:
            raise FormatError(where, f"positions below {spec.count}", "<gaps running past the end>")
        positions = np.cumsum(gaps + 1) - 1
        if positions.size and int(positions[-1]) >= spec.count:
            raise FormatError(where, f"positions below {spec.count}", int(positions[-1]))
        return _place(spec.count, positions, stored, spec.dtype.bits)


SPARSE = register(Sparse())
