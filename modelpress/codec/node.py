"""A codec chain as a tree of nodes: the codec, its parameters, the stream it decodes to, its bytes and children.

A node's payload is its own bytes followed by its children's payloads in order (pre-order), exactly the layout of
docs/FORMAT.md section 5. The same tree renders as the JSON of the file header and as one line of text.

Example:
    >>> from modelpress.codec.streams import SymbolSpec
    >>> leaf = Node("bitpack", {"bits": 1}, SymbolSpec(2, 3), 1, b"\\x05")
    >>> leaf.to_json(), leaf.text(), leaf.size
    ({'codec': 'bitpack', 'nbytes': 1, 'bits': 1}, 'bitpack[bits=1]', 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelpress.codec.base import CODECS
from modelpress.codec.streams import Spec

__all__ = ["Node"]


@dataclass(frozen=True, eq=False)
class Node:
    """One codec step of a chain; ``data`` holds the node's own ``nbytes`` bytes (empty in a parsed skeleton).

    Example:
        >>> from modelpress.codec.streams import SymbolSpec
        >>> Node("bitpack", {"bits": 0}, SymbolSpec(1, 9), 0).payload()
        b''
    """

    codec: str
    params: dict[str, Any]
    spec: Spec
    nbytes: int
    data: bytes | memoryview = b""
    children: tuple[tuple[str, Node], ...] = field(default=())

    @property
    def size(self) -> int:
        """Bytes of this node and all its descendants."""
        return self.nbytes + sum(child.size for _, child in self.children)

    def payload(self) -> bytes:
        """The node's bytes in file order: own data, then each child's payload."""
        parts = [bytes(self.data)]
        parts.extend(child.payload() for _, child in self.children)
        return b"".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The node as it appears in the file's index (parameters inline, children by name)."""
        out: dict[str, Any] = {"codec": self.codec, "nbytes": self.nbytes, **self.params}
        if self.children:
            out["children"] = {name: child.to_json() for name, child in self.children}
        return out

    def text(self) -> str:
        """A one-line rendering, e.g. ``codebook[size=32](indices: huffman[lane=4096])``."""
        label = CODECS.get(self.codec).label(self.params) if self.codec in CODECS else ""
        out = self.codec + (f"[{label}]" if label else "")
        if self.children:
            out += "(" + ", ".join(f"{name}: {child.text()}" for name, child in self.children) + ")"
        return out
