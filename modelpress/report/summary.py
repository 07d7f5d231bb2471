"""The per-stage summary: each row's figures next to its ratios against the first row, and the table's columns.

The terminal table, the HTML table and the JSON report all draw from :func:`summarize` and :func:`summary_columns`,
so every rendering shows the same numbers with the same formatting.

Example:
    >>> from modelpress.history import History, HistoryRow
    >>> rows = [HistoryRow("original", 41_200, 100, 100, 200, 2.0, {"accuracy": 0.98}, 0.0),
    ...         HistoryRow("prune", 1_000, 100, 10, 200, 1.0, {"accuracy": 0.97}, 3.0)]
    >>> last = summarize(History(rows))[-1]
    >>> round(last.size_ratio, 1), last.speedup, last.sparsity
    (41.2, 2.0, 0.9)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelpress.history import History, HistoryRow
from modelpress.report.formatting import (
    MISSING,
    duration,
    human_bytes,
    human_count,
    is_missing,
    metric_value,
    milliseconds,
    percent,
    ratio,
)
from modelpress.report.info import ReportInfo, history_metrics, require_rows

__all__ = ["Column", "StageSummary", "summarize", "summary_columns"]


@dataclass(frozen=True)
class StageSummary:
    """One stage's row with the derived figures: ``size_ratio`` (first row's bytes / this row's), ``speedup``
    (first row's latency / this row's) and ``sparsity`` (fraction of parameters that are zero). A ratio is
    ``None`` when either side was not measured.

    Example:
        >>> StageSummary(HistoryRow("s", 10, 4, 1, 8, 1.0, {}, 0.0), 2.0, None, 0.75).sparsity
        0.75
    """

    row: HistoryRow
    size_ratio: float | None
    speedup: float | None
    sparsity: float | None


def _ratio(reference: float | None, value: float | None) -> float | None:
    if reference is None or value is None or is_missing(reference) or is_missing(value) or value <= 0 or reference <= 0:
        return None
    return float(reference) / float(value)


def summarize(history: History) -> list[StageSummary]:
    """One :class:`StageSummary` per row; ratios are against the first row (the original model).

    Example:
        >>> rows = [HistoryRow("original", 100, 10, 10, 20, 1.0, {}, 0.0), HistoryRow("q", 25, 10, 10, 20, 0.5, {}, 1)]
        >>> [(s.size_ratio, s.speedup) for s in summarize(History(rows))]
        [(1.0, 1.0), (4.0, 2.0)]
    """
    require_rows(history)
    first = history.rows[0]
    out = []
    for row in history.rows:
        sparsity = 1.0 - row.nonzeros / row.params if row.params > 0 else None
        out.append(StageSummary(row=row, size_ratio=_ratio(first.file_bytes, row.file_bytes),
                                speedup=_ratio(first.latency_ms, row.latency_ms), sparsity=sparsity))
    return out


@dataclass(frozen=True)
class Column:
    """One column of the summary table: a header, one formatted cell per stage, and whether it holds numbers
    (numbers are right-aligned).

    Example:
        >>> Column("Stage", ["original"], numeric=False).cells
        ['original']
    """

    header: str
    cells: list[str]
    numeric: bool = True


def summary_columns(history: History, info: ReportInfo, compact: bool = False) -> list[Column]:
    """The columns of the per-stage table: stage, file size (and ratio), params, nonzeros (and sparsity), FLOPs,
    latency (and speedup), each metric (primary first, arrow showing which way is better), wall time.

    ``compact`` (for narrow terminals) puts each ratio on a second line of its cell instead of in parentheses,
    shows sparsity as a bare percentage under a two-line "Nonzeros / sparsity" header, and wraps long headers.

    Example:
        >>> rows = [HistoryRow("original", 41_200, 100, 100, 200, 2.0, {"accuracy": 0.98}, 0.0),
        ...         HistoryRow("prune", 1_000, 100, 10, 200, 1.0, {"accuracy": 0.97}, 3.0)]
        >>> info = ReportInfo(model="m", task="t", primary_metric="accuracy")
        >>> {c.header: c.cells[1] for c in summary_columns(History(rows), info)}["File size"]
        '1.00 kB (41.2x)'
        >>> {c.header: c.cells[1] for c in summary_columns(History(rows), info, compact=True)}["File size"]
        '1.00 kB\\n41.2x'
    """
    stages = summarize(history)
    metrics = history_metrics(history)
    if info.primary_metric in metrics:
        metrics.remove(info.primary_metric)
        metrics.insert(0, info.primary_metric)

    def _with(main: str, extra: str) -> str:
        if extra == MISSING or main == MISSING:
            return main
        return f"{main}\n{extra}" if compact else f"{main} ({extra})"

    def column(header: str, cell: Callable[[StageSummary], str], numeric: bool = True) -> Column:
        return Column(header, [cell(s) for s in stages], numeric)

    columns = [
        column("Stage", lambda s: s.row.stage, numeric=False),
        column("File size", lambda s: _with(human_bytes(s.row.file_bytes), ratio(s.size_ratio))),
        column("Params", lambda s: human_count(s.row.params)),
        column("Nonzeros\nsparsity" if compact else "Nonzeros",
               lambda s: _with(human_count(s.row.nonzeros), MISSING if s.sparsity is None
                               else percent(s.sparsity) + ("" if compact else " sparse"))),
        column("FLOPs", lambda s: human_count(s.row.flops)),
        column("Latency", lambda s: _with(milliseconds(s.row.latency_ms), ratio(s.speedup))),
    ]
    for name in metrics:
        arrow = "" if name != info.primary_metric else ("↑" if info.higher_is_better else "↓")
        arrow = f"\n{arrow}" if compact and arrow else f" {arrow}" if arrow else ""
        columns.append(column(f"{name}{arrow}", lambda s, n=name: metric_value(n, s.row.metrics.get(n))))
    columns.append(column("Wall\ntime" if compact else "Wall time", lambda s: duration(s.row.wall_time_s)))
    return columns
