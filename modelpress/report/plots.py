"""The report's plots, drawn with matplotlib's Agg canvas (no display, no pyplot global state) into PNG bytes.

Three figures: size (log bytes) against the primary metric, one point per stage; per-stage size reduction and
speedup against the original; per-layer parameters, FLOPs and sparsity of the final stage next to the original.
PNGs carry no software/date metadata, so the same history gives the same bytes.

Example:
    >>> from modelpress.history import History, HistoryRow
    >>> from modelpress.report.info import ReportInfo
    >>> rows = [HistoryRow("original", 41_200, 100, 100, 200, 2.0, {"accuracy": 0.98}, 0.0),
    ...         HistoryRow("prune", 1_000, 100, 10, 200, 1.0, {"accuracy": 0.97}, 3.0)]
    >>> size_vs_metric_png(History(rows), ReportInfo(model="m", task="t", primary_metric="accuracy"))[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, PercentFormatter

from modelpress.history import History, LayerRow
from modelpress.report.formatting import human_bytes, is_fraction_metric, is_missing, ratio, tick_count
from modelpress.report.info import ReportInfo
from modelpress.report.summary import summarize

__all__ = ["DPI", "layer_comparison_png", "layer_names", "size_vs_metric_png", "stage_ratios_png"]

DPI = 110
ORIGINAL = "#94a3b8"  # slate: the original model, everywhere
FINAL = "#2563eb"  # blue: compressed stages / the final stage
SPEED = "#0d9488"  # teal: latency
INK = "#1e293b"
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.edgecolor": "#cbd5e1",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "text.color": INK,
    "legend.frameon": False,
}
_MAX_LABEL = 48  # longer layer names are shortened in the middle; the layer table has them in full
_MAX_POINT_LABEL = 32  # stage names next to points
_MAX_STAGE_TICK = 26  # stage names as bar labels wrap onto two lines of this width


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    with rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _png(fig: Figure) -> bytes:
    with rc_context(_STYLE):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _bytes_axis(ax: Axes, values: list[float]) -> None:
    ax.set_xscale("log")
    low, high = min(values), max(values)
    ax.set_xlim(low / 2.2, high * 2.2)  # room for the point labels at both ends
    span = math.log10(high * 2.2) - math.log10(low / 2.2)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if span > 3 else (1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human_bytes(round(v))))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _original_label(stage: str) -> str:
    return stage if stage.strip().lower() == "original" else f"{stage} (original)"


def size_vs_metric_png(history: History, info: ReportInfo) -> bytes:
    """Packed file size (log scale) against the primary metric: one labelled point per stage, in order, with the
    original drawn as a star. Stages that did not measure the metric are left out.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> rows = [HistoryRow("original", 1000, 10, 10, 20, 1.0, {"loss": 0.3}, 0.0)]
        >>> len(size_vs_metric_png(History(rows), ReportInfo("m", "t", "loss", higher_is_better=False))) > 1000
        True
    """
    stages = summarize(history)
    as_percent = is_fraction_metric(info.primary_metric)
    points = []
    for i, s in enumerate(stages):
        value = s.row.metrics.get(info.primary_metric)
        if value is not None and not is_missing(value) and s.row.file_bytes > 0:
            points.append((i, s.row.stage, float(s.row.file_bytes), 100 * value if as_percent else value,
                           s.size_ratio))
    with _figure(9.6, 4.6) as fig:
        ax = fig.add_subplot()
        direction = "higher is better" if info.higher_is_better else "lower is better"
        ax.set_xlabel("packed file size (log scale)")
        ax.set_ylabel(f"{info.primary_metric}{' (%)' if as_percent else ''} — {direction}")
        if not points:
            ax.text(0.5, 0.5, f"no stage measured {info.primary_metric}", transform=ax.transAxes, ha="center")
            return _png(fig)
        xs = [p[2] for p in points]
        ys = [p[3] for p in points]
        ax.plot(xs, ys, color="#cbd5e1", linewidth=1.2, zorder=1)
        _bytes_axis(ax, xs)
        low_x, high_x = (math.log10(v) for v in ax.get_xlim())
        for index, stage, x, y, size_ratio in points:
            is_original = index == 0
            ax.scatter([x], [y], s=190 if is_original else 60, marker="*" if is_original else "o",
                       color=ORIGINAL if is_original else FINAL, edgecolor="white", linewidth=0.8, zorder=3)
            name = _short(stage, _MAX_POINT_LABEL)
            label = _original_label(name) if is_original else f"{name}  {ratio(size_ratio)}"
            # labels point into the plot: a point in the right half gets its label on its left
            to_left = (math.log10(x) - low_x) / (high_x - low_x) > 0.5
            below = (index % 2 == 0) and not is_original
            note = ax.annotate(label, (x, y), xytext=(-10 if to_left else 9, -15 if below else 8),
                               textcoords="offset points", ha="right" if to_left else "left", fontsize=9,
                               color=INK, zorder=4)
            note.set_in_layout(False)  # a long label must not squeeze the axes
        low, high = min(ys), max(ys)
        pad = (high - low) * 0.25 if high > low else max(abs(high) * 0.02, 0.5 if as_percent else 0.005)
        ax.set_ylim(low - pad, high + pad)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
        if as_percent:  # enough decimals that neighbouring ticks differ (stages often sit 0.1 points apart)
            step = (high - low + 2 * pad) / 6
            ax.yaxis.set_major_formatter(PercentFormatter(decimals=max(1, math.ceil(-math.log10(step)) + 1)))
        return _png(fig)


def _ratio_bars(ax: Axes, names: list[str], values: list[float | None], color: str, title: str) -> None:
    ys = list(range(len(names)))
    shown = [v if v is not None else 0.0 for v in values]
    ax.barh(ys, shown, color=[ORIGINAL if i == 0 else color for i in ys], height=0.62)
    ax.axvline(1.0, color="#64748b", linewidth=1, linestyle="--", zorder=0)
    ax.set_yticks(ys, names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first stage on top (set, not inverted: the panels share this axis)
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    top = max([v for v in shown if v > 0], default=1.0)
    ax.set_xlim(0, top * 1.22)
    for y, v in zip(ys, values, strict=True):
        ax.text((v or 0.0) + top * 0.015, y, ratio(v), va="center", fontsize=9, color=INK)


def stage_ratios_png(history: History) -> bytes:
    """Two bar panels, one bar per stage: how many times smaller the packed file is than the original's, and how
    many times faster the measured latency is (the dashed line at 1x is the original).

    Example:
        >>> from modelpress.history import HistoryRow
        >>> rows = [HistoryRow("original", 100, 10, 10, 20, 1.0, {}, 0.0), HistoryRow("q", 25, 10, 10, 20, 0.5, {}, 1)]
        >>> stage_ratios_png(History(rows))[:4]
        b'\\x89PNG'
    """
    stages = summarize(history)
    names = [_stage_tick(s.row.stage) for s in stages]
    with _figure(9.6, 1.3 + 0.42 * len(stages) + 0.12 * sum("\n" in n for n in names)) as fig:
        left, right = fig.subplots(1, 2, sharey=True)
        _ratio_bars(left, names, [s.size_ratio for s in stages], FINAL, "File size: times smaller")
        _ratio_bars(right, names, [s.speedup for s in stages], SPEED, "Latency: times faster")
        right.tick_params(axis="y", left=False)
        return _png(fig)


def layer_names(history: History) -> list[str]:
    """The layers to compare, in model order: the original's, each followed by the final stage's layers that
    replaced it (names under it, e.g. ``fc.0``/``fc.1`` factors of ``fc``); other new layers keep their place
    in the final stage's order.

    Example:
        >>> from modelpress.history import HistoryRow, LayerRow
        >>> def row(*names):
        ...     layers = [LayerRow(n, "Linear", 1, 1, 1, 4) for n in names]
        ...     return HistoryRow("s", 1, 1, 1, 1, 1.0, {}, 0.0, layers=layers)
        >>> layer_names(History([row("fc1", "fc2", "out"), row("fc1.0", "fc1.1", "fc2", "norm", "out")]))
        ['fc1', 'fc1.0', 'fc1.1', 'fc2', 'norm', 'out']
    """
    original = [layer.name for layer in history.rows[0].layers]
    final = [layer.name for layer in history.rows[-1].layers]
    known = set(original)
    added = [name for name in final if name not in known]
    out: dict[str, None] = {}
    position = 0  # how far into ``final`` the output has caught up
    for name in original:
        if name in final:  # new layers the final stage placed before this one come first
            index = final.index(name)
            for other in final[position:index]:
                if other not in known:
                    out.setdefault(other, None)
            position = max(position, index + 1)
        out.setdefault(name, None)
        for other in added:
            if other.startswith(f"{name}."):
                out.setdefault(other, None)
    for other in added:
        out.setdefault(other, None)
    return list(out)


def _short(name: str, limit: int = _MAX_LABEL) -> str:
    if len(name) <= limit:
        return name
    keep = (limit - 1) // 2
    return f"{name[:keep]}…{name[-keep:]}"


def _stage_tick(name: str) -> str:
    lines = textwrap.wrap(name, _MAX_STAGE_TICK) or [name]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), _MAX_STAGE_TICK, placeholder="…")]
    return "\n".join(lines)


def _pair_bars(ax: Axes, original: list[float], final: list[float], title: str, count_axis: bool) -> None:
    ys = list(range(len(original)))
    ax.barh([y - 0.2 for y in ys], original, height=0.4, color=ORIGINAL, label="original")
    ax.barh([y + 0.2 for y in ys], final, height=0.4, color=FINAL, label="final stage")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    if not count_axis:
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        return
    positive = [v for v in original + final if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_xscale("log")
        ax.set_xlim(min(positive) / 1.5, max(positive) * 1.5)
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=5))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("log scale", fontsize=8.5, color="#64748b")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: tick_count(v)))


def layer_comparison_png(history: History) -> bytes | None:
    """Per-layer bars, original next to final stage: nonzero parameters (the original's are its parameters; a
    pruned layer's parameter count alone would hide the pruning), FLOPs per example and sparsity. Bars are
    horizontal with the full layer names on the left, and the figure grows with the layer count so ~60+ layers
    stay readable. ``None`` when no row recorded per-layer figures.

    Example:
        >>> from modelpress.history import HistoryRow, LayerRow
        >>> layers = [LayerRow("fc1", "Linear", 100, 100, 200, 400), LayerRow("fc2", "Linear", 10, 10, 20, 40)]
        >>> row = HistoryRow("original", 1, 1, 1, 1, 1.0, {}, 0.0, layers=layers)
        >>> layer_comparison_png(History([row]))[:4]
        b'\\x89PNG'
    """
    names = layer_names(history)
    if not names:
        return None
    first = {layer.name: layer for layer in history.rows[0].layers}
    last = {layer.name: layer for layer in history.rows[-1].layers}

    def values(rows: dict[str, LayerRow], what: str) -> list[float]:
        out = []
        for name in names:
            layer = rows.get(name)
            if layer is None:
                out.append(0.0)
            elif what == "sparsity":
                out.append(100.0 * layer.sparsity)
            else:
                out.append(float(getattr(layer, what)))
        return out

    with _figure(9.6, 1.6 + 0.3 * len(names)) as fig:
        axes = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [1.15, 1.15, 1.0]})
        _pair_bars(axes[0], values(first, "nonzeros"), values(last, "nonzeros"), "Nonzero params", True)
        _pair_bars(axes[1], values(first, "flops"), values(last, "flops"), "FLOPs / example", True)
        _pair_bars(axes[2], values(first, "sparsity"), values(last, "sparsity"), "Sparsity", False)
        ys = list(range(len(names)))
        for ax in axes:
            for y in ys[::2]:  # banding: follow one layer across the three panels
                ax.axhspan(y - 0.5, y + 0.5, color="#f1f5f9", zorder=0, linewidth=0)
            ax.set_ylim(len(names) - 0.5, -0.5)
        axes[0].set_yticks(ys, [_short(n) for n in names], fontsize=9)
        for ax in axes[1:]:
            ax.tick_params(axis="y", left=False)
        if len(names) > 20:  # a tall figure: repeat the value axis on top
            for ax in axes:
                ax.tick_params(axis="x", top=True, labeltop=True)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, [_original_label(history.rows[0].stage), f"{labels[1]} ({history.rows[-1].stage})"],
                   loc="outside upper right", ncols=2, fontsize=9)
        return _png(fig)
