"""Tensors in and out: ``encode_tensor`` finds the smallest lossless chain, ``decode_tensor`` restores the exact tensor.

The expansion bound of docs/FORMAT.md (decoded bytes <= 4096 x payload bytes + 65536) is enforced here on both
sides: the encoder only keeps chains that satisfy it, the reader rejects tensors that do not, before decoding.

Example:
    >>> import torch
    >>> weights = torch.tensor([[0.5, 0.25, 0.25, -0.5]] * 64)
    >>> encoded = encode_tensor(weights, "fc.weight")
    >>> encoded.nbytes < weights.numel() * 4, encoded.chain.codec
    (True, 'codebook')
    >>> torch.equal(decode_tensor(encoded), weights)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from modelpress.codec.chain import decode_chain
from modelpress.codec.choose import Planner
from modelpress.codec.dtypes import DType, bits_to_tensor, dtype_of, numel, tensor_to_bits
from modelpress.codec.node import Node
from modelpress.codec.streams import TensorSpec
from modelpress.errors import FormatError

__all__ = ["EXPANSION_RATIO", "EXPANSION_SLACK", "EncodedTensor", "check_expansion", "decode_tensor",
           "encode_tensor", "min_payload"]

EXPANSION_RATIO = 4096
EXPANSION_SLACK = 65536


def min_payload(decoded_nbytes: int) -> int:
    """The fewest payload bytes a tensor of ``decoded_nbytes`` may take under the expansion bound.

    Example:
        >>> min_payload(1000), min_payload(65536 + 4096 * 10)
        (0, 10)
    """
    return max(0, -(-(decoded_nbytes - EXPANSION_SLACK) // EXPANSION_RATIO))


def check_expansion(where: str, decoded_nbytes: int, payload_nbytes: int) -> None:
    """A :class:`FormatError` if a payload claims to decode to more than the bound allows.

    Example:
        >>> check_expansion("tensor 'w'", 10**9, 100)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: tensor 'w': expected at most 475136 decoded bytes for a payload of 100 ...
    """
    limit = EXPANSION_RATIO * payload_nbytes + EXPANSION_SLACK
    if decoded_nbytes > limit:
        raise FormatError(where, f"at most {limit} decoded bytes for a payload of {payload_nbytes} bytes "
                          f"({EXPANSION_RATIO} x payload + {EXPANSION_SLACK})", decoded_nbytes,
                          "the header declares an absurd shape; the file is corrupted")


@dataclass(frozen=True)
class EncodedTensor:
    """A tensor as stored: name, dtype, shape and the codec chain holding its payload.

    Example:
        >>> enc = encode_tensor(torch.zeros(3, dtype=torch.int8), "z")
        >>> enc.describe()["dtype"], enc.describe()["shape"]
        ('int8', [3])
    """

    name: str
    dtype: DType
    shape: tuple[int, ...]
    chain: Node

    @property
    def numel(self) -> int:
        """Element count of the decoded tensor."""
        return numel(self.shape)

    @property
    def nbytes(self) -> int:
        """Stored (payload) bytes."""
        return self.chain.size

    def payload(self) -> bytes:
        """The payload bytes, in file order."""
        return self.chain.payload()

    def describe(self) -> dict[str, Any]:
        """Name, shape, dtype, chain (text), stored bytes and bits per element."""
        bits = 8 * self.nbytes / self.numel if self.numel else 0.0
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name, "chain": self.chain.text(),
                "stored_bytes": self.nbytes, "bits_per_element": bits}


def encode_tensor(tensor: torch.Tensor, name: str) -> EncodedTensor:
    """The tensor through the smallest lossless chain found (see :class:`modelpress.codec.choose.Planner`).

    Example:
        >>> enc = encode_tensor(torch.arange(6, dtype=torch.int64).reshape(2, 3), "idx")
        >>> enc.shape, enc.nbytes < 48
        ((2, 3), True)
    """
    dtype = dtype_of(tensor, f"tensor {name!r}")
    shape = tuple(int(d) for d in tensor.shape)
    bits = tensor_to_bits(tensor)
    spec = TensorSpec(dtype, bits.size)
    chain = Planner().plan(bits, spec, min_size=min_payload(spec.nbytes)).build()
    if chain.size < min_payload(spec.nbytes):  # a refined build came out smaller than the bound allows
        chain = Planner().plan(bits, spec, min_size=spec.nbytes).build()
    return EncodedTensor(name, dtype, shape, chain)


def decode_tensor(encoded: EncodedTensor, where: str | None = None) -> torch.Tensor:
    """The exact tensor (values, dtype, shape) an :class:`EncodedTensor` holds; bytes must be attached.

    Example:
        >>> t = torch.tensor([True, False, True])
        >>> torch.equal(decode_tensor(encode_tensor(t, "mask")), t)
        True
    """
    where = where or f"tensor {encoded.name!r} chain"
    bits = decode_chain(encoded.chain, where)
    if encoded.dtype.name == "bool" and bits.size and int(bits.max()) > 1:
        raise FormatError(where, "bool bytes 0x00 or 0x01", f"<0x{int(bits.max()):02x}>")
    return bits_to_tensor(bits, encoded.dtype, encoded.shape)

