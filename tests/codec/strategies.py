"""Hypothesis strategies for codec tests: random tensors (any dtype, sparsity, number of distinct values) as bit
patterns, and random codec chains forced onto a stream (every applicable codec, every parameter in range)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from modelpress.codec import DTYPES, DType, Node, SymbolSpec, TensorSpec, build_node, numel
from modelpress.codec.bitpack import min_bits

SPARSITIES = (0.0, 0.3, 0.9, 0.99, 1.0)
DISTINCT = (None, 1, 2, 3, 17, 256, 257)


def random_bits(rng: np.random.Generator, dtype: DType, count: int, sparsity: float, distinct: int | None
                ) -> np.ndarray:
    """(count,) bit patterns: uniform over all patterns (NaNs, infinities, -0.0 included) or drawn from a pool of
    ``distinct`` patterns; then a fraction ``sparsity`` set to zero."""
    top = 1 if dtype.name == "bool" else (1 << (8 * dtype.itemsize)) - 1
    if distinct is None:
        values = rng.integers(0, top, count, dtype=np.uint64, endpoint=True)
    else:
        pool = rng.integers(0, top, max(1, distinct), dtype=np.uint64, endpoint=True)
        values = pool[rng.integers(0, pool.size, count)]
    values[rng.random(count) < sparsity] = 0
    return values.astype(dtype.bits)


@st.composite
def bit_streams(draw: st.DrawFn, max_count: int = 400) -> tuple[np.ndarray, TensorSpec]:
    """A tensor stream: (bit patterns, spec)."""
    dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
    count = draw(st.integers(0, max_count))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = random_bits(rng, dtype, count, draw(st.sampled_from(SPARSITIES)), draw(st.sampled_from(DISTINCT)))
    return values, TensorSpec(dtype, count)


@st.composite
def shapes(draw: st.DrawFn, max_numel: int = 600) -> tuple[int, ...]:
    """Shapes of 0-4 dimensions (zero-sized ones included) with at most ``max_numel`` elements."""
    dims = draw(st.lists(st.integers(0, 40), min_size=0, max_size=4))
    while numel(dims) > max_numel:
        dims[dims.index(max(dims))] //= 2
    return tuple(dims)


def force_chain(draw: st.DrawFn, values: np.ndarray, spec: TensorSpec | SymbolSpec, depth: int = 0) -> Node:
    """Encode ``values`` with a randomly drawn applicable codec (and parameters), children recursively."""

    def child(name: str, stream: np.ndarray, child_spec: TensorSpec | SymbolSpec) -> Node:
        return force_chain(draw, stream, child_spec, depth + 1)

    if isinstance(spec, SymbolSpec):
        options: list[tuple[str, dict[str, Any]]] = [("bitpack", {"bits": draw(st.integers(
            min_bits(spec.alphabet), 8))})]
        if spec.count:
            options.append(("huffman", {"lane": draw(st.integers(1, spec.count))}))
            present = int(np.count_nonzero(np.bincount(values, minlength=spec.alphabet)))
            if present >= 2:
                options.append(("ans", {"precision": draw(st.integers(max(1, (present - 1).bit_length()), 16)),
                                        "lanes": draw(st.integers(1, spec.count))}))
        name, choice = draw(st.sampled_from(options))
        return build_node(name, values, spec, choice, None)
    options = [("dense", {})]
    if spec.count and spec.dtype.itemsize >= 2:
        options.append(("planes", {}))
    if spec.count and np.unique(values).size <= 256:
        options.append(("codebook", {}))
    if spec.count and depth == 0:
        options.append(("sparse", {"variant": "bitmask"}))
        for variant in ("escape", "fillers"):
            options.append(("sparse", {"variant": variant, "bits": draw(st.integers(1, 8))}))
    name, choice = draw(st.sampled_from(options))
    return build_node(name, values, spec, choice, child)
