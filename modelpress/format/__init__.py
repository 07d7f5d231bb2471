"""The compressed file: a safetensors container whose U8 entries hold codec-chain payloads (docs/FORMAT.md).

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "model.mpz"
    >>> weights = {"fc.weight": torch.randn(8, 8), "fc.bias": torch.zeros(8)}
    >>> size = write_file(path, weights, {"arch": "fc"})
    >>> tensors, model = read_file(path)
    >>> all(torch.equal(tensors[k], weights[k]) for k in weights), model
    (True, {'arch': 'fc'})
"""

from modelpress.format.header import FORMAT_VERSION
from modelpress.format.reader import describe_file, from_bytes, read_file, read_header
from modelpress.format.writer import to_bytes, write_file

__all__ = ["FORMAT_VERSION", "describe_file", "from_bytes", "read_file", "read_header", "to_bytes", "write_file"]
