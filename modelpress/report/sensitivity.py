"""The report's sensitivity section: for every stage that ran a sensitivity sweep (``scope: sensitivity`` in a
pruning stage, notes key ``sensitivity``), a plot of the task metric (or the training loss) against each layer's
sparsity with the sparsity the allocation chose marked, and a table with one row per layer.

The sweep's rows are ``{"layer", "sparsity", "loss", <held-out metrics>...}`` (see
:func:`modelpress.prune.pruner.PruneResult.notes`); the held-out metrics are there when the stage's
``sensitivity.report_metrics`` is on. The allocation itself only ever used the training loss.

Example:
    >>> from modelpress.history import History, HistoryRow
    >>> rows = [{"layer": "fc1", "sparsity": s, "loss": 0.2 + s, "accuracy": 0.95 - s / 10} for s in (0.0, 0.5, 0.9)]
    >>> row = HistoryRow("prune", 1, 1, 1, 1, 1.0, {}, 0.0,
    ...                  notes={"sensitivity": rows, "layer_sparsity": {"fc1": 0.7}})
    >>> [stage for stage, _ in sensitivity_stages(History([row]))]
    ['prune']
    >>> ">0.86<" in sensitivity_table(rows, {"fc1": 0.7}, "accuracy")  # accuracy at 90% sparsity
    True
    >>> sensitivity_png(rows, {"fc1": 0.7}, "accuracy")[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

from html import escape
from typing import Any

from matplotlib.ticker import PercentFormatter

from modelpress.history import History
from modelpress.report.formatting import note_value, percent
from modelpress.report.plots import _figure, _png, _short

__all__ = ["sensitivity_metric", "sensitivity_png", "sensitivity_stages", "sensitivity_table"]

_FIXED = ("layer", "sparsity", "loss")


def sensitivity_stages(history: History) -> list[tuple[str, dict[str, Any]]]:
    """``(stage name, notes)`` of every stage whose notes hold sensitivity rows, in order.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> rows = [HistoryRow("original", 1, 1, 1, 1, 1.0, {}, 0.0), HistoryRow("prune", 1, 1, 1, 1, 1.0, {}, 0.0,
        ...         notes={"sensitivity": [{"layer": "fc1", "sparsity": 0.5, "loss": 0.3}]})]
        >>> [stage for stage, _ in sensitivity_stages(History(rows))]
        ['prune']
    """
    return [(row.stage, row.notes) for row in history.rows
            if isinstance(row.notes.get("sensitivity"), list) and row.notes["sensitivity"]]


def sensitivity_metric(rows: list[dict[str, Any]], preferred: str | None = None) -> str:
    """The quantity to plot: ``preferred`` (the report's primary metric) if the rows have it, else the first
    held-out metric they have, else ``loss`` (training split).

    Example:
        >>> sensitivity_metric([{"layer": "a", "sparsity": 0.5, "loss": 1.0}], "accuracy")
        'loss'
    """
    extra = [k for k in rows[0] if k not in _FIXED]
    if preferred in extra:
        return str(preferred)
    return extra[0] if extra else "loss"


def _layers(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r["layer"]) for r in rows))


def sensitivity_table(rows: list[dict[str, Any]], chosen: dict[str, float], metric: str) -> str:
    """An HTML table: one row per layer, one column per swept sparsity (cell: ``metric``), and the sparsity the
    allocation chose for the layer. All text is escaped.

    Example:
        >>> table = sensitivity_table([{"layer": "fc<1>", "sparsity": 0.5, "loss": 0.25}], {"fc<1>": 0.5}, "loss")
        >>> "fc&lt;1&gt;" in table and "<th class='num'>50.0%</th>" in table and ">0.25<" in table
        True
    """
    grid = sorted({float(r["sparsity"]) for r in rows})
    value = {(str(r["layer"]), float(r["sparsity"])): r.get(metric) for r in rows}
    head = "<th>Layer</th><th class='num'>Chosen</th>" + "".join(f"<th class='num'>{escape(percent(s))}</th>"
                                                                  for s in grid)
    body = []
    for layer in _layers(rows):
        cells = "".join(f'<td class="num">{escape(note_value(value.get((layer, s))))}</td>' for s in grid)
        picked = percent(chosen[layer]) if layer in chosen else "-"
        body.append(f'<tr><td class="layer">{escape(layer)}</td><td class="num">{escape(picked)}</td>{cells}</tr>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


def sensitivity_png(rows: list[dict[str, Any]], chosen: dict[str, float], metric: str) -> bytes:
    """One line per layer: ``metric`` against the layer's own sparsity (the others intact); a ring marks the
    sparsity the allocation chose for the layer (interpolated on the line).

    Example:
        >>> rows = [{"layer": "fc1", "sparsity": s, "loss": 0.2 + s} for s in (0.0, 0.5, 0.9)]
        >>> sensitivity_png(rows, {"fc1": 0.7}, "loss")[:4]
        b'\\x89PNG'
    """
    layers = _layers(rows)
    with _figure(7.2, 3.6 + 0.12 * min(len(layers), 30)) as fig:
        ax = fig.subplots()
        for layer in layers:
            own = sorted((r for r in rows if str(r["layer"]) == layer and r.get(metric) is not None),
                         key=lambda r: float(r["sparsity"]))
            xs = [100.0 * float(r["sparsity"]) for r in own]
            ys = [float(r[metric]) for r in own]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.4, label=_short(layer))
            if layer in chosen and xs:
                x = 100.0 * chosen[layer]
                y = _interpolate(xs, ys, x)
                ax.plot([x], [y], marker="o", markersize=9, markerfacecolor="none", color=line.get_color())
        ax.set_xlabel("sparsity of the layer alone")
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        where = "held-out" if metric != "loss" else "training split"
        ax.set_ylabel(f"{metric} ({where})")
        ax.set_title(f"Sensitivity: {metric} with one layer pruned (ring: chosen sparsity)")
        if len(layers) <= 16:
            ax.legend(fontsize=8.5, loc="best")
        return _png(fig)


def _interpolate(xs: list[float], ys: list[float], x: float) -> float:
    """``y`` at ``x`` on the polyline through ``(xs, ys)`` (clamped at its ends)."""
    if x <= xs[0]:
        return ys[0]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            span = xs[i] - xs[i - 1]
            return ys[i - 1] + (ys[i] - ys[i - 1]) * ((x - xs[i - 1]) / span if span else 0.0)
    return ys[-1]
