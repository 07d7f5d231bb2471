"""The channel dependency graph: coupled channels found by union-find, grouped for pruning, printable.

Every channel a layer produces (a conv's output channel, a Linear's output feature, an embedding column, an attention
head) is an *element*. Tracing (:mod:`modelpress.structured.trace`) records, for every element, the slices of
parameters and buffers it owns (its *members*: ``(module, tensor, dim, index)``) and joins elements that must be
removed together: the two inputs of a residual add, a depthwise conv's input and output channel, the same position
in every group of a grouped conv, the two users of a tied weight. Elements that reach something a shape change would
break (the model's input or output, an op the tracer does not know) are *blocked*, with the reason.

After tracing, each connected set of elements is one prunable *unit*; units whose members touch the same
``(module, tensor, dim)`` slots form a :class:`Group` (e.g. the 64 channels of a ResNet stage, shared by two convs'
outputs, three convs' inputs and their BNs). Importance is scored per unit, aggregated over its members.

Example:
    >>> import torch
    >>> graph = ChannelGraph()
    >>> a = graph.new(2, members=[("conv1", "weight", 0)])  # conv1 makes 2 channels
    >>> b = graph.new(2, members=[("conv2", "weight", 0)])
    >>> graph.union(a, b)  # a residual add of conv1's and conv2's outputs
    >>> graph.consume(a, "fc", "weight", 1)  # fc reads them
    >>> groups = graph.groups()
    >>> len(groups), groups[0].size, groups[0].layers
    (1, 2, ('conv1', 'conv2'))
    >>> print(groups[0])
    Group of 2 channels, layers conv1, conv2
      conv1.weight dim 0 (2 indices)
      conv2.weight dim 0 (2 indices)
      fc.weight dim 1 (2 indices)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ChannelGraph", "Group", "Member"]

# (module name, tensor attribute, dim, index): one slice of one tensor owned by an element
Member = tuple[str, str, int, int]


@dataclass
class Group:
    """Coupled channels pruned together. ``units[u]``: the members of unit ``u`` (one channel, or one head);
    ``layers``: the modules producing these channels (what ``include``/``exclude``/overrides patterns match);
    ``kind``: ``channels`` or ``heads``/``head-dim`` (attention); ``blocked``: why it cannot be pruned (None: it can).
    """

    units: list[list[Member]]
    layers: tuple[str, ...]
    kind: str = "channels"
    blocked: str | None = None
    slots: tuple[tuple[str, str, int], ...] = field(default=())

    @property
    def size(self) -> int:
        """Number of units (channels or heads)."""
        return len(self.units)

    def __str__(self) -> str:
        counts: dict[tuple[str, str, int], int] = defaultdict(int)
        for unit in self.units:
            for module, tensor, dim, _ in unit:
                counts[(module, tensor, dim)] += 1
        noun = {"channels": "channels", "heads": "heads", "head-dim": "head dims"}[self.kind]
        head = f"Group of {self.size} {noun}, layers {', '.join(self.layers) or '-'}"
        if self.blocked:
            head += f" [blocked: {self.blocked}]"
        lines = [f"  {m}.{t} dim {d} ({n} indices)" for (m, t, d), n in sorted(counts.items())]
        return "\n".join([head, *lines])


class ChannelGraph:
    """Union-find over channel elements, with each element's members, producer layers and blocking reasons."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.members: list[list[Member]] = []
        self.producers: list[set[str]] = []
        self.blocked: dict[int, str] = {}
        self.kinds: dict[int, str] = {}
        self.keys: dict[tuple[int, int, int], int] = {}  # (id of the tensor, dim, index) -> first element owning it

    def new(self, count: int, members: Sequence[tuple[str, str, int]] = (), blocked: str | None = None,
            kind: str = "channels", producer: str | None = None) -> list[int]:
        """``count`` fresh elements; element ``i`` owns index ``i`` of each ``(module, tensor, dim)`` in ``members``
        (the output slots of ``producer``, by default the first member's module)."""
        made_by = producer if producer is not None else (members[0][0] if members else None)
        start = len(self.parent)
        ids = list(range(start, start + count))
        for i, e in enumerate(ids):
            self.parent.append(e)
            self.members.append([(m, t, d, i) for m, t, d in members])
            self.producers.append({made_by} if made_by is not None else set())
            if blocked:
                self.blocked[e] = blocked
        if kind != "channels":
            for e in ids:
                self.kinds[e] = kind
        return ids

    def find(self, e: int) -> int:
        """The representative of ``e``'s set."""
        root = e
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[e] != root:  # path compression
            self.parent[e], e = root, self.parent[e]
        return root

    def union(self, a: Sequence[int], b: Sequence[int]) -> None:
        """Join ``a[i]`` with ``b[i]`` for every ``i`` (same length)."""
        for x, y in zip(a, b, strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[ry] = rx

    def block(self, elements: Sequence[int], reason: str) -> None:
        """Mark elements as not prunable (the first reason given is kept)."""
        for e in elements:
            self.blocked.setdefault(e, reason)

    def consume(self, elements: Sequence[int], module: str, tensor: str, dim: int,
                index_of: Sequence[int] | None = None) -> None:
        """A layer reads ``elements``: element ``i`` owns index ``index_of[i]`` (default ``i``) of ``tensor``'s
        ``dim`` in ``module``."""
        for i, e in enumerate(elements):
            self.members[e].append((module, tensor, dim, i if index_of is None else index_of[i]))

    def own(self, element: int, member: Member) -> None:
        """Add one member to an element."""
        self.members[element].append(member)

    def tie(self, tensor_ids: dict[tuple[str, str], int]) -> None:
        """Join elements owning the same index of the same tensor object (a reused layer, tied weights)."""
        for e, members in enumerate(self.members):
            for module, tensor, dim, index in members:
                key = (tensor_ids[(module, tensor)], dim, index)
                first = self.keys.setdefault(key, e)
                if first != e:
                    self.union([first], [e])

    def groups(self) -> list[Group]:
        """The connected sets of elements as units, grouped by the tensor slots they touch (in trace order)."""
        units: dict[int, list[int]] = defaultdict(list)
        for e in range(len(self.parent)):
            units[self.find(e)].append(e)
        by_slots: dict[tuple[tuple[str, str, int], ...], Group] = {}
        for elements in units.values():
            members = sorted({m for e in elements for m in self.members[e]})
            if not members:
                continue  # elements nobody owns (e.g. the model's input channels)
            slots = tuple(sorted({(m, t, d) for m, t, d, _ in members}))
            kind = next((self.kinds[e] for e in elements if e in self.kinds), "channels")
            group = by_slots.get(slots)
            if group is None:
                layers = tuple(sorted({p for e in elements for p in self.producers[e]}))
                group = by_slots[slots] = Group([], layers, kind, slots=slots)
            group.units.append(members)
            reason = next((self.blocked[e] for e in elements if e in self.blocked), None)
            if reason and not group.blocked:
                group.blocked = reason
        return list(by_slots.values())
