"""Entropy coding of realistic symbol streams: modelpress's Huffman and rANS against dahuffman, constriction and zstd.

Streams (deterministic, seed 0):

* ``cluster-idx``: 5-bit cluster indices of 266,200 Laplacian weights (LeNet-300-100's parameter count) snapped
  to 32 uniform levels over [-4b, 4b], as weight sharing produces;
* ``gaps``: the relative-index stream (escape code at 255) of a 90%-sparse 784x300 matrix pruned by magnitude;
* ``bitmask``: the same matrix's nonzero mask, one binary symbol per weight.

A second table compares the two relative-index variants of ``sparse`` on that matrix (its survivors snapped to 32
shared float32 values) at every index width: Deep Compression's filler entries against the escape code.

For each coder: compressed bytes (modelpress's include everything needed to decode: code table, lane lengths or
states, shown as "of which table"; dahuffman's and constriction's models are passed out of band and not counted),
the ratio to the empirical order-0 entropy H of the whole output and of the coded part, and encode/decode throughput
in MB of symbols per second (1 symbol = 1 byte; best of ``--repeat`` runs). Every decode is checked.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/entropy_coding.py [--markdown]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modelpress.codec import CODECS, DTYPES, Node, Spec, SymbolSpec, TensorSpec, build_node
from modelpress.codec.ans_model import decode_table
from modelpress.codec.choose import Planner
from modelpress.codec.sparse import SPARSE
from modelpress.codec.varint import leb128_decode

SEED = 0


@dataclass(frozen=True)
class Row:
    """One coder on one stream."""

    stream: str
    coder: str
    nbytes: int
    table_bytes: int
    entropy_bytes: float
    encode_mbps: float
    decode_mbps: float
    note: str = ""


def cluster_indices(seed: int = SEED, count: int = 266_200, clusters: int = 32) -> np.ndarray:
    """(count,) uint8: Laplacian weights snapped to ``clusters`` uniform levels over [-4b, 4b]."""
    rng = np.random.default_rng(seed)
    weights = rng.laplace(0.0, 1.0, count)
    edges = np.linspace(-4.0, 4.0, clusters + 1)[1:-1]
    return np.searchsorted(edges, weights).astype(np.uint8)


def pruned_mask(seed: int = SEED, shape: tuple[int, int] = (784, 300), sparsity: float = 0.9) -> np.ndarray:
    """(rows * cols,) bool: the survivors of magnitude pruning of a normal matrix, row-major."""
    rng = np.random.default_rng(seed)
    weights = np.abs(rng.standard_normal(shape)).reshape(-1)
    keep = round((1 - sparsity) * weights.size)
    mask = np.zeros(weights.size, dtype=bool)
    mask[np.argsort(weights)[-keep:]] = True
    return mask


def gap_stream(mask: np.ndarray, bits: int = 8) -> np.ndarray:
    """Relative indices with an escape at 2^bits - 1 (the ``positions`` stream of ``sparse[escape]``)."""
    positions = np.flatnonzero(mask)
    gaps = np.diff(positions, prepend=-1) - 1
    return np.minimum(gaps, (1 << bits) - 1).astype(np.uint8)


def entropy_bytes(symbols: np.ndarray) -> float:
    """Empirical order-0 entropy of the stream, in bytes."""
    p = np.bincount(symbols) / symbols.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum() * symbols.size / 8)


def timed(function: Callable[[], object], repeat: int) -> tuple[float, object]:
    """(best wall time over ``repeat`` runs, last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def side_bytes(name: str, params: dict, data: np.ndarray, alphabet: int, count: int) -> int:
    """Bytes of a modelpress stream that are not coded symbols: code table, lane lengths or lane states."""
    if name == "huffman":
        head = (alphabet + 1) // 2
        lanes = -(-count // params["lane"])
        return head + leb128_decode(data[head:], lanes, 5, name)[1]
    return decode_table(data, alphabet, name)[1] + 8 * params["lanes"]


def run_modelpress(name: str, symbols: np.ndarray, alphabet: int, repeat: int) -> tuple[int, int, float, float]:
    codec = CODECS.get(name)
    spec = SymbolSpec(alphabet, symbols.size)
    encode_time, split = timed(lambda: codec.split(symbols, spec), repeat)
    data = np.frombuffer(split.data, np.uint8)
    decode_time, decoded = timed(lambda: codec.join(split.params, spec, data, {}, name), repeat)
    assert np.array_equal(decoded, symbols), name
    return len(split.data), side_bytes(name, split.params, data, alphabet, symbols.size), encode_time, decode_time


def run_dahuffman(symbols: np.ndarray, repeat: int) -> tuple[int, int, float, float]:
    from dahuffman import HuffmanCodec

    values = symbols.tolist()
    codec = HuffmanCodec.from_data(values)
    encode_time, encoded = timed(lambda: codec.encode(values), repeat)
    decode_time, decoded = timed(lambda: codec.decode(encoded), repeat)
    assert decoded == values
    return len(encoded), 0, encode_time, decode_time


def run_constriction(symbols: np.ndarray, alphabet: int, repeat: int) -> tuple[int, int, float, float]:
    import constriction

    probabilities = np.bincount(symbols, minlength=alphabet).astype(np.float64) / symbols.size
    model = constriction.stream.model.Categorical(probabilities, perfect=False)
    as_int = symbols.astype(np.int32)

    def encode() -> np.ndarray:
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(as_int, model)
        return coder.get_compressed()

    encode_time, words = timed(encode, repeat)
    decode_time, decoded = timed(lambda: constriction.stream.stack.AnsCoder(words).decode(model, symbols.size),
                                 repeat)
    assert np.array_equal(decoded, as_int)
    return 4 * words.size, 0, encode_time, decode_time


def run_zstd(symbols: np.ndarray, repeat: int) -> tuple[int, int, float, float]:
    import zstandard

    raw = symbols.tobytes()
    encode_time, packed = timed(lambda: zstandard.ZstdCompressor(level=19).compress(raw), repeat)
    decode_time, unpacked = timed(lambda: zstandard.ZstdDecompressor().decompress(packed), repeat)
    assert unpacked == raw
    return len(packed), 0, encode_time, decode_time


def benchmark(repeat: int) -> list[Row]:
    """Every coder on every stream."""
    mask = pruned_mask()
    streams = {"cluster-idx": (cluster_indices(), 32), "gaps": (gap_stream(mask), 256),
               "bitmask": (mask.astype(np.uint8), 2)}
    rows: list[Row] = []
    for stream, (symbols, alphabet) in streams.items():
        entropy = entropy_bytes(symbols)
        megabytes = symbols.size / 1e6
        runs = {
            "modelpress huffman": (lambda s=symbols, a=alphabet: run_modelpress("huffman", s, a, repeat), ""),
            "modelpress ans": (lambda s=symbols, a=alphabet: run_modelpress("ans", s, a, repeat), ""),
            "dahuffman": (lambda s=symbols: run_dahuffman(s, 1), "no table"),
            "constriction ans": (lambda s=symbols, a=alphabet: run_constriction(s, a, repeat), "no table"),
            "zstd -19": (lambda s=symbols: run_zstd(s, repeat), ""),
        }
        for coder, (run, note) in runs.items():
            nbytes, table, encode_time, decode_time = run()
            rows.append(Row(stream, coder, nbytes, table, entropy, megabytes / encode_time, megabytes / decode_time,
                            note))
    return rows


def render(rows: list[Row], markdown: bool) -> str:
    """The results as a fixed-width or markdown table."""
    head = ["stream", "symbols", "coder", "bytes", "of which table", "entropy B", "total vs H", "coded vs H",
            "enc MB/s", "dec MB/s", "note"]
    sizes = {"cluster-idx": 266_200, "gaps": 23_520, "bitmask": 235_200}
    body = [[r.stream, f"{sizes[r.stream]:,}", r.coder, f"{r.nbytes:,}", f"{r.table_bytes:,}",
             f"{r.entropy_bytes:,.0f}", f"{100 * (r.nbytes / r.entropy_bytes - 1):+.2f}%",
             f"{100 * ((r.nbytes - r.table_bytes) / r.entropy_bytes - 1):+.2f}%", f"{r.encode_mbps:.2f}",
             f"{r.decode_mbps:.2f}", r.note] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in column) for column in zip(head, *body, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) for row in [head, *body])


def sparse_variants() -> list[tuple[int, int, int, int, int]]:
    """Bytes of the pruned matrix (survivors snapped to 32 levels, float32) through ``sparse[escape|fillers, bits=b]``
    for b = 1..8: (b, escape entropy-coded, fillers entropy-coded, escape bit-packed, fillers bit-packed)."""
    rng = np.random.default_rng(SEED)
    weights = rng.standard_normal((784, 300)).astype(np.float32)
    mask = pruned_mask()
    kept = weights.reshape(-1)[mask]
    levels = np.linspace(kept.min(), kept.max(), 32, dtype=np.float32)
    snapped = np.zeros(mask.size, dtype=np.float32)
    snapped[mask] = levels[np.abs(kept[:, None] - levels[None, :]).argmin(axis=1)]
    bits = snapped.view(np.uint32)
    spec = TensorSpec(DTYPES["float32"], bits.size)
    planner = Planner()

    def packed(name: str, stream: np.ndarray, child_spec: Spec) -> Node:
        if isinstance(child_spec, TensorSpec):
            return build_node("codebook", stream, child_spec, {}, packed)
        return build_node("bitpack", stream, child_spec, {}, None)

    rows = []
    for width in range(1, 9):
        coded, plain = {}, {}
        for variant in ("escape", "fillers"):
            split = SPARSE.split(bits, spec, variant=variant, bits=width)
            coded[variant] = sum(planner.plan(child, child_spec, allow_sparse=False).size
                                 for _, child, child_spec in split.children)
            plain[variant] = build_node("sparse", bits, spec, {"variant": variant, "bits": width}, packed).size
        rows.append((width, coded["escape"], coded["fillers"], plain["escape"], plain["fillers"]))
    return rows


def render_sparse(rows: list[tuple[int, int, int, int, int]], markdown: bool) -> str:
    """The escape-versus-fillers table."""
    head = ["bits b", "escape (entropy-coded)", "fillers (entropy-coded)", "escape / fillers",
            "escape (bit-packed)", "fillers (bit-packed)", "escape / fillers "]
    body = [[str(b), f"{ec:,}", f"{fc:,}", f"{ec / fc:.3f}", f"{ep:,}", f"{fp:,}", f"{ep / fp:.3f}"]
            for b, ec, fc, ep, fp in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(x) for x in column) for column in zip(head, *body, strict=True)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in [head, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per measurement (best is kept)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    print(render(benchmark(args.repeat), args.markdown))
    print()
    print("Sparse positions of the 90%-sparse 784x300 matrix (values: 32 shared float32 levels), total bytes:")
    print(render_sparse(sparse_variants(), args.markdown))


if __name__ == "__main__":
    main()
