"""The report as one self-contained HTML page: no external URLs, scripts, fonts or stylesheets.

Sections, top to bottom: header (model, task, recipe, primary metric, date, machine, latency setup); headline cards
(final size reduction, speedup, primary metric change, sparsity); the per-stage table; size vs primary metric; per
stage size and latency ratios; per-layer bars and table of the final stage against the original; skipped layers with
reasons; each stage's notes. Plots are PNGs embedded as ``data:`` URIs. Every piece of text from the history or the
info is escaped.

Example:
    >>> import pathlib, tempfile
    >>> from modelpress.history import History, HistoryRow
    >>> rows = [HistoryRow("original", 41_200, 100, 100, 200, 2.0, {"accuracy": 0.98}, 0.0),
    ...         HistoryRow("prune", 1_000, 100, 10, 200, 1.0, {"accuracy": 0.97}, 3.0)]
    >>> path = write_html(History(rows), {"model": "m", "task": "t", "primary_metric": "accuracy"},
    ...                   pathlib.Path(tempfile.mkdtemp()) / "report.html")
    >>> "41.2x" in path.read_text()
    True
"""

from __future__ import annotations

import base64
import os
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from modelpress.atomic import write_text_atomic
from modelpress.history import History, HistoryRow
from modelpress.report.bits import bits_png, bits_stages, bits_table
from modelpress.report.formatting import (
    MISSING,
    human_bytes,
    human_count,
    is_fraction_metric,
    is_missing,
    metric_value,
    milliseconds,
    note_value,
    percent,
    ratio,
)
from modelpress.report.info import InfoLike, ReportInfo, resolve_info
from modelpress.report.plots import layer_comparison_png, size_vs_metric_png, stage_ratios_png
from modelpress.report.sensitivity import sensitivity_metric, sensitivity_png, sensitivity_stages, sensitivity_table
from modelpress.report.style import STYLESHEET
from modelpress.report.summary import StageSummary, summarize, summary_columns

__all__ = ["render_html", "write_html"]


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _version() -> str:
    try:
        return metadata.version("modelpress")
    except metadata.PackageNotFoundError:
        return "(source tree)"


def _setup_text(setup: dict[str, Any]) -> str:
    return " · ".join(f"{k} {note_value(v)}" for k, v in setup.items()) if setup else "not recorded"


def _header(info: ReportInfo, history: History) -> str:
    direction = "higher is better" if info.higher_is_better else "lower is better"
    items = [  # model and task are the page title
        ("Recipe", info.recipe or MISSING),
        ("Primary metric", f"{info.primary_metric} ({direction})"),
        ("Date", info.date or MISSING),
        ("Machine", info.machine or MISSING),
        ("Latency setup", _setup_text(history.rows[0].latency_setup)),
    ]
    meta = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return (f'<header><p class="eyebrow">modelpress compression report</p>'
            f'<h1>{_e(info.model)} <span class="task">on {_e(info.task)}</span></h1>'
            f'<dl class="meta">{meta}</dl></header>')


def _card(label: str, value: str | tuple[str, str], detail: str, change: str = "", tone: str = "") -> str:
    text, value_tone = value if isinstance(value, tuple) else (value, "")
    value_class = f"value {value_tone}" if value_tone else "value"
    change_html = f' <span class="{tone}">{_e(change)}</span>' if change else ""
    return (f'<div class="card"><div class="label">{_e(label)}</div><div class="{value_class}">{_e(text)}</div>'
            f'<div class="detail">{_e(detail)}{change_html}</div></div>')


def _metric_change(info: ReportInfo, first: HistoryRow, last: HistoryRow) -> tuple[str, str]:
    before, after = first.metrics.get(info.primary_metric), last.metrics.get(info.primary_metric)
    if before is None or after is None or is_missing(before) or is_missing(after):
        return MISSING, ""
    delta = after - before
    text = f"{100 * delta:+.2f} points" if is_fraction_metric(info.primary_metric) else f"{delta:+.4f}"
    text = text.replace("-", "−")  # a real minus sign
    improved = delta >= 0 if info.higher_is_better else delta <= 0
    return text, "good" if improved else "bad"


def _times(value: float | None, better: str, worse: str) -> tuple[str, str]:
    # a headline ratio reads as "8.82x smaller" or, below 1, "144x slower" (flagged)
    if value is None:
        return MISSING, ""
    if value >= 1:
        return f"{ratio(value)} {better}", ""
    return f"{ratio(1 / value)} {worse}", "bad"


def _cards(info: ReportInfo, stages: list[StageSummary]) -> str:
    first, last = stages[0], stages[-1]
    change, tone = _metric_change(info, first.row, last.row)
    metric = info.primary_metric
    sparsity = percent(last.sparsity) if last.sparsity is not None else MISSING
    cards = [
        _card("File size", _times(last.size_ratio, "smaller", "larger"),
              f"{human_bytes(first.row.file_bytes)} → {human_bytes(last.row.file_bytes)}"),
        _card("Latency", _times(last.speedup, "faster", "slower"),
              f"{milliseconds(first.row.latency_ms)} → {milliseconds(last.row.latency_ms)}"),
        _card(metric, metric_value(metric, last.row.metrics.get(metric)),
              f"{first.row.stage}: {metric_value(metric, first.row.metrics.get(metric))}",
              change if change != MISSING else "", tone),
        _card("Sparsity", sparsity, f"{human_count(last.row.nonzeros)} of {human_count(last.row.params)} "
                                    "parameters nonzero"),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _section(title: str, lead: str, body: str) -> str:
    lead_html = f'<p class="lead">{_e(lead)}</p>' if lead else ""
    return f"<section><h2>{_e(title)}</h2>{lead_html}{body}</section>"


def _stage_table(history: History, info: ReportInfo) -> str:
    columns = summary_columns(history, info)
    head = "".join(f'<th class="num">{_e(c.header)}</th>' if c.numeric else f"<th>{_e(c.header)}</th>"
                   for c in columns)
    body = []
    for i in range(len(history.rows)):
        cells = "".join(f'<td class="{"num" if c.numeric else "name"}">{_e(c.cells[i])}</td>' for c in columns)
        body.append(f"<tr>{cells}</tr>")
    table = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    return _section("Stages", "One row per stage, in order. Sizes are bytes of the packed file; ratios and "
                    "speedups (in parentheses) are against the first row.", table)


def _layer_table(history: History) -> str:
    last = history.rows[-1]
    if not last.layers:
        return f'<p class="empty">Stage {_e(last.stage)} recorded no per-layer rows.</p>'
    head = ("<th>Layer</th><th>Kind</th><th class='num'>Params</th><th class='num'>Nonzeros</th>"
            "<th class='num'>Sparsity</th><th class='num'>FLOPs</th><th class='num'>Bytes</th>")
    rows = []
    for layer in last.layers:
        width = f"{100 * layer.sparsity:.0f}%"
        rows.append(
            f'<tr><td class="layer">{_e(layer.name)}</td><td>{_e(layer.kind)}</td>'
            f'<td class="num">{_e(human_count(layer.params))}</td><td class="num">{_e(human_count(layer.nonzeros))}'
            f'</td><td class="num">{_e(percent(layer.sparsity))}<span class="bar"><span style="width:{width}">'
            f'</span></span></td><td class="num">{_e(human_count(layer.flops))}</td>'
            f'<td class="num">{_e(human_bytes(layer.bytes))}</td></tr>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</div>")


def _layers(history: History) -> str:
    first, last = history.rows[0], history.rows[-1]
    png = layer_comparison_png(history)
    if png is None:
        return _section("Layers", "", '<p class="empty">No stage recorded per-layer rows.</p>')
    figure = (f"<figure>{_img(png, f'Per-layer nonzero parameters, FLOPs and sparsity: {first.stage} vs {last.stage}')}"
              "<figcaption>Nonzero parameters show pruning that a parameter count would hide; FLOPs are for one "
              "example. A layer missing from one side (e.g. replaced by factors) shows no bar there."
              "</figcaption></figure>")
    title = f"Layers of the final stage ({last.stage})"
    return _section(title, f"Compared with {first.stage}; the table lists the final stage's layers in model order.",
                    figure + '<h3 class="sub">Per-layer rows</h3>' + _layer_table(history))


def _skips(history: History) -> str:
    skips = [(row.stage, skip) for row in history.rows for skip in row.skipped]
    if not skips:
        return _section("Skipped layers", "", '<p class="empty">No stage skipped a layer.</p>')
    rows = "".join(f'<tr><td class="name">{_e(stage)}</td><td class="layer">{_e(s.layer)}</td>'
                   f"<td>{_e(s.reason)}</td></tr>" for stage, s in skips)
    table = (f'<div class="scroll"><table><thead><tr><th>Stage</th><th>Layer</th><th>Reason</th></tr></thead>'
             f"<tbody>{rows}</tbody></table></div>")
    return _section("Skipped layers", "Layers a stage left untouched, and why.", table)


# Notes that have a section of their own point to it instead of being dumped raw into the stage notes.
_SECTION_POINTERS = {"sensitivity": "see the sensitivity section", "sensitivity_bits": "see the bits per layer section"}


def _notes(history: History) -> str:
    reference = history.rows[0].latency_setup
    articles = []
    for row in history.rows:
        items = [(k, _SECTION_POINTERS.get(k, v)) for k, v in row.notes.items()]
        if row.latency_setup != reference:
            items.append(("latency setup", _setup_text(row.latency_setup)))
        if not items:
            continue
        pairs = "".join(f"<dt>{_e(k)}</dt><dd>{_e(note_value(v))}</dd>" for k, v in items)
        articles.append(f"<article><h3>{_e(row.stage)}</h3><dl>{pairs}</dl></article>")
    body = (f'<div class="stage-notes">{"".join(articles)}</div>' if articles
            else '<p class="empty">No stage recorded notes.</p>')
    return _section("Stage notes", "Figures each stage recorded about itself." if articles else "", body)


def _sensitivity(history: History, metric: str) -> str:
    parts = []
    for stage, notes in sensitivity_stages(history):
        rows, chosen = notes["sensitivity"], notes.get("layer_sparsity", {})
        shown = sensitivity_metric(rows, metric)
        png = sensitivity_png(rows, chosen, shown)
        parts.append(f'<h3 class="sub">{_e(stage)}</h3><figure>{_img(png, f"Sensitivity of each layer: {shown}")}'
                     f"</figure>{sensitivity_table(rows, chosen, shown)}")
    if not parts:
        return ""
    return _section("Sensitivity", "Each layer pruned alone to each sparsity, the others intact; the chosen "
                    "per-layer sparsities meet the stage's overall target (chosen from the training loss).",
                    "".join(parts))


def _bits(history: History) -> str:
    parts = []
    for stage, notes in bits_stages(history):
        rows = notes.get("sensitivity_bits") if isinstance(notes.get("sensitivity_bits"), list) else None
        png = bits_png(notes["layer_bits"], rows)
        parts.append(f'<h3 class="sub">{_e(stage)}</h3><figure>{_img(png, "Bits per layer")}</figure>'
                     f"{bits_table(notes['layer_bits'], rows)}")
    if not parts:
        return ""
    return _section("Bits per layer", "The width each layer was quantized to; with a sensitivity sweep, the output "
                    "SQNR (training inputs) of each layer quantized alone at each candidate width.", "".join(parts))


def render_html(history: History, info: InfoLike) -> str:
    """The whole page as a string (see the module docstring for its sections).

    Example:
        >>> from modelpress.history import HistoryRow
        >>> row = HistoryRow("<original>", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)
        >>> page = render_html(History([row]), {"model": "m", "task": "t", "primary_metric": "accuracy"})
        >>> "&lt;original&gt;" in page and "<original>" not in page
        True
    """
    report_info = resolve_info(history, info)
    stages = summarize(history)
    metric = report_info.primary_metric
    size_plot = _section(
        f"File size vs {metric}", "One point per stage, in order; the star is the original model and each label "
        "gives the size reduction against it.",
        f"<figure>{_img(size_vs_metric_png(history, report_info), f'File size vs {metric} per stage')}</figure>")
    ratio_plot = _section(
        "Size and speed per stage", "How many times smaller the packed file is, and how many times faster the "
        "measured latency is, than the original's (dashed line: 1x).",
        f"<figure>{_img(stage_ratios_png(history), 'Size reduction and speedup per stage')}</figure>")
    body = "".join([
        _header(report_info, history),
        _cards(report_info, stages),
        _stage_table(history, report_info),
        size_plot,
        ratio_plot,
        _layers(history),
        _sensitivity(history, metric),
        _bits(history),
        _skips(history),
        _notes(history),
        f"<footer>Generated by modelpress {_e(_version())}.</footer>",
    ])
    title = f"modelpress report: {report_info.model} on {report_info.task}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{STYLESHEET}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def write_html(history: History, info: InfoLike, path: str | os.PathLike[str]) -> Path:
    """Render the page, then write it atomically (temporary file + ``os.replace``); returns the path. If rendering
    fails, nothing is written.

    Example:
        >>> import pathlib, tempfile
        >>> from modelpress.history import HistoryRow
        >>> row = HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)
        >>> path = write_html(History([row]), {"model": "m", "task": "t", "primary_metric": "accuracy"},
        ...                   pathlib.Path(tempfile.mkdtemp()) / "r.html")
        >>> path.read_text().startswith("<!DOCTYPE html>")
        True
    """
    return write_text_atomic(path, render_html(history, info))
