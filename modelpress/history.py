"""What a run records: one :class:`HistoryRow` per stage (plus the original), each JSON-serializable.

Sizes are bytes of the real file the stage's model packs into; latency is a measured median; metrics come from the
task's held-out split. The report draws from these rows only.

Example:
    >>> row = HistoryRow(stage="original", file_bytes=1000, params=10, nonzeros=10, flops=20, latency_ms=1.0,
    ...                  metrics={"accuracy": 0.9}, wall_time_s=0.0)
    >>> History([row]).to_dicts()[0]["file_bytes"]
    1000
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["History", "HistoryRow", "LayerRow", "Skip"]


@dataclass(frozen=True)
class LayerRow:
    """One leaf module's footprint: parameter count, nonzeros, FLOPs for one example, bytes in memory."""

    name: str
    kind: str
    params: int
    nonzeros: int
    flops: int
    bytes: int

    @property
    def sparsity(self) -> float:
        """Fraction of this layer's parameters that are exactly zero."""
        return 1.0 - self.nonzeros / self.params if self.params else 0.0


@dataclass(frozen=True)
class Skip:
    """A layer a stage did not touch, and why (shown in the report: unsupported is explicit)."""

    layer: str
    reason: str


@dataclass
class HistoryRow:
    """The measured state of the model after one stage."""

    stage: str
    file_bytes: int
    params: int
    nonzeros: int
    flops: int
    latency_ms: float
    metrics: dict[str, float]
    wall_time_s: float
    latency_setup: dict[str, Any] = field(default_factory=dict)  # batch, threads, runs, warmup
    layers: list[LayerRow] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # stage-specific figures (e.g. sparsity, bits)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (layers and skips as dicts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryRow:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["layers"] = [LayerRow(**r) for r in data.get("layers", [])]
        data["skipped"] = [Skip(**s) for s in data.get("skipped", [])]
        return cls(**data)


@dataclass
class History:
    """The ordered rows of a run: the original model first, then one per stage."""

    rows: list[HistoryRow] = field(default_factory=list)

    def append(self, row: HistoryRow) -> None:
        """Add the row of the stage just measured."""
        self.rows.append(row)

    def to_dicts(self) -> list[dict[str, Any]]:
        """Every row as a JSON-able dict."""
        return [r.to_dict() for r in self.rows]

    def to_json(self) -> str:
        """The rows as a JSON array (indented)."""
        return json.dumps(self.to_dicts(), indent=2)

    @classmethod
    def from_dicts(cls, rows: list[dict[str, Any]]) -> History:
        """Inverse of :meth:`to_dicts`."""
        return cls([HistoryRow.from_dict(r) for r in rows])
