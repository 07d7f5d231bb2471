"""Invertible codecs and the smallest lossless chain for a tensor (docs/FORMAT.md section 5).

Tensor codecs: ``dense``, ``planes`` (byte planes), ``codebook`` (<= 256 distinct values + indices), ``sparse``
(bitmask, relative indices with fillers, relative indices with an escape code). Symbol codecs: ``bitpack`` (0-8
bits), ``huffman`` (canonical, lane-parallel table decoder), ``ans`` (interleaved rANS). :func:`encode_tensor` tries
the candidates and keeps the smallest; :func:`decode_tensor` restores the exact values, dtype and shape.

Example:
    >>> import torch
    >>> t = torch.tensor([0.0, 0.0, 0.25, 0.0] * 100)
    >>> enc = encode_tensor(t, "w")
    >>> torch.equal(decode_tensor(enc), t), enc.nbytes < 1600
    (True, True)
"""

from modelpress.codec.catalog import CODECS
from modelpress.codec.chain import MAX_DEPTH, attach, build_node, decode_chain, parse_chain
from modelpress.codec.dtypes import DTYPES, DType, bits_to_tensor, dtype_of, numel, tensor_to_bits
from modelpress.codec.node import Node
from modelpress.codec.streams import Spec, SymbolSpec, TensorSpec
from modelpress.codec.tensor import (
    EXPANSION_RATIO,
    EXPANSION_SLACK,
    EncodedTensor,
    check_expansion,
    decode_tensor,
    encode_tensor,
    min_payload,
)

__all__ = [
    "CODECS",
    "DTYPES",
    "EXPANSION_RATIO",
    "EXPANSION_SLACK",
    "MAX_DEPTH",
    "DType",
    "EncodedTensor",
    "Node",
    "Spec",
    "SymbolSpec",
    "TensorSpec",
    "attach",
    "bits_to_tensor",
    "build_node",
    "check_expansion",
    "decode_chain",
    "decode_tensor",
    "dtype_of",
    "encode_tensor",
    "min_payload",
    "numel",
    "parse_chain",
    "tensor_to_bits",
]
