"""What a codec node decodes to: a tensor stream ``T(dtype, count)`` or a symbol stream ``S(alphabet, count)``.

The parent of a node fixes its child's stream, so a file never repeats counts it can derive, and a reader knows every
allocation size from the header alone. In memory a tensor stream is a 1-D array of native unsigned bit patterns
(``dtype.bits``); a symbol stream is a 1-D ``uint8`` array (alphabets have at most 256 symbols).

Example:
    >>> from modelpress.codec.dtypes import DTYPES
    >>> TensorSpec(DTYPES["float16"], 10).nbytes, SymbolSpec(32, 7)
    (20, S(32, 7))
"""

from __future__ import annotations

from dataclasses import dataclass

from modelpress.codec.dtypes import DType

__all__ = ["MAX_ALPHABET", "Spec", "SymbolSpec", "TensorSpec"]

MAX_ALPHABET = 256


@dataclass(frozen=True)
class TensorSpec:
    """``count`` elements of ``dtype``, as bit patterns.

    Example:
        >>> from modelpress.codec.dtypes import DTYPES
        >>> TensorSpec(DTYPES["int8"], 3)
        T(int8, 3)
    """

    dtype: DType
    count: int

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded stream."""
        return self.count * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"T({self.dtype.name}, {self.count})"


@dataclass(frozen=True)
class SymbolSpec:
    """``count`` integers in ``[0, alphabet)``, ``1 <= alphabet <= 256``.

    Example:
        >>> SymbolSpec(2, 100).alphabet
        2
    """

    alphabet: int
    count: int

    def __repr__(self) -> str:
        return f"S({self.alphabet}, {self.count})"


Spec = TensorSpec | SymbolSpec
