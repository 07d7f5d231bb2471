"""The report's bit-width section: for every stage that chose a width per layer (notes key ``layer_bits``, e.g. the
``quantize-mixed`` stage), a bar chart of each layer's bits (bar width: its share of the quantized weights is in
the table) and a table with one row per layer: chosen bits, weights and, when the stage ran a sensitivity sweep
(notes key ``sensitivity_bits``), the output SQNR of the layer quantized alone at each candidate width.

Example:
    >>> from modelpress.history import History, HistoryRow
    >>> rows = [{"layer": "fc1", "bits": b, "weights": 100, "output_sqnr_db": 10.0 * b} for b in (2, 4)]
    >>> row = HistoryRow("mixed", 1, 1, 1, 1, 1.0, {}, 0.0, notes={"layer_bits": {"fc1": 4}, "sensitivity_bits": rows})
    >>> [stage for stage, _ in bits_stages(History([row]))]
    ['mixed']
    >>> ">40<" in bits_table({"fc1": 4}, rows)
    True
    >>> bits_png({"fc1": 4}, rows)[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

from html import escape
from typing import Any

from modelpress.history import History
from modelpress.report.formatting import note_value
from modelpress.report.plots import FINAL, ORIGINAL, _figure, _png, _short

__all__ = ["bits_png", "bits_stages", "bits_table"]


def bits_stages(history: History) -> list[tuple[str, dict[str, Any]]]:
    """``(stage name, notes)`` of every stage whose notes hold a non-empty ``layer_bits`` map, in order.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> bits_stages(History([HistoryRow("original", 1, 1, 1, 1, 1.0, {}, 0.0)]))
        []
    """
    return [(row.stage, row.notes) for row in history.rows
            if isinstance(row.notes.get("layer_bits"), dict) and row.notes["layer_bits"]]


def _sqnr(rows: list[dict[str, Any]]) -> dict[tuple[str, int], Any]:
    return {(str(r["layer"]), int(r["bits"])): r.get("output_sqnr_db") for r in rows}


def bits_table(layer_bits: dict[str, int], rows: list[dict[str, Any]] | None = None) -> str:
    """An HTML table: layer, chosen bits, weights (from the sweep rows), output SQNR (dB) at each swept width.
    All text is escaped.

    Example:
        >>> "<td class=\\"num\\">8</td>" in bits_table({"conv<1>": 8})
        True
    """
    rows = rows or []
    grid = sorted({int(r["bits"]) for r in rows})
    sqnr = _sqnr(rows)
    weights = {str(r["layer"]): r.get("weights") for r in rows}
    head = "<th>Layer</th><th class='num'>Bits</th><th class='num'>Weights</th>" + "".join(
        f"<th class='num'>SQNR at {b} bits (dB)</th>" for b in grid)
    body = []
    for layer, bits in layer_bits.items():
        cells = "".join(f'<td class="num">{escape(note_value(sqnr.get((layer, b))))}</td>' for b in grid)
        body.append(f'<tr><td class="layer">{escape(layer)}</td><td class="num">{escape(str(bits))}</td>'
                    f'<td class="num">{escape(note_value(weights.get(layer, "-")))}</td>{cells}</tr>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


def bits_png(layer_bits: dict[str, int], rows: list[dict[str, Any]] | None = None) -> bytes:
    """Horizontal bars: each layer's chosen bits (dashed line: the weight-count-weighted mean when the sweep gave
    the weights, else the plain mean).

    Example:
        >>> bits_png({"a": 2, "b": 8})[:4]
        b'\\x89PNG'
    """
    layers = list(layer_bits)
    weights = {str(r["layer"]): float(r.get("weights", 1)) for r in rows or []}
    total = sum(weights.get(n, 1.0) for n in layers)
    mean = sum(layer_bits[n] * weights.get(n, 1.0) for n in layers) / max(total, 1e-12)
    with _figure(7.2, 1.2 + 0.22 * min(len(layers), 60)) as fig:
        ax = fig.subplots()
        ys = list(range(len(layers)))[::-1]
        colors = [FINAL if layer_bits[n] <= 4 else ORIGINAL for n in layers]
        ax.barh(ys, [layer_bits[n] for n in layers], color=colors, height=0.7)
        ax.set_yticks(ys, [_short(n) for n in layers], fontsize=7 if len(layers) > 20 else 9)
        ax.axvline(mean, linestyle="--", color="#475569", linewidth=1)
        ax.set_xlabel(f"bits per weight (dashed: mean {mean:.2f})")
        ax.set_xlim(0, 8.5)
        ax.set_title("Bits per layer")
        return _png(fig)
