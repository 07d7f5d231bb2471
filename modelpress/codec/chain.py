"""Chains end to end: build a node from a stream, parse and validate a node from JSON, attach a payload, decode.

Reading is three steps so that nothing is allocated before everything is checked: :func:`parse_chain` validates the
JSON tree against the stream its parent expects (every codec's ``check``, depth at most :data:`MAX_DEPTH`);
:func:`attach` checks that the own-data lengths add up to the payload and slices it (no copy); :func:`decode_chain`
runs the codecs' ``join`` bottom-up.

Example:
    >>> import numpy as np
    >>> from modelpress.codec.streams import SymbolSpec
    >>> node = build_node("bitpack", np.array([3, 1, 2], np.uint8), SymbolSpec(4, 3), {}, None)
    >>> skeleton = parse_chain(node.to_json(), SymbolSpec(4, 3), "demo")
    >>> decode_chain(attach(skeleton, memoryview(node.payload()), "demo"), "demo").tolist()
    [3, 1, 2]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelpress.codec.catalog import CODECS
from modelpress.codec.node import Node
from modelpress.codec.streams import Spec
from modelpress.errors import FormatError

__all__ = ["MAX_DEPTH", "ChildEncoder", "attach", "build_node", "decode_chain", "parse_chain"]

MAX_DEPTH = 8

ChildEncoder = Callable[[str, np.ndarray, Spec], Node]


def build_node(codec: str, values: np.ndarray, spec: Spec, choice: Mapping[str, Any],
               encode_child: ChildEncoder | None) -> Node:
    """Encode ``values`` with one codec (parameters ``choice``), its child streams with ``encode_child``.

    Example:
        >>> from modelpress.codec.dtypes import DTYPES
        >>> from modelpress.codec.streams import TensorSpec
        >>> build_node("dense", np.array([1, 2], np.uint8), TensorSpec(DTYPES["uint8"], 2), {}, None).payload()
        b'\\x01\\x02'
    """
    split = CODECS.get(codec).split(values, spec, **choice)
    if split.children and encode_child is None:
        raise ValueError(f"codec {codec!r} has child streams: pass encode_child")
    children = tuple((name, encode_child(name, child, child_spec))  # type: ignore[misc]
                     for name, child, child_spec in split.children)
    return Node(codec, split.params, spec, len(split.data), split.data, children)


def _int(where: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FormatError(where, f"an integer {key}", value)
    return value


def parse_chain(obj: Any, spec: Spec, where: str, depth: int = 1) -> Node:
    """Validate a JSON chain node against the stream ``spec``; return the node tree without its bytes.

    Example:
        >>> from modelpress.codec.streams import SymbolSpec
        >>> parse_chain({"codec": "bitpack", "nbytes": 1, "bits": 9}, SymbolSpec(2, 3), "chain")
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: chain (bitpack): expected bits in [1, 8], got 9
    """
    if depth > MAX_DEPTH:
        raise FormatError(where, f"a chain at most {MAX_DEPTH} levels deep", f"<level {depth}>")
    if not isinstance(obj, dict):
        raise FormatError(where, "a chain node (JSON object)", f"<{type(obj).__name__}>")
    name = obj.get("codec")
    if not isinstance(name, str) or name not in CODECS:
        known = ", ".join(sorted(CODECS))
        raise FormatError(where, f"codec one of {known}", name, "the file was written by a newer modelpress")
    codec = CODECS.get(name)
    here = f"{where} ({name})"
    if not isinstance(spec, codec.consumes):
        raise FormatError(here, f"a codec for a {codec.consumes.__name__} stream", f"<codec for {spec!r}>")
    nbytes = _int(here, "nbytes", obj.get("nbytes"))
    if nbytes < 0:
        raise FormatError(here, "nbytes >= 0", nbytes)
    allowed = {"codec", "nbytes", "children", *codec.param_types}
    extra = sorted(set(obj) - allowed)
    if extra:
        raise FormatError(here, f"only the keys {', '.join(sorted(allowed))}", f"<extra keys {extra}>")
    params: dict[str, Any] = {}
    for key, kind in codec.param_types.items():
        if key not in obj:
            raise FormatError(here, f"parameter {key!r}", "<nothing>")
        value = obj[key]
        if kind is int:
            value = _int(here, key, value)
        elif not isinstance(value, kind):
            raise FormatError(here, f"a {kind.__name__} {key}", value)
        params[key] = value
    child_specs = codec.check(params, spec, nbytes, here)
    raw_children = obj.get("children")
    names = [child for child, _ in child_specs]
    if not child_specs:
        if raw_children is not None:
            raise FormatError(here, "no children", "<a children object>")
        return Node(name, params, spec, nbytes)
    if not isinstance(raw_children, dict) or sorted(raw_children) != sorted(names):
        got = sorted(raw_children) if isinstance(raw_children, dict) else raw_children
        raise FormatError(here, f"children {names}", got if got is not None else "<nothing>")
    children = tuple((child, parse_chain(raw_children[child], child_spec, f"{where}.{child}", depth + 1))
                     for child, child_spec in child_specs)
    return Node(name, params, spec, nbytes, b"", children)


def attach(node: Node, payload: memoryview, where: str) -> Node:
    """The node tree with each node's bytes sliced from ``payload`` (pre-order); lengths must add up exactly.

    Example:
        >>> from modelpress.codec.streams import SymbolSpec
        >>> attach(Node("bitpack", {"bits": 1}, SymbolSpec(2, 3), 1), memoryview(b"ab"), "demo")
        Traceback (most recent call last):
        ...
        modelpress.errors.FormatError: demo: expected a payload of 1 bytes (sum of the chain's nbytes), got 2
    """
    if node.size != len(payload):
        raise FormatError(where, f"a payload of {node.size} bytes (sum of the chain's nbytes)", len(payload))

    def slice_tree(n: Node, start: int) -> tuple[Node, int]:
        own = payload[start:start + n.nbytes]
        start += n.nbytes
        kids = []
        for child_name, child in n.children:
            sliced, start = slice_tree(child, start)
            kids.append((child_name, sliced))
        return Node(n.codec, n.params, n.spec, n.nbytes, own, tuple(kids)), start

    return slice_tree(node, 0)[0]


def decode_chain(node: Node, where: str) -> np.ndarray:
    """Decode a node with its bytes attached into its stream (bit patterns or symbols, 1-D).

    Example:
        >>> from modelpress.codec.streams import SymbolSpec
        >>> decode_chain(Node("bitpack", {"bits": 2}, SymbolSpec(4, 2), 1, b"\\x0e"), "demo").tolist()
        [2, 3]
    """
    here = f"{where} ({node.codec})"
    children = {name: decode_chain(child, f"{where}.{name}") for name, child in node.children}
    data = np.frombuffer(node.data, dtype=np.uint8)
    return CODECS.get(node.codec).join(node.params, node.spec, data, children, here)
