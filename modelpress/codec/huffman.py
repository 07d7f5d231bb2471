"""``huffman``: canonical Huffman codes (at most 15 bits) over lanes that a vectorized table decoder runs in lockstep.

Own data: the code lengths (one nibble per symbol), each lane's length in bits (LEB128), then one MSB-first
bitstream with every codeword in symbol order. Lane ``j`` holds symbols ``[j*lane, (j+1)*lane)``; since the lanes'
start bits are known, numpy decodes one symbol of every lane per step (a table lookup on the next 15 bits), so a
stream of a million symbols takes ``lane`` steps, not a million Python iterations.

Example:
    >>> import numpy as np
    >>> from modelpress.codec.streams import SymbolSpec
    >>> spec = SymbolSpec(4, 6)
    >>> split = HUFFMAN.split(np.array([0, 0, 0, 1, 2, 3], np.uint8), spec, lane=4)
    >>> split.params, split.data.hex()
    ({'lane': 4}, '312306051bc0')
    >>> HUFFMAN.join(split.params, spec, np.frombuffer(split.data, np.uint8), {}, "demo").tolist()
    [0, 0, 0, 1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np

from modelpress.codec.base import Codec, Split, check_range, register
from modelpress.codec.huffman_code import canonical_codes, code_lengths, decode_table, is_complete
from modelpress.codec.streams import Spec, SymbolSpec
from modelpress.codec.varint import leb128_decode, leb128_encode, leb128_size
from modelpress.errors import FormatError

__all__ = ["HUFFMAN", "LANE_BYTES", "SCALAR_LANES", "Huffman", "default_lane"]

LANE_BYTES = 5  # a lane's bit length is a LEB128 integer of at most 5 bytes
SCALAR_LANES = 16  # below this many lanes, decode with a Python loop (~0.5 us/symbol) rather than numpy steps


def default_lane(count: int) -> int:
    """Symbols per lane: at least 4096 (lane lengths cost ~0.1%), at most 256 lanes (decode steps ~ count / 256).

    Example:
        >>> default_lane(100), default_lane(1_000_000)
        (100, 4096)
    """
    return max(1, min(count, max(4096, -(-count // 256))))


def _lane_bits(lengths: np.ndarray, symbols: np.ndarray, lane: int) -> np.ndarray:
    """(lanes,) int64: bits of each lane."""
    per_symbol = lengths.take(symbols).astype(np.int64)
    return np.add.reduceat(per_symbol, np.arange(0, symbols.size, lane))


def _decode_lanes(stream: np.ndarray, starts: np.ndarray, lane: int, last: int, table: np.ndarray,
                  bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``lane`` symbols from every lane (``last`` from the final one) in lockstep.

    Returns (symbols (lanes, lane) uint8, end bit position of each lane). Reads past the stream clip to its end,
    so a corrupted stream cannot index out of bounds; the caller compares the end positions.
    """
    padded = np.concatenate((stream, np.zeros(4, np.uint8))).astype(np.int64)
    # window[i]: the 32 stream bits starting at byte i, MSB-first. A code starts at most 7 bits into a window.
    window = (padded[:-3] << 24) | (padded[1:-2] << 16) | (padded[2:-1] << 8) | padded[3:]
    lanes = starts.size
    mask = (1 << bits) - 1
    shift = 32 - bits
    if lanes < SCALAR_LANES:  # few lanes: a plain Python loop beats numpy's per-call overhead
        words, entries, top = window.tolist(), table.tolist(), window.size - 1
        rows = np.zeros((lanes, lane), dtype=np.uint8)
        ends = []
        for j in range(lanes):
            p, row = int(starts[j]), []
            for _ in range(lane if j < lanes - 1 else last):
                entry = entries[(words[min(p >> 3, top)] >> (shift - (p & 7))) & mask]
                row.append(entry & 255)
                p += entry >> 8
            rows[j, : len(row)] = row
            ends.append(p)
        return rows, np.array(ends, dtype=np.int64)
    position = starts.astype(np.int64)
    out = np.zeros((lane, lanes), dtype=np.uint8)  # step-major: out[t, j] = symbol t of lane j
    for active, steps in ((position, range(last)), (position[: lanes - 1], range(last, lane))):
        for t in steps:
            word = window.take(active >> 3, mode="clip")
            entry = table.take((word >> (shift - (active & 7))) & mask)
            out[t, : active.size] = entry
            active += entry >> 8
    return out.T, position


class Huffman(Codec):
    """Parameter ``lane`` (symbols per lane, ``1 <= lane <= count``).

    Example:
        >>> HUFFMAN.check({"lane": 0}, SymbolSpec(4, 10), 9, "node")
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: node: expected lane in [1, 10], got 0
    """

    name = "huffman"
    consumes = SymbolSpec
    param_types: ClassVar[dict[str, type]] = {"lane": int}

    def check(self, params: Mapping[str, Any], spec: Spec, nbytes: int, where: str) -> list[tuple[str, Spec]]:
        """At least one symbol; own data at least the table, one byte per lane and one bit per symbol."""
        spec = cast(SymbolSpec, spec)
        if spec.count < 1:
            raise FormatError(where, "a stream of at least 1 symbol for huffman", spec.count)
        lane = params["lane"]
        check_range(where, "lane", lane, 1, spec.count)
        lanes = -(-spec.count // lane)
        least = (spec.alphabet + 1) // 2 + lanes + (spec.count + 7) // 8
        if nbytes < least:
            raise FormatError(where, f"nbytes >= {least} (table, lane lengths, 1 bit per symbol)", nbytes)
        return []

    def estimate(self, values: np.ndarray, spec: Spec, hist: np.ndarray) -> tuple[int, bool] | None:
        """Exact size from the histogram and the lane split (no bitstream is built)."""
        spec = cast(SymbolSpec, spec)
        if spec.count < 1:
            return None
        lengths = code_lengths(hist)
        lane_bits = _lane_bits(lengths, values, default_lane(spec.count))
        size = (spec.alphabet + 1) // 2 + int(leb128_size(lane_bits).sum()) + (int(lane_bits.sum()) + 7) // 8
        return size, True

    def split(self, values: np.ndarray, spec: Spec, **choice: Any) -> Split:
        """Code lengths, lane lengths and the concatenated codewords."""
        spec = cast(SymbolSpec, spec)
        if spec.count < 1:
            raise ValueError("huffman needs at least one symbol")
        lane = int(choice.get("lane", default_lane(spec.count)))
        lengths = code_lengths(np.bincount(values, minlength=spec.alphabet))
        codes = canonical_codes(lengths)
        nibbles = np.zeros(2 * ((spec.alphabet + 1) // 2), dtype=np.uint8)
        nibbles[: spec.alphabet] = lengths
        table = (nibbles[0::2] | (nibbles[1::2] << 4)).tobytes()
        lane_bits = _lane_bits(lengths, values, lane)
        # One entry per stream bit: the codeword it belongs to, shifted so that its bit lands at position 0.
        symbol_lengths = lengths.take(values).astype(np.int64)
        total = int(lane_bits.sum())
        index = np.int32 if total < 2**31 else np.int64
        owner_code = np.repeat(codes.take(values), symbol_lengths)
        owner_end = np.repeat(np.cumsum(symbol_lengths, dtype=index), symbol_lengths)
        shift = (owner_end - 1 - np.arange(total, dtype=index)).astype(np.uint32)
        stream = np.packbits(((owner_code >> shift) & 1).astype(np.uint8)).tobytes()
        return Split({"lane": lane}, table + leb128_encode(lane_bits) + stream)

    def join(self, params: Mapping[str, Any], spec: Spec, data: np.ndarray, children: Mapping[str, np.ndarray],
             where: str) -> np.ndarray:
        """Validate the code and the lane layout, then decode all lanes in lockstep."""
        spec = cast(SymbolSpec, spec)
        lane = params["lane"]
        head = (spec.alphabet + 1) // 2
        nibbles = np.stack((data[:head] & 15, data[:head] >> 4), axis=1).reshape(-1)
        if nibbles[spec.alphabet:].any():
            raise FormatError(where, "a zero high nibble after the last code length", "<nonzero>")
        lengths = nibbles[: spec.alphabet]
        if not is_complete(lengths):
            raise FormatError(where, "code lengths forming a complete prefix code", lengths.tolist())
        lanes = -(-spec.count // lane)
        last = spec.count - (lanes - 1) * lane
        lane_bits, used = leb128_decode(data[head:], lanes, LANE_BYTES, f"{where} lane lengths")
        lane_bits = lane_bits.astype(np.int64)
        counts = np.full(lanes, lane, dtype=np.int64)
        counts[-1] = last
        if np.any(lane_bits < counts) or np.any(lane_bits > counts * int(lengths.max())):
            raise FormatError(where, "lane lengths between 1 and 15 bits per symbol", "<out of range>")
        stream = data[head + used:]
        total = int(lane_bits.sum())
        if stream.size != (total + 7) // 8:
            raise FormatError(where, f"a bitstream of {(total + 7) // 8} bytes", stream.size)
        if total % 8 and int(stream[-1]) & ((1 << (8 - total % 8)) - 1):
            raise FormatError(where, "zero padding bits after the last codeword", "<nonzero bits>")
        used_lengths = np.flatnonzero(lengths)
        if used_lengths.size == 1:  # one symbol, codeword "0": every bit must be 0, one per symbol
            if stream.any() or np.any(lane_bits != counts):
                raise FormatError(where, "an all-zero bitstream of one bit per symbol (single-symbol code)",
                                  "<other bits>")
            return np.full(spec.count, used_lengths[0], dtype=np.uint8)
        table, bits = decode_table(lengths)
        starts = np.concatenate(([0], np.cumsum(lane_bits)[:-1]))
        symbols, ends = _decode_lanes(stream, starts, lane, last, table, bits)
        expected = starts + lane_bits
        if np.any(ends != expected):
            bad = int(np.flatnonzero(ends != expected)[0])
            raise FormatError(where, f"lane {bad} to end at bit {int(expected[bad])}", int(ends[bad]))
        return np.ascontiguousarray(symbols).reshape(-1)[: spec.count]


HUFFMAN = register(Huffman())
