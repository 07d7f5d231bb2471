"""The report in the terminal: a rich table with one row per stage, and the skipped layers under it.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> from modelpress.history import History, HistoryRow, Skip
    >>> rows = [HistoryRow("original", 41_200, 100, 100, 200, 2.0, {"accuracy": 0.98}, 0.0),
    ...         HistoryRow("prune", 1_000, 100, 10, 200, 1.0, {"accuracy": 0.97}, 3.0,
    ...                    skipped=[Skip("emb", "embedding not supported")])]
    >>> console = Console(file=io.StringIO(), record=True, width=150)
    >>> print_table(History(rows), {"model": "m", "task": "t", "primary_metric": "accuracy"}, console)
    >>> text = console.export_text()
    >>> "41.2x" in text and "embedding not supported" in text
    True
"""

from __future__ import annotations

import textwrap

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from modelpress.history import History
from modelpress.report.info import InfoLike, resolve_info
from modelpress.report.summary import summary_columns

__all__ = ["print_table", "render_skips", "render_table"]

_MIN_STAGE_WIDTH = 10  # characters of a stage name always visible on one line
_UNLIMITED = 100_000  # measure the table's natural width, not the width the console would squeeze it to


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, _MIN_STAGE_WIDTH, break_long_words=True)) or text


def render_table(history: History, info: InfoLike, compact: bool = False) -> Table:
    """A rich :class:`~rich.table.Table` of the run: one row per stage; ratios and speedups are against the first
    row; the primary metric's column comes first among the metrics and is marked ↑ (higher is better) or ↓.
    ``compact`` puts each ratio under its value instead of beside it (about 30 columns narrower).

    Example:
        >>> from modelpress.history import HistoryRow
        >>> row = HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)
        >>> render_table(History([row]), {"model": "m", "task": "t", "primary_metric": "accuracy"}).row_count
        1
    """
    report_info = resolve_info(history, info)
    columns = summary_columns(history, report_info, compact=compact)
    title = f"{report_info.model} on {report_info.task}"
    if report_info.recipe:
        title += f" · recipe {report_info.recipe}"
    table = Table(title=title, box=box.SIMPLE_HEAVY, header_style="bold", title_style="bold",
                  padding=(0, 0) if compact else (0, 1), collapse_padding=True,
                  caption="sizes are packed file bytes; ratios and speedups are against the first row")
    for col in columns:
        # numbers never wrap; a long stage name wraps but keeps a readable width (in compact form it is wrapped
        # here, because rich would squeeze the only wrappable column to nothing)
        widest = max(len(cell) for cell in col.cells)
        table.add_column(col.header, justify="right" if col.numeric else "left", no_wrap=col.numeric or compact,
                         style=None if col.numeric else "bold",
                         min_width=None if col.numeric else min(widest, _MIN_STAGE_WIDTH))
    for i in range(len(history.rows)):
        cells = [col.cells[i] if col.numeric or not compact else _wrap(col.cells[i]) for col in columns]
        table.add_row(*cells)
    return table


def render_skips(history: History) -> Table | None:
    """A table of every layer a stage did not touch, with the reason; ``None`` when nothing was skipped.

    Example:
        >>> from modelpress.history import HistoryRow, Skip
        >>> row = HistoryRow("q", 1, 1, 1, 1, 1.0, {}, 0.0, skipped=[Skip("emb", "no int8 embedding kernel")])
        >>> render_skips(History([row])).row_count
        1
    """
    skips = [(row.stage, skip) for row in history.rows for skip in row.skipped]
    if not skips:
        return None
    table = Table(title="Skipped layers", box=box.SIMPLE, header_style="bold", title_style="bold")
    table.add_column("Stage", style="bold")
    table.add_column("Layer")
    table.add_column("Reason")
    for stage, skip in skips:
        table.add_row(stage, skip.layer, skip.reason)
    return table


def print_table(history: History, info: InfoLike, console: Console | None = None) -> None:
    """Print the stage table and then the skipped layers (or a line saying none were skipped).

    ``console`` defaults to a new rich console on stdout. When the table is wider than the console, its compact
    form is printed (ratios under their values), so nothing is cut off in an 80-column terminal.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> row = HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)
        >>> import io
        >>> console = Console(file=io.StringIO(), record=True, width=120)
        >>> print_table(History([row]), {"model": "m", "task": "t", "primary_metric": "accuracy"}, console)
        >>> "No layers were skipped." in console.export_text()
        True
    """
    console = console if console is not None else Console()
    table = render_table(history, info)
    natural = Measurement.get(console, console.options.update(max_width=_UNLIMITED), table).maximum
    if natural > console.width:
        table = render_table(history, info, compact=True)
    skips = render_skips(history)
    console.print(table)
    if skips is None:
        console.print("No layers were skipped.")
    else:
        console.print(skips)
