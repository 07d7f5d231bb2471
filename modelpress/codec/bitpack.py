"""``bitpack``: symbols at a fixed ``bits`` per symbol (0-8), least significant bit first.

Stream bit ``k`` is bit ``k % 8`` of byte ``k // 8``; symbol ``i`` holds stream bits ``[i*bits, (i+1)*bits)``. With
``bits = 0`` (alphabet 1) the stream takes no bytes at all.

Example:
    >>> import numpy as np
    >>> from modelpress.codec.streams import SymbolSpec
    >>> spec = SymbolSpec(32, 3)
    >>> split = BITPACK.split(np.array([1, 31, 4], np.uint8), spec)
    >>> split.params, split.data.hex()
    ({'bits': 5}, 'e113')
    >>> BITPACK.join(split.params, spec, np.frombuffer(split.data, np.uint8), {}, "demo").tolist()
    [1, 31, 4]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np

from modelpress.codec.base import Codec, Split, check_range, register
from modelpress.codec.streams import Spec, SymbolSpec
from modelpress.errors import FormatError

__all__ = ["BITPACK", "Bitpack", "min_bits"]


def min_bits(alphabet: int) -> int:
    """The fewest bits that hold every symbol of an alphabet (0 for a single symbol).

    Example:
        >>> min_bits(1), min_bits(2), min_bits(32), min_bits(33)
        (0, 1, 5, 6)
    """
    return (alphabet - 1).bit_length()


class Bitpack(Codec):
    """Fixed-width packing; ``nbytes = ceil(count * bits / 8)``.

    Example:
        >>> BITPACK.check({"bits": 3}, SymbolSpec(8, 5), 2, "node")
        []
    """

    name = "bitpack"
    consumes = SymbolSpec
    param_types: ClassVar[dict[str, type]] = {"bits": int}

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """``bits`` must hold the alphabet, and the own data must be exactly the packed length."""
        spec = cast(SymbolSpec, spec)
        bits = params["bits"]
        check_range(where, "bits", bits, min_bits(spec.alphabet), 8)
        expected = (spec.count * bits + 7) // 8
        if nbytes != expected:
            raise FormatError(where, f"nbytes = {expected} ({spec.count} symbols x {bits} bits)", nbytes)
        return []

    def estimate(self, values: np.ndarray, spec: Spec, hist: np.ndarray) -> tuple[int, bool] | None:
        """Exact: the packed length at the fewest bits."""
        spec = cast(SymbolSpec, spec)
        return (spec.count * min_bits(spec.alphabet) + 7) // 8, True

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """Pack at ``bits`` (default: the fewest for the alphabet)."""
        spec = cast(SymbolSpec, spec)
        bits = int(choice.get("bits", min_bits(spec.alphabet)))
        if bits == 0:
            return Split({"bits": 0}, b"")
        # (count, bits) matrix of each symbol's bits, LSB first, flattened in stream order.
        table = (values.astype(np.uint8)[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
        return Split({"bits": bits}, np.packbits(table.reshape(-1), bitorder="little").tobytes())

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Unpack; unused trailing bits must be zero and every symbol below the alphabet size."""
        spec = cast(SymbolSpec, spec)
        bits = params["bits"]
        if bits == 0:
            return np.zeros(spec.count, dtype=np.uint8)
        stream = np.unpackbits(data, bitorder="little")
        used = spec.count * bits
        if stream[used:].any():
            raise FormatError(where, "zero padding bits after the last symbol", "<nonzero bits>")
        # (count, bits) -> packbits pads each row to 8 bits: one byte per symbol.
        symbols = np.packbits(stream[:used].reshape(spec.count, bits), axis=1, bitorder="little").reshape(-1)
        if symbols.size and int(symbols.max()) >= spec.alphabet:
            raise FormatError(where, f"symbols below {spec.alphabet}", int(symbols.max()))
        return symbols


BITPACK = register(Bitpack())
