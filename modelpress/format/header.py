"""The file header (docs/FORMAT.md sections 1-3): building it, and validating it completely before any payload is read.

A header is a safetensors header: one ``U8`` entry per tensor and a ``__metadata__`` object whose string values
carry the format version, the index (each tensor's dtype, shape, segment, CRC-32 and codec chain), the caller's model
object, and a CRC-32 over those three. :func:`parse_header` checks every rule of the spec that does not need the
payload bytes, in the order of section 6, and raises one :class:`FormatError` per violation.

Example:
    >>> import torch
    >>> from modelpress.codec import encode_tensor
    >>> encoded = [encode_tensor(torch.tensor([1, 2, 3], dtype=torch.int8), "t")]
    >>> prefix, segments = build_header(encoded, {"name": "demo"})
    >>> len(prefix) % ALIGNMENT, [len(s) for s in segments]
    (0, [8])
    >>> parsed = parse_header(prefix, sum(len(s) for s in segments), "demo")
    >>> parsed.model, parsed.entries[0].name, parsed.entries[0].shape
    ({'name': 'demo'}, 't', (3,))
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

from modelpress.codec import DTYPES, EncodedTensor, TensorSpec, check_expansion, numel, parse_chain
from modelpress.errors import FormatError
from modelpress.format.strict_json import dumps_compact, loads_strict

__all__ = ["ALIGNMENT", "FORMAT_VERSION", "MAX_HEADER_BYTES", "MAX_NAME_CHARS", "MAX_NDIM", "Entry", "ParsedHeader",
           "build_header", "header_crc", "parse_header", "segment_crc"]

FORMAT_VERSION = "1"
ALIGNMENT = 8
MAX_HEADER_BYTES = 100_000_000  # the safetensors limit
MAX_NAME_CHARS = 1024
MAX_NDIM = 16
KEY_VERSION, KEY_TENSORS, KEY_MODEL, KEY_CRC = ("modelpress.version", "modelpress.tensors", "modelpress.model",
                                               "modelpress.crc32")
_KEYS = (KEY_VERSION, KEY_TENSORS, KEY_MODEL, KEY_CRC)
_ENTRY_KEYS = ("name", "dtype", "shape", "offsets", "nbytes", "crc32", "chain")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_CORRUPT = "the file is corrupted; write it again"


@dataclass(frozen=True)
class Entry:
    """One tensor of a parsed header: its encoded form (chain without bytes) and its segment in the data section.

    Example:
        >>> Entry.__dataclass_fields__.keys() >= {"encoded", "begin", "end", "crc32"}
        True
    """

    encoded: EncodedTensor
    begin: int
    end: int
    crc32: str

    @property
    def name(self) -> str:
        """The tensor's name."""
        return self.encoded.name

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape."""
        return self.encoded.shape


@dataclass(frozen=True)
class ParsedHeader:
    """A validated header: where the data section starts, the tensors in payload order, the model object.

    Example:
        >>> prefix, _ = build_header([], {"k": 1})
        >>> parse_header(prefix, 0, "demo")
        ParsedHeader(data_start=144, entries=[], model={'k': 1})
    """

    data_start: int
    entries: list[Entry]
    model: dict[str, Any]


def header_crc(version: str, tensors: str, model: str) -> str:
    """CRC-32 of ``version \\n tensors \\n model`` (UTF-8), as 8 lowercase hex digits.

    Example:
        >>> header_crc("1", "[]", "{}")
        'abaf5331'
    """
    return format(zlib.crc32(f"{version}\n{tensors}\n{model}".encode()), "08x")


def segment_crc(segment: bytes | memoryview) -> str:
    """CRC-32 of a payload segment (payload and padding), as 8 lowercase hex digits.

    Example:
        >>> segment_crc(b"")
        '00000000'
    """
    return format(zlib.crc32(segment), "08x")


def build_header(encoded: list[EncodedTensor], model: dict[str, Any]) -> tuple[bytes, list[bytes]]:
    """The 8-byte length, the padded header, and each tensor's padded segment, ready to be written in order.

    Example:
        >>> build_header([], {})[0][:8].hex()
        '8000000000000000'
    """
    segments: list[bytes] = []
    index: list[dict[str, Any]] = []
    entries: dict[str, Any] = {}
    offset = 0
    for tensor in encoded:
        payload = tensor.payload()
        segment = payload + b"\0" * (-len(payload) % ALIGNMENT)
        begin, offset = offset, offset + len(segment)
        segments.append(segment)
        index.append({"name": tensor.name, "dtype": tensor.dtype.name, "shape": list(tensor.shape),
                      "offsets": [begin, offset], "nbytes": len(payload), "crc32": segment_crc(segment),
                      "chain": tensor.chain.to_json()})
        entries[tensor.name] = {"dtype": "U8", "shape": [len(segment)], "data_offsets": [begin, offset]}
    tensors_text, model_text = dumps_compact(index), dumps_compact(model)
    metadata = {KEY_VERSION: FORMAT_VERSION, KEY_TENSORS: tensors_text, KEY_MODEL: model_text,
                KEY_CRC: header_crc(FORMAT_VERSION, tensors_text, model_text)}
    text = dumps_compact({"__metadata__": metadata, **entries}).encode("ascii")
    text += b" " * (-(8 + len(text)) % ALIGNMENT)
    return len(text).to_bytes(8, "little") + text, segments


def header_length(prefix: bytes, file_size: int, where: str) -> int:
    """The header length ``N`` from the first 8 bytes, validated against the file size (rule 6.1).

    Example:
        >>> header_length((10**9).to_bytes(8, "little"), 100, "f")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: f: expected a header length of at most 92 (...), got 1000000000...
    """
    if file_size < 8:
        raise FormatError(where, "a file of at least 8 bytes", file_size, "the file is truncated or empty")
    length = int.from_bytes(prefix[:8], "little")
    limit = min(MAX_HEADER_BYTES, file_size - 8)
    if length > limit:
        raise FormatError(where, f"a header length of at most {limit} (the bytes after the length field)", length,
                          "the file is truncated or not a modelpress file")
    if length < 2:
        raise FormatError(where, "a header length of at least 2", length, "the file is not a modelpress file")
    if (8 + length) % ALIGNMENT:
        raise FormatError(where, f"8 + header length a multiple of {ALIGNMENT}", 8 + length,
                          "the file is not a modelpress file or was modified")
    return length


def _require_int(where: str, what: str, value: Any, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise FormatError(where, f"{what} (an integer >= {low})", value, _CORRUPT)
    return value


def _metadata(header: Any, where: str) -> tuple[str, str, str]:
    """Rules 6.3-6.5: the ``modelpress.*`` strings, version first, then the checksum."""
    if not isinstance(header, dict):
        raise FormatError(where, "a JSON object header", f"<{type(header).__name__}>", _CORRUPT)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict):
        raise FormatError(f"{where}: __metadata__", "an object of strings", f"<{type(meta).__name__}>",
                          "the file is not a modelpress file")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise FormatError(f"{where}: __metadata__[{key!r}]", "a string (safetensors metadata)",
                              f"<{type(value).__name__}>", _CORRUPT)
        if key.startswith("modelpress.") and key not in _KEYS:
            raise FormatError(f"{where}: __metadata__", f"modelpress keys among {', '.join(_KEYS)}", key, _CORRUPT)
    for key in _KEYS:
        if key not in meta:
            raise FormatError(f"{where}: __metadata__", f"the key {key!r}", "<nothing>",
                              "the file is not a modelpress file")
    if meta[KEY_VERSION] != FORMAT_VERSION:
        raise FormatError(f"{where}: {KEY_VERSION}", f"format version {FORMAT_VERSION}", meta[KEY_VERSION],
                          "the file needs another modelpress version to be read")
    computed = header_crc(meta[KEY_VERSION], meta[KEY_TENSORS], meta[KEY_MODEL])
    if meta[KEY_CRC] != computed:
        raise FormatError(f"{where}: header checksum", f"CRC-32 {meta[KEY_CRC]!r} as stored", f"<{computed}>",
                          _CORRUPT)
    return meta[KEY_VERSION], meta[KEY_TENSORS], meta[KEY_MODEL]


def _entry(raw: Any, position: int, where: str) -> tuple[str, Any, tuple[int, ...], int, int, int, str, Any]:
    """Rule 6.6 for one index entry: keys and types; returns its fields."""
    here = f"{where}: tensors[{position}]"
    if not isinstance(raw, dict) or sorted(raw) != sorted(_ENTRY_KEYS):
        got = sorted(raw) if isinstance(raw, dict) else f"<{type(raw).__name__}>"
        raise FormatError(here, f"an object with keys {', '.join(_ENTRY_KEYS)}", got, _CORRUPT)
    name = raw["name"]
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or name == "__metadata__":
        raise FormatError(f"{here}.name", f"a string of 1 to {MAX_NAME_CHARS} characters, not '__metadata__'",
                          name if isinstance(name, str) and len(name) < 80 else "<invalid name>", _CORRUPT)
    here = f"{where}: tensor {name!r}"
    if not isinstance(raw["dtype"], str) or raw["dtype"] not in DTYPES:
        raise FormatError(f"{here}.dtype", f"one of {', '.join(DTYPES)}", str(raw["dtype"])[:40], _CORRUPT)
    shape = raw["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise FormatError(f"{here}.shape", f"a list of at most {MAX_NDIM} dimensions", f"<{str(shape)[:60]}>",
                          _CORRUPT)
    dims = tuple(_require_int(f"{here}.shape", "a dimension", dim) for dim in shape)
    offsets = raw["offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2:
        raise FormatError(f"{here}.offsets", "[begin, end]", f"<{str(offsets)[:60]}>", _CORRUPT)
    begin = _require_int(f"{here}.offsets", "begin", offsets[0])
    end = _require_int(f"{here}.offsets", "end", offsets[1])
    nbytes = _require_int(f"{here}.nbytes", "a byte count", raw["nbytes"])
    crc = raw["crc32"]
    if not isinstance(crc, str) or not _HEX8.fullmatch(crc):
        raise FormatError(f"{here}.crc32", "8 lowercase hex digits", str(crc)[:40], _CORRUPT)
    return name, raw["dtype"], dims, begin, end, nbytes, crc, raw["chain"]


def _layout(here: str, begin: int, end: int, nbytes: int, previous_end: int) -> None:
    """Rule 6.8 for one segment: contiguous, aligned, ``nbytes`` consistent with its length."""
    if begin != previous_end:
        what = "overlapping the previous segment" if begin < previous_end else "leaving a gap"
        raise FormatError(f"{here}.offsets", f"begin = {previous_end} (right after the previous segment)",
                          f"<{begin}, {what}>", _CORRUPT)
    if end < begin or (end - begin) % ALIGNMENT:
        raise FormatError(f"{here}.offsets", f"end >= begin with a length that is a multiple of {ALIGNMENT}",
                          f"<[{begin}, {end}]>", _CORRUPT)
    low = max(0, end - begin - ALIGNMENT + 1) if end > begin else 0
    if not low <= nbytes <= end - begin or (end > begin and nbytes == 0):
        raise FormatError(f"{here}.nbytes", f"a payload length in [{max(low, 1)}, {end - begin}] (segment minus "
                          f"padding)" if end > begin else "0 for an empty segment", nbytes, _CORRUPT)


def parse_header(head: bytes, data_size: int, where: str) -> ParsedHeader:
    """Validate a header (``head`` = the 8-byte length and the header bytes) for a data section of ``data_size``.

    Checks rules 6.2-6.10 of docs/FORMAT.md; the payload checks (CRC, padding, decoding) come later.

    Example:
        >>> parse_header(b"\\x08" + b"\\0" * 7 + b'{"a":1} ', 0, "f")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: f: __metadata__: expected an object of strings, got <NoneType>...
    """
    text = bytes(head[8:])
    body = text.rstrip(b" ")
    if not body.startswith(b"{") or not body.endswith(b"}"):
        raise FormatError(where, "a JSON object followed only by spaces", f"<{body[:1]!r}...{body[-1:]!r}>",
                          _CORRUPT)
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(where, "a UTF-8 header", "<invalid UTF-8>", _CORRUPT) from None
    header = loads_strict(decoded, f"{where}: header")
    _, tensors_text, model_text = _metadata(header, where)
    model = loads_strict(model_text, f"{where}: {KEY_MODEL}")
    if not isinstance(model, dict):
        raise FormatError(f"{where}: {KEY_MODEL}", "a JSON object", f"<{type(model).__name__}>", _CORRUPT)
    index = loads_strict(tensors_text, f"{where}: {KEY_TENSORS}")
    if not isinstance(index, list):
        raise FormatError(f"{where}: {KEY_TENSORS}", "a JSON array", f"<{type(index).__name__}>", _CORRUPT)
    entries: list[Entry] = []
    seen: set[str] = set()
    previous_end = 0
    for position, raw in enumerate(index):
        name, dtype_name, shape, begin, end, nbytes, crc, chain = _entry(raw, position, where)
        here = f"{where}: tensor {name!r}"
        if name in seen:
            raise FormatError(here, "unique tensor names", "<a repeated name>", _CORRUPT)
        seen.add(name)
        _layout(here, begin, end, nbytes, previous_end)
        previous_end = end
        if end > data_size:
            raise FormatError(f"{here}.offsets", f"end <= {data_size} (the data section's length)", end,
                              "the file is truncated")
        _check_safetensors_entry(header.get(name), name, begin, end, here)
        dtype = DTYPES[dtype_name]
        count = numel(shape)
        check_expansion(here, count * dtype.itemsize, nbytes)
        node = parse_chain(chain, TensorSpec(dtype, count), f"{here} chain")
        if node.size != nbytes:
            raise FormatError(f"{here} chain", f"own-data lengths adding up to nbytes = {nbytes}", node.size,
                              _CORRUPT)
        entries.append(Entry(EncodedTensor(name, dtype, shape, node), begin, end, crc))
    if previous_end != data_size:
        raise FormatError(where, f"segments covering the whole data section of {data_size} bytes",
                          f"<segments ending at {previous_end}>", _CORRUPT)
    extra = sorted(set(header) - seen - {"__metadata__"})
    if extra:
        raise FormatError(where, "a safetensors entry per indexed tensor and no others",
                          f"<unindexed entries {[name[:40] for name in extra[:3]]}>", _CORRUPT)
    return ParsedHeader(len(head), entries, model)


def _check_safetensors_entry(value: Any, name: str, begin: int, end: int, here: str) -> None:
    """Rule 6.7: the safetensors entry must say exactly what the index says."""
    expected = {"data_offsets": [begin, end], "dtype": "U8", "shape": [end - begin]}
    if value is None:
        raise FormatError(here, "a safetensors entry for the tensor", "<nothing>", _CORRUPT)
    if dumps_compact(value if not isinstance(value, dict) else dict(sorted(value.items()))) != dumps_compact(
            expected):
        raise FormatError(f"{here} (safetensors entry)", dumps_compact(expected), f"<{str(value)[:100]}>", _CORRUPT)
