"""Build valid and deliberately malformed files for the format tests: split a file into its header object and data
section, edit either, and put it back together (optionally repairing the checksums so a deeper check is reached)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from modelpress.format import to_bytes
from modelpress.format.header import header_crc, segment_crc


def sample_tensors() -> dict[str, torch.Tensor]:
    """Small tensors that exercise every codec (sparse variants, codebook, planes, huffman, ans, bitpack)."""
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    weight = torch.randn(12, 16, generator=g)
    weight = torch.where(weight.abs() > 1.2, torch.round(weight * 4) / 4, torch.zeros(()))
    return {
        "fc.weight": weight,
        "fc.bias": torch.randn(12, generator=g),
        "codes": torch.randint(-3, 4, (90,), generator=g, dtype=torch.int8),
        "mask": torch.rand(40, generator=g) > 0.8,
        "steps": torch.tensor(7, dtype=torch.int64),
        "half": torch.randn(3, 5, generator=g).half(),
        # Skewed streams, so that the Huffman and ANS decoders run too.
        "levels": torch.from_numpy(np.minimum(rng.geometric(0.45, 300) - 1, 20).astype(np.int8)),
        "skewed": torch.from_numpy(np.where(rng.random(500) < 0.93, 1, rng.integers(2, 5, 500)).astype(np.int16)),
    }


def sample_file() -> bytes:
    """A valid file of :func:`sample_tensors` with a small model object."""
    return to_bytes(sample_tensors(), {"arch": "sample", "layers": [12, 16]})


def split_file(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header object, data section) of a valid file."""
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), data[8 + length:]


def join_file(header: dict[str, Any], section: bytes) -> bytes:
    """Serialize a header object (compact, space-padded to 8-byte alignment) in front of a data section."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text + section


def index_of(header: dict[str, Any]) -> list[dict[str, Any]]:
    """The parsed index (modelpress.tensors) of a header object."""
    return json.loads(header["__metadata__"]["modelpress.tensors"])


def set_index(header: dict[str, Any], index: Any, fix_crc: bool = True) -> dict[str, Any]:
    """Store a new index in the header, recomputing the header checksum unless told not to."""
    meta = header["__metadata__"]
    meta["modelpress.tensors"] = json.dumps(index, separators=(",", ":"))
    if fix_crc:
        meta["modelpress.crc32"] = header_crc(meta["modelpress.version"], meta["modelpress.tensors"],
                                              meta["modelpress.model"])
    return header


def fix_segment_crcs(data: bytes) -> bytes:
    """Recompute every segment's CRC-32 in the index (after the data section was edited), and the header's."""
    header, section = split_file(data)
    index = index_of(header)
    for entry in index:
        begin, end = entry["offsets"]
        entry["crc32"] = segment_crc(section[begin:end])
    return join_file(set_index(header, index), section)


def mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """One random byte-level mutation: flip bits, truncate, insert or delete bytes."""
    buf = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:
        for _ in range(int(rng.integers(1, 4))):
            buf[int(rng.integers(0, len(buf)))] ^= int(rng.integers(1, 256))
    elif kind == 1:
        del buf[int(rng.integers(0, len(buf))):]
    elif kind == 2:
        at = int(rng.integers(0, len(buf) + 1))
        buf[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    else:
        at = int(rng.integers(0, len(buf)))
        del buf[at:at + int(rng.integers(1, 9))]
    return bytes(buf)
