"""Writing files: encode every tensor through its smallest chain, lay out the header and segments, write atomically.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "tiny.mpz"
    >>> write_file(path, {"w": torch.ones(4, 4)}, {"model": "demo"}) == path.stat().st_size
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from modelpress.atomic import write_atomic
from modelpress.codec import EncodedTensor, encode_tensor
from modelpress.errors import FormatError
from modelpress.format.header import MAX_NAME_CHARS, build_header
from modelpress.format.strict_json import dumps_compact
from modelpress.progress import progress_bar

__all__ = ["encode_all", "to_bytes", "write_file"]


def encode_all(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None,
               where: str = "write_file") -> tuple[list[EncodedTensor], dict[str, Any]]:
    """Validate the inputs and encode every tensor (in the mapping's order); returns (encoded, model object).

    Example:
        >>> encoded, model = encode_all({"b": torch.zeros(2)}, None)
        >>> encoded[0].name, model
        ('b', {})
    """
    if not isinstance(tensors, Mapping):
        raise FormatError(f"{where}: tensors", "a mapping of name -> torch.Tensor", f"<{type(tensors).__name__}>")
    model = dict(metadata) if metadata is not None else {}
    if not isinstance(metadata, Mapping | None):
        raise FormatError(f"{where}: metadata", "a dict (JSON object)", f"<{type(metadata).__name__}>")
    try:
        dumps_compact(model)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: metadata", "a JSON-serializable dict (no NaN, str keys)", f"<{exc}>",
                          "convert the values to str, int, float, bool, list or dict") from None
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or name == "__metadata__":
            raise FormatError(f"{where}: tensor name", f"a string of 1 to {MAX_NAME_CHARS} characters other than "
                              "'__metadata__'", name, "rename the tensor")
        if not isinstance(tensor, torch.Tensor):
            raise FormatError(f"{where}: tensor {name!r}", "a torch.Tensor", f"<{type(tensor).__name__}>")
    encoded = []
    with progress_bar("encoding tensors", total=len(tensors)) as advance:
        for name, tensor in tensors.items():
            encoded.append(encode_tensor(tensor, name))
            advance(1)
    return encoded, model


def to_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> bytes:
    """The complete file as bytes (what :func:`write_file` writes).

    Example:
        >>> data = to_bytes({"x": torch.arange(3)}, {"k": 1})
        >>> len(data) % 8, data[8:9]
        (0, b'{')
    """
    encoded, model = encode_all(tensors, metadata, "to_bytes")
    head, segments = build_header(encoded, model)
    return head + b"".join(segments)


def write_file(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> int:
    """Encode ``tensors`` losslessly with the ``metadata`` object and write them atomically; returns the file size.

    All tensors are encoded before the file is opened; the write goes to a temporary file in the same directory that
    is fsynced and renamed over ``path``. On any failure, ``KeyboardInterrupt`` included, neither ``path`` nor a
    temporary file is left changed or behind.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "m.mpz"
        >>> write_file(path, {"w": torch.zeros(2, 3)}, {}) > 0
        True
    """
    encoded, model = encode_all(tensors, metadata)
    head, segments = build_header(encoded, model)
    return write_atomic(path, [head, *segments])
