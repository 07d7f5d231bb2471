"""The planner: try every candidate chain for a stream and keep the smallest.

Sizes are computed before anything is encoded: bit-packing and Huffman sizes exactly from the histogram, ANS from the
quantized model's ideal cost (within a few bytes). Tensor codecs are split for real (cheap numpy) and their child
streams planned recursively. Only the winning plan is built; when its symbol coder's size was an estimate, every
coder within 1% of it is built and the smallest result kept, so estimates never cost more than that margin.
Plans of identical child streams (the values of the ``escape`` and ``bitmask`` sparse variants, say) are memoized.

Example:
    >>> from modelpress.codec.dtypes import DTYPES
    >>> from modelpress.codec.streams import TensorSpec
    >>> values = np.zeros(1000, np.uint32)
    >>> values[::10] = 0x3F800000  # 1.0f every 10th element
    >>> node = Planner().plan(values, TensorSpec(DTYPES["float32"], 1000)).build()
    >>> node.size, node.text()[:22]
    (18, 'sparse[escape,bits=4](')
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modelpress.codec.base import Split
from modelpress.codec.bitpack import BITPACK, min_bits
from modelpress.codec.catalog import SYMBOL_CODECS, TENSOR_CODECS
from modelpress.codec.chain import build_node
from modelpress.codec.codebook import CODEBOOK
from modelpress.codec.dense import DENSE
from modelpress.codec.node import Node
from modelpress.codec.streams import Spec, SymbolSpec, TensorSpec

__all__ = ["Plan", "Planner"]

_REFINE = 1.01  # build every symbol coder whose estimate is within 1% of the best estimate


@dataclass(frozen=True)
class Plan:
    """A candidate encoding: its (estimated) size in bytes and how to build it.

    Example:
        >>> Plan(3, lambda: None).size
        3
    """

    size: int
    build: Callable[[], Node]


class Planner:
    """Plans chains for the streams of one tensor (memoizing identical child streams).

    Example:
        >>> plan = Planner().plan(np.array([0, 1, 1, 1], np.uint8), SymbolSpec(2, 4))
        >>> plan.size, plan.build().text()
        (1, 'bitpack[bits=1]')
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[str, bool, str], Plan] = {}

    def plan(self, values: np.ndarray, spec: Spec, min_size: int = 0, allow_sparse: bool = True) -> Plan:
        """The smallest plan for a stream whose size is at least ``min_size`` (the expansion bound of the root).

        When no candidate reaches ``min_size``, falls back to a codebook with one bit or more per index, or ``dense``.
        """
        key = (repr(spec), allow_sparse, hashlib.blake2b(values.tobytes(), digest_size=16).hexdigest())
        if min_size == 0 and key in self._memo:
            return self._memo[key]
        if isinstance(spec, SymbolSpec):
            result = self._plan_symbols(values, spec)
        else:
            result = self._plan_tensor(values, spec, min_size, allow_sparse)
        if min_size == 0:
            self._memo[key] = result
        return result

    def _plan_symbols(self, values: np.ndarray, spec: SymbolSpec) -> Plan:
        hist = np.bincount(values, minlength=spec.alphabet)
        options: list[tuple[int, bool, str]] = []
        for codec in SYMBOL_CODECS:
            estimate = codec.estimate(values, spec, hist)
            if estimate is not None:
                options.append((estimate[0], estimate[1], codec.name))
        best = min(size for size, _, _ in options)

        def build() -> Node:
            # Build the best estimate, plus every rival within the refinement margin; keep the smallest real one.
            contenders = [name for size, _, name in options if size <= best * _REFINE + 16]
            nodes = [build_node(name, values, spec, {}, None) for name in contenders]
            return min(nodes, key=lambda node: node.size)

        return Plan(best, build)

    def _plan_tensor(self, values: np.ndarray, spec: TensorSpec, min_size: int, allow_sparse: bool) -> Plan:
        best: Plan | None = None
        for codec in TENSOR_CODECS:
            if codec.name == "sparse" and not allow_sparse:
                continue
            for choice in codec.choices(values, spec):
                split = codec.split(values, spec, **choice)
                children = [(name, self.plan(child, child_spec, allow_sparse=False))
                            for name, child, child_spec in split.children]
                size = len(split.data) + sum(plan.size for _, plan in children)
                if size >= min_size and (best is None or size < best.size):
                    best = Plan(size, _assembler(codec.name, spec, split, children))
        if best is None or min_size > 0:  # the bound binds: a bit-packed codebook may beat what reaches it
            fallback = self._fallback(values, spec)
            if best is None or fallback.size < best.size:
                best = fallback
        return best

    def _fallback(self, values: np.ndarray, spec: TensorSpec) -> Plan:
        """A plan that always meets the expansion bound: a codebook with at least one bit per index (>= count / 8
        bytes, enough for every dtype) if it applies, else ``dense``. Used when the bound binds (huge constant
        tensors), where it beats byte planes of one-bit Huffman codes."""
        dense = DENSE.split(values, spec)
        best = Plan(len(dense.data), _assembler(DENSE.name, spec, dense, []))
        if CODEBOOK.choices(values, spec):
            split = CODEBOOK.split(values, spec)
            (name, indices, index_spec), = split.children
            bits = {"bits": max(1, min_bits(int(split.params["size"])))}
            size = len(split.data) + (index_spec.count * bits["bits"] + 7) // 8
            if size < best.size:
                child = Plan(size, lambda: build_node(BITPACK.name, indices, index_spec, bits, None))
                best = Plan(size, _assembler(CODEBOOK.name, spec, split, [(name, child)]))
        return best


def _assembler(codec: str, spec: Spec, split: Split, children: list[tuple[str, Plan]]) -> Callable[[], Node]:
    """A builder that materializes the node of ``split`` with its planned children."""

    def build() -> Node:
        kids = tuple((name, plan.build()) for name, plan in children)
        return Node(codec, split.params, spec, len(split.data), split.data, kids)

    return build
