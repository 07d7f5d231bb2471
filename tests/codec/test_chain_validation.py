"""parse_chain rejects every malformed node with a FormatError naming the node and the violation."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from modelpress.codec import DTYPES, SymbolSpec, TensorSpec, attach, build_node, parse_chain
from modelpress.errors import FormatError

SPEC = TensorSpec(DTYPES["float32"], 64)


def valid_chain() -> dict:
    values = np.zeros(64, np.uint32)
    values[::5] = 0x3F800000
    values[1::7] = 0x40000000

    def child(name, stream, spec):
        if isinstance(spec, SymbolSpec):
            return build_node("huffman" if spec.count else "bitpack", stream, spec, {}, None)
        return build_node("codebook", stream, spec, {}, child)

    return build_node("sparse", values, SPEC, {"variant": "escape", "bits": 2}, child).to_json()


def mutated(path: list, value) -> dict:
    chain = copy.deepcopy(valid_chain())
    target = chain
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return chain


CASES = [
    (["codec"], "zip", r"chain: expected codec one of ans, bitpack, codebook, dense, huffman, planes, sparse, "
                       r"got 'zip'"),
    (["bits"], 9, r"chain \(sparse\): expected bits in \[1, 8\], got 9"),
    (["bits"], True, r"chain \(sparse\): expected an integer bits, got True"),
    (["entries"], 10**30, r"chain \(sparse\): expected entries in \[0, 64\], got 1000000000000000000000000000000"),
    (["variant"], "rle", r"expected variant one of bitmask, escape, fillers, got 'rle'"),
    (["variant"], 3, r"chain \(sparse\): expected a str variant, got 3"),
    (["long"], KeyError, r"chain \(sparse\): expected parameter 'long', got <nothing>"),
    (["extra"], 1, r"chain \(sparse\): expected only the keys .*got <extra keys \['extra'\]>"),
    (["nbytes"], -1, r"chain \(sparse\): expected nbytes >= 0, got -1"),
    (["nbytes"], 1.5, r"chain \(sparse\): expected an integer nbytes, got 1.5"),
    (["children", "long"], KeyError, r"expected children \['positions', 'long', 'values'\], got \['positions', 'valu"),
    (["children", "values", "size"], 300, r"chain.values \(codebook\): expected size in \[1, "),
    (["children", "values", "nbytes"], 3, r"chain.values \(codebook\): expected nbytes = \d+ \(size x itemsize\)"),
    (["children", "positions", "codec"], "dense", r"chain.positions \(dense\): expected a codec for a TensorSpec"),
    (["children", "values", "codec"], "huffman", r"chain.values \(huffman\): expected a codec for a SymbolSpec"),
    (["children", "positions", "lane"], 0, r"chain.positions \(huffman\): expected lane in \[1, "),
    (["children", "positions", "nbytes"], 1, r"chain.positions \(huffman\): expected nbytes >= "),
    (["children"], [], r"chain \(sparse\): expected children \['positions', 'long', 'values'\], got \[\]"),
]


@pytest.mark.parametrize(("path", "value", "message"), CASES, ids=[str(c[0]) + str(c[1])[:8] for c in CASES])
def test_malformed_nodes_are_rejected_with_their_message(path, value, message):
    with pytest.raises(FormatError, match=message):
        parse_chain(mutated(path, value), SPEC, "chain")


def test_valid_chain_parses():
    node = parse_chain(valid_chain(), SPEC, "chain")
    assert node.codec == "sparse" and [name for name, _ in node.children] == ["positions", "long", "values"]


def test_depth_is_limited():
    leaf = {"codec": "dense", "nbytes": 4 * 64}
    chain = leaf
    for _ in range(8):
        chain = {"codec": "sparse", "nbytes": 0, "variant": "bitmask", "bits": 0, "entries": 64, "long": 0,
                 "children": {"mask": {"codec": "bitpack", "nbytes": 8, "bits": 1}, "values": chain}}
    with pytest.raises(FormatError, match=r"expected a chain at most 8 levels deep, got <level 9>"):
        parse_chain(chain, SPEC, "chain")


def test_nodes_without_children_reject_a_children_key():
    with pytest.raises(FormatError, match=r"chain \(dense\): expected no children, got <a children object>"):
        parse_chain({"codec": "dense", "nbytes": 256, "children": {}}, SPEC, "chain")


def test_attach_needs_the_exact_payload_length():
    node = parse_chain(valid_chain(), SPEC, "chain")
    with pytest.raises(FormatError, match=r"expected a payload of \d+ bytes \(sum of the chain's nbytes\), got"):
        attach(node, memoryview(b"\0" * (node.size + 1)), "chain")
