"""The report of a compression run, drawn from its :class:`~modelpress.history.History` and a small info dict.

``info`` keys: ``model``, ``task``, ``primary_metric`` (required), ``higher_is_better`` (default True),
``recipe``, ``date``, ``machine`` (free text; :func:`describe_machine` gives one line for this machine).

- :func:`render_table` / :func:`print_table`: the terminal table, one row per stage, skipped layers under it.
- :func:`write_json` / :func:`read_json`: the full report as strict JSON (atomic write) and back.
- :func:`write_html`: one self-contained HTML page with the table and plots (atomic write).

Example:
    >>> import io, pathlib, tempfile
    >>> from rich.console import Console
    >>> from modelpress.history import History, HistoryRow
    >>> history = History([HistoryRow("original", 41_200, 100, 100, 200, 2.0, {"accuracy": 0.98}, 0.0),
    ...                    HistoryRow("prune", 1_000, 100, 10, 200, 1.0, {"accuracy": 0.97}, 3.0)])
    >>> info = {"model": "lenet300", "task": "mnist5k", "primary_metric": "accuracy",
    ...         "machine": describe_machine()}
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> print_table(history, info, Console(file=io.StringIO()))
    >>> write_json(history, info, out / "report.json").exists(), write_html(history, info, out / "report.html").exists()
    (True, True)
"""

from modelpress.report.html import render_html, write_html
from modelpress.report.info import ReportInfo, describe_machine
from modelpress.report.json_report import read_json, report_document, write_json
from modelpress.report.table import print_table, render_skips, render_table

__all__ = [
    "ReportInfo",
    "describe_machine",
    "print_table",
    "read_json",
    "render_html",
    "render_skips",
    "render_table",
    "report_document",
    "write_html",
    "write_json",
]
