"""Unsigned LEB128 integers, vectorized: 7 value bits per byte, low group first, bit 7 set on all but the last byte.

Decoding validates as it goes: a missing terminator, a group longer than the field allows or a non-minimal encoding
(a multi-byte group ending in 0x00) is a :class:`FormatError`, never an exception from numpy.

Example:
    >>> data = leb128_encode(np.array([0, 127, 128, 300]))
    >>> data.hex()
    '007f8001ac02'
    >>> values, used = leb128_decode(np.frombuffer(data, np.uint8), 4, 3, "demo")
    >>> values.tolist(), used
    ([0, 127, 128, 300], 6)
"""

from __future__ import annotations

import numpy as np

from modelpress.errors import FormatError

__all__ = ["leb128_decode", "leb128_encode", "leb128_size"]

_MAX_GROUPS = 9  # 63 value bits: every field of the format fits, and shifts stay inside uint64
_GROUP_LIMITS = np.array([1 << (7 * k) for k in range(1, _MAX_GROUPS)], dtype=np.uint64)  # 2^7, 2^14, ...


def leb128_size(values: np.ndarray) -> np.ndarray:
    """Bytes each value takes (at least 1), as an int64 array of the same shape.

    Example:
        >>> leb128_size(np.array([0, 127, 128, 2**14])).tolist()
        [1, 1, 2, 3]
    """
    v = np.asarray(values, dtype=np.uint64)
    return 1 + np.searchsorted(_GROUP_LIMITS, v, side="right").astype(np.int64)


def leb128_encode(values: np.ndarray) -> bytes:
    """The shortest LEB128 encoding of each value (non-negative, below 2^63), concatenated.

    Example:
        >>> leb128_encode(np.array([1, 2])).hex()
        '0102'
    """
    v = np.asarray(values, dtype=np.uint64).reshape(-1)
    if v.size == 0:
        return b""
    size = leb128_size(v)
    groups = np.arange(_MAX_GROUPS, dtype=np.uint64)
    # (n, 9): the 7-bit groups of every value, low first; continuation bit on every group but a value's last.
    table = ((v[:, None] >> (groups * np.uint64(7))) & np.uint64(0x7F)).astype(np.uint8)
    index = np.arange(_MAX_GROUPS)
    table |= np.where(index[None, :] < (size[:, None] - 1), np.uint8(0x80), np.uint8(0))
    keep = index[None, :] < size[:, None]
    return table[keep].tobytes()


def leb128_decode(buf: np.ndarray, count: int | None, max_bytes: int, where: str) -> tuple[np.ndarray, int]:
    """Decode ``count`` integers from the start of ``buf`` (every byte of it if ``count`` is None).

    Returns the values (uint64) and how many bytes they used. Each integer may use at most ``max_bytes`` bytes.

    Example:
        >>> leb128_decode(np.array([0x80, 0x01, 0x05], np.uint8), None, 2, "demo")[0].tolist()
        [128, 5]
        >>> leb128_decode(np.array([0x80, 0x00], np.uint8), None, 2, "demo")
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: demo: expected minimal LEB128 integers, got <a group ending in 0x00 at byte 1>
    """
    max_bytes = min(max_bytes, _MAX_GROUPS)
    ends = np.flatnonzero(buf < 0x80)  # the last byte of every integer
    if count is None:
        if buf.size and (ends.size == 0 or ends[-1] != buf.size - 1):
            raise FormatError(where, "LEB128 integers filling the stream", "<a truncated last integer>")
        count = int(ends.size)
    elif ends.size < count:
        raise FormatError(where, f"{count} LEB128 integers", f"<{ends.size} complete ones in {buf.size} bytes>")
    if count == 0:
        return np.zeros(0, dtype=np.uint64), 0
    ends = ends[:count]
    used = int(ends[-1]) + 1
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > max_bytes:
        raise FormatError(where, f"LEB128 integers of at most {max_bytes} bytes", f"<one of {longest} bytes>")
    bad = np.flatnonzero((lengths > 1) & (buf[ends] == 0))
    if bad.size:
        raise FormatError(where, "minimal LEB128 integers", f"<a group ending in 0x00 at byte {int(ends[bad[0]])}>")
    body = buf[:used]
    # Byte k of an integer contributes (byte & 0x7F) << 7k; groups are summed with reduceat over their starts.
    rank = np.arange(used) - np.repeat(starts, lengths)
    parts = (body & 0x7F).astype(np.uint64) << (rank.astype(np.uint64) * np.uint64(7))
    return np.bitwise_or.reduceat(parts, starts), used
