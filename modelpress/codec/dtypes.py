"""The element types a file can hold, and the lossless view of a tensor as unsigned bit patterns.

Codecs never see floats: a tensor of itemsize ``w`` becomes a 1-D array of native unsigned ``w``-byte integers (its
bit patterns), so "zero" means the all-zero pattern (``-0.0`` is nonzero) and equality is bitwise (NaN payloads
survive). Serialization to bytes is always little-endian.

Example:
    >>> import torch
    >>> t = torch.tensor([[1.5, -0.0]], dtype=torch.bfloat16)
    >>> bits = tensor_to_bits(t)
    >>> [hex(v) for v in bits]
    ['0x3fc0', '0x8000']
    >>> bool(torch.equal(bits_to_tensor(bits, DTYPES["bfloat16"], (1, 2)), t))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from modelpress.errors import FormatError

__all__ = ["DTYPES", "DType", "bits_to_tensor", "dtype_of", "numel", "tensor_to_bits"]


@dataclass(frozen=True)
class DType:
    """One element type: its name in files, its torch dtype and its size in bytes.

    Example:
        >>> DTYPES["int16"].itemsize, DTYPES["int16"].bits.name
        (2, 'uint16')
    """

    name: str
    torch_dtype: torch.dtype
    itemsize: int

    @property
    def bits(self) -> np.dtype:
        """The native unsigned numpy dtype that holds one element's bit pattern."""
        return np.dtype(f"u{self.itemsize}")

    @property
    def little_endian(self) -> np.dtype:
        """The explicit little-endian unsigned dtype used on disk."""
        return np.dtype(f"<u{self.itemsize}")


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("float32", torch.float32, 4),
        DType("float16", torch.float16, 2),
        DType("bfloat16", torch.bfloat16, 2),
        DType("int8", torch.int8, 1),
        DType("uint8", torch.uint8, 1),
        DType("int16", torch.int16, 2),
        DType("int32", torch.int32, 4),
        DType("int64", torch.int64, 8),
        DType("bool", torch.bool, 1),
    )
}
_BY_TORCH = {d.torch_dtype: d for d in DTYPES.values()}


def dtype_of(tensor: torch.Tensor, where: str = "tensor") -> DType:
    """The :class:`DType` of a tensor; a :class:`FormatError` if the format cannot hold it.

    Example:
        >>> dtype_of(torch.zeros(2, dtype=torch.int8)).name
        'int8'
    """
    try:
        return _BY_TORCH[tensor.dtype]
    except KeyError:
        known = ", ".join(DTYPES)
        raise FormatError(where, f"a dtype among {known}", f"<{tensor.dtype}>", "cast the tensor first") from None


def numel(shape: tuple[int, ...] | list[int]) -> int:
    """Element count of a shape as an exact Python integer (no overflow for absurd shapes).

    Example:
        >>> numel(()), numel((3, 0)), numel([2, 5])
        (1, 0, 10)
    """
    count = 1
    for dim in shape:
        count *= dim
    return count


def tensor_to_bits(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's elements in row-major order as a 1-D array of native unsigned bit patterns (a copy).

    Example:
        >>> tensor_to_bits(torch.tensor([1, -1], dtype=torch.int8)).tolist()
        [1, 255]
    """
    dtype = dtype_of(tensor)
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    if flat.numel() == 0:
        return np.zeros(0, dtype=dtype.bits)
    # (numel * itemsize,) uint8 in native byte order, reinterpreted as (numel,) u{w}.
    raw = flat.view(torch.uint8).numpy()
    return raw.view(dtype.bits).copy()


def bits_to_tensor(bits: np.ndarray, dtype: DType, shape: tuple[int, ...]) -> torch.Tensor:
    """The tensor whose row-major bit patterns are ``bits`` (any unsigned dtype of the right width).

    Example:
        >>> bits_to_tensor(np.array([0x3F800000], dtype=np.uint32), DTYPES["float32"], ()).item()
        1.0
    """
    if numel(shape) == 0:
        return torch.empty(shape, dtype=dtype.torch_dtype)
    native = np.ascontiguousarray(bits, dtype=dtype.bits)
    raw = torch.from_numpy(native.view(np.uint8).copy())
    return raw.view(dtype.torch_dtype).reshape(shape)
