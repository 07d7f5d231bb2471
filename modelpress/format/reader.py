"""Reading files: validate the whole header before reading payloads, then check each segment's CRC and decode it.

Every problem is a :class:`FormatError` naming where it is, what was expected and what was found; the reader never
allocates more than the expansion bound allows for the bytes it was given.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from modelpress.format.writer import write_file
    >>> path = Path(tempfile.mkdtemp()) / "t.mpz"
    >>> _ = write_file(path, {"w": torch.tensor([[1.0, 0.0], [0.0, 2.0]])}, {"arch": "toy"})
    >>> tensors, model = read_file(path)
    >>> tensors["w"].tolist(), model
    ([[1.0, 0.0], [0.0, 2.0]], {'arch': 'toy'})
    >>> describe_file(path)[0]["chain"]
    'sparse[bitmask](mask: bitpack[bits=1], values: dense)'
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from modelpress.codec import attach, decode_tensor
from modelpress.errors import FormatError
from modelpress.format.header import ParsedHeader, header_length, parse_header, segment_crc

__all__ = ["describe_file", "from_bytes", "read_file", "read_header"]


def _decode(parsed: ParsedHeader, data: memoryview, where: str) -> dict[str, torch.Tensor]:
    """Check each segment's CRC and padding, attach its payload to the chain and decode it."""
    tensors: dict[str, torch.Tensor] = {}
    for entry in parsed.entries:
        here = f"{where}: tensor {entry.name!r}"
        segment = data[entry.begin:entry.end]
        computed = segment_crc(segment)
        if computed != entry.crc32:
            raise FormatError(f"{here} payload", f"CRC-32 {entry.crc32!r} as indexed", f"<{computed}>",
                              "the file is corrupted; write it again")
        nbytes = entry.encoded.nbytes
        if any(segment[nbytes:]):
            raise FormatError(f"{here} payload", "zero padding after the payload", "<nonzero bytes>",
                              "the file is corrupted; write it again")
        chain = attach(entry.encoded.chain, segment[:nbytes], f"{here} chain")
        tensors[entry.name] = decode_tensor(replace(entry.encoded, chain=chain), f"{here} chain")
    return tensors


def from_bytes(data: bytes | bytearray | memoryview, where: str = "bytes") -> tuple[dict[str, torch.Tensor],
                                                                                     dict[str, Any]]:
    """Decode a whole file held in memory: (tensors in file order, model object).

    Example:
        >>> from modelpress.format.writer import to_bytes
        >>> tensors, model = from_bytes(to_bytes({"b": torch.tensor([1, 2], dtype=torch.int16)}, {"v": 2}))
        >>> tensors["b"].dtype, model["v"]
        (torch.int16, 2)
    """
    view = memoryview(data).cast("B")
    length = header_length(bytes(view[:8]), len(view), where)
    parsed = parse_header(bytes(view[:8 + length]), len(view) - 8 - length, where)
    return _decode(parsed, view[8 + length:], where), parsed.model


def read_header(path: str | Path) -> ParsedHeader:
    """Validate and return a file's header without reading its payloads.

    Example:
        >>> from modelpress.format.writer import write_file
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "h.mpz"
        >>> _ = write_file(p, {"a": torch.zeros(1)}, {})
        >>> [entry.name for entry in read_header(p).entries]
        ['a']
    """
    where = f"file {str(path)!r}"
    with open(path, "rb") as handle:
        size = Path(path).stat().st_size
        prefix = handle.read(8)
        length = header_length(prefix, size, where)
        head = prefix + handle.read(length)
        if len(head) != 8 + length:
            raise FormatError(where, f"{8 + length} header bytes", len(head), "the file changed while being read")
    return parse_header(head, size - 8 - length, where)


def read_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file: (tensors in file order with their exact values, dtypes and shapes; the model object).

    Example:
        >>> import tempfile
        >>> from modelpress.format.writer import write_file
        >>> p = Path(tempfile.mkdtemp()) / "r.mpz"
        >>> _ = write_file(p, {"m": torch.tensor([True, False])}, {"k": [1, 2]})
        >>> read_file(p)
        ({'m': tensor([ True, False])}, {'k': [1, 2]})
    """
    where = f"file {str(path)!r}"
    with open(path, "rb") as handle:
        size = Path(path).stat().st_size
        prefix = handle.read(8)
        length = header_length(prefix, size, where)
        head = prefix + handle.read(length)
        parsed = parse_header(head, size - 8 - length, where)
        data = handle.read(size - 8 - length)
    if len(head) != 8 + length or len(data) != size - 8 - length:
        raise FormatError(where, f"{size} bytes", len(head) + len(data), "the file changed while being read")
    return _decode(parsed, memoryview(data), where), parsed.model


def describe_file(path: str | Path) -> list[dict[str, Any]]:
    """Per tensor: name, shape, dtype, codec chain (text), stored bytes, bits per element (header only).

    Example:
        >>> import tempfile
        >>> from modelpress.format.writer import write_file
        >>> p = Path(tempfile.mkdtemp()) / "d.mpz"
        >>> _ = write_file(p, {"z": torch.zeros(4, dtype=torch.uint8)}, {})
        >>> row = describe_file(p)[0]
        >>> row["name"], row["shape"], row["dtype"], row["stored_bytes"]
        ('z', [4], 'uint8', 0)
    """
    return [entry.encoded.describe() for entry in read_header(path).entries]
