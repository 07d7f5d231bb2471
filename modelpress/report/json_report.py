"""The report as JSON: the run's info, every History row as recorded, and the derived per-stage ratios.

The file is strict JSON (no ``NaN``): a value that was not measured is written as ``null`` and read back as NaN.
``rows`` is exactly :meth:`History.to_dicts`, so :func:`read_json` (or ``History.from_dicts(doc["rows"])``) gives
back equal rows. ``summary`` repeats what the table shows as numbers (ratios, speedups, sparsity) for scripts.

Example:
    >>> import pathlib, tempfile
    >>> from modelpress.history import History, HistoryRow
    >>> history = History([HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)])
    >>> path = write_json(history, {"model": "m", "task": "t", "primary_metric": "accuracy"},
    ...                   pathlib.Path(tempfile.mkdtemp()) / "report.json")
    >>> read_json(path)[0] == history
    True
"""

from __future__ import annotations

import json
import math
import os
from enum import Enum
from pathlib import Path
from typing import Any

from modelpress.atomic import write_text_atomic
from modelpress.errors import FormatError
from modelpress.history import History
from modelpress.report.info import InfoLike, ReportInfo, resolve_info
from modelpress.report.summary import summarize

__all__ = ["REPORT_FORMAT", "REPORT_VERSION", "read_json", "report_document", "write_json"]

REPORT_FORMAT = "modelpress-report"
REPORT_VERSION = 1


def _finite(value: Any) -> Any:
    # strict JSON has no NaN/Infinity: an unmeasured float becomes null
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _fallback(value: Any) -> Any:
    # values that stages may leave in ``notes``: numpy scalars/arrays, enums, paths
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _plain(value: Any) -> Any:
    return _finite(json.loads(json.dumps(value, default=_fallback)))


def report_document(history: History, info: InfoLike) -> dict[str, Any]:
    """The JSON-able report: ``format``, ``version``, ``info``, ``rows`` (History dicts) and ``summary``.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> rows = [HistoryRow("original", 100, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0),
        ...         HistoryRow("q", 25, 10, 10, 20, 0.5, {"accuracy": 0.89}, 1.0)]
        >>> report_document(History(rows), {"model": "m", "task": "t", "primary_metric": "accuracy"})["summary"][1]
        {'stage': 'q', 'size_ratio': 4.0, 'speedup': 2.0, 'sparsity': 0.0}
    """
    report_info = resolve_info(history, info)
    summary = [{"stage": s.row.stage, "size_ratio": s.size_ratio, "speedup": s.speedup, "sparsity": s.sparsity}
               for s in summarize(history)]
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "info": report_info.to_dict(),
        "rows": _plain(history.to_dicts()),
        "summary": _plain(summary),
    }


def write_json(history: History, info: InfoLike, path: str | os.PathLike[str]) -> Path:
    """Write the full report as indented JSON, atomically (temporary file + ``os.replace``); returns the path.

    Example:
        >>> import pathlib, tempfile
        >>> from modelpress.history import HistoryRow
        >>> history = History([HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)])
        >>> path = write_json(history, {"model": "m", "task": "t", "primary_metric": "accuracy"},
        ...                   pathlib.Path(tempfile.mkdtemp()) / "r.json")
        >>> json.loads(path.read_text())["format"]
        'modelpress-report'
    """
    text = json.dumps(report_document(history, info), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def _restore_nan(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for key in ("latency_ms", "wall_time_s"):
        if row.get(key) is None:
            row[key] = math.nan
    row["metrics"] = {k: math.nan if v is None else v for k, v in row.get("metrics", {}).items()}
    return row


def read_json(path: str | os.PathLike[str]) -> tuple[History, ReportInfo]:
    """Read a report written by :func:`write_json` back into its History and info (e.g. to re-render HTML).

    Example:
        >>> import pathlib, tempfile
        >>> from modelpress.history import HistoryRow
        >>> history = History([HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)])
        >>> path = write_json(history, {"model": "m", "task": "t", "primary_metric": "accuracy"},
        ...                   pathlib.Path(tempfile.mkdtemp()) / "r.json")
        >>> read_json(path)[1].model
        'm'
    """
    where = f"report {os.fspath(path)!r}"
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FormatError(where, "a JSON document", f"<invalid JSON: {e}>", "write it with write_json") from None
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else f"<{type(doc).__name__}>"
        raise FormatError(where, f"format {REPORT_FORMAT!r}", got, "pass a report written by write_json")
    if doc.get("version") != REPORT_VERSION:
        raise FormatError(where, f"version {REPORT_VERSION}", doc.get("version"), "use a matching modelpress")
    history = History.from_dicts([_restore_nan(r) for r in doc["rows"]])
    return history, ReportInfo.from_mapping(doc["info"])
