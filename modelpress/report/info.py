"""What a report says about its run besides the measurements: model, task, primary metric, recipe, date, machine.

The public report functions take a plain dict; :meth:`ReportInfo.from_mapping` validates it (unknown keys and a
primary metric the history never measured are rejected with a located message) so a typo cannot silently drop a
field from the page.

Example:
    >>> info = ReportInfo.from_mapping({"model": "lenet300", "task": "mnist5k", "primary_metric": "accuracy"})
    >>> info.higher_is_better, info.to_dict()["recipe"]
    (True, None)
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from typing import Any

from modelpress.errors import ConfigError, ModelpressError
from modelpress.history import History

__all__ = ["InfoLike", "ReportInfo", "describe_machine", "history_metrics", "require_rows", "resolve_info"]


@dataclass(frozen=True)
class ReportInfo:
    """The header of a report.

    ``primary_metric`` is a key of the rows' ``metrics`` (the one the plots and headline use);
    ``higher_is_better`` says which way is good (False for a loss or a perplexity). ``recipe``, ``date`` and
    ``machine`` are free text; ``None`` means unknown.

    Example:
        >>> ReportInfo(model="lenet5", task="mnist5k", primary_metric="accuracy", date="2025-01-31").date
        '2025-01-31'
    """

    model: str
    task: str
    primary_metric: str
    higher_is_better: bool = True
    recipe: str | None = None
    date: str | None = None
    machine: str | None = None

    @classmethod
    def from_mapping(cls, info: Mapping[str, Any]) -> ReportInfo:
        """Validate a plain dict (e.g. from JSON or the CLI) into a :class:`ReportInfo`.

        Example:
            >>> info = {"model": "m", "task": "t", "primary_metric": "loss", "higher_is_better": False}
            >>> ReportInfo.from_mapping(info).higher_is_better
            False
            >>> ReportInfo.from_mapping({"model": "m", "task": "t", "primary_metric": "loss", "colour": "red"})
            Traceback (most recent call last):
            ...
            modelpress.errors.ConfigError: report info key 'colour': expected one of model, task, \
primary_metric, higher_is_better, recipe, date, machine, got 'colour'. Fix: remove or rename the key
        """
        if not isinstance(info, Mapping):
            raise ConfigError("report info", "a dict with keys model, task, primary_metric",
                              f"<{type(info).__name__}>", "pass a dict such as "
                              "{'model': 'lenet5', 'task': 'mnist5k', 'primary_metric': 'accuracy'}")
        known = [f.name for f in fields(cls)]
        for key in info:
            if key not in known:
                raise ConfigError(f"report info key {key!r}", f"one of {', '.join(known)}", key,
                                  "remove or rename the key")
        for key in ("model", "task", "primary_metric"):
            if not isinstance(info.get(key), str) or not info[key]:
                raise ConfigError(f"report info {key!r}", "a non-empty string", info.get(key),
                                  f"set info[{key!r}]")
        if not isinstance(info.get("higher_is_better", True), bool):
            raise ConfigError("report info 'higher_is_better'", "True or False", info["higher_is_better"],
                              "use True for accuracy-like metrics, False for losses")
        for key in ("recipe", "date", "machine"):
            value = info.get(key)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"report info {key!r}", "a string or None", value, f"pass str(...) as {key!r}")
        return cls(**dict(info))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_mapping` turns it back into an equal object.

        Example:
            >>> info = ReportInfo(model="m", task="t", primary_metric="accuracy")
            >>> ReportInfo.from_mapping(info.to_dict()) == info
            True
        """
        return asdict(self)

    def check_against(self, history: History) -> None:
        """Raise a :class:`ConfigError` unless some row of ``history`` measured the primary metric.

        Example:
            >>> from modelpress.history import HistoryRow
            >>> row = HistoryRow("original", 10, 1, 1, 1, 1.0, {"accuracy": 0.9}, 0.0)
            >>> ReportInfo(model="m", task="t", primary_metric="acc").check_against(History([row]))
            Traceback (most recent call last):
            ...
            modelpress.errors.ConfigError: report info 'primary_metric': expected one of the measured metrics \
(accuracy), got 'acc'. Fix: set info['primary_metric'] to a measured metric
        """
        measured = history_metrics(history)
        if self.primary_metric not in measured:
            listed = ", ".join(measured) if measured else "none: no stage was evaluated"
            raise ConfigError("report info 'primary_metric'", f"one of the measured metrics ({listed})",
                              self.primary_metric, "set info['primary_metric'] to a measured metric")


InfoLike = Mapping[str, Any] | ReportInfo


def history_metrics(history: History) -> list[str]:
    """Every metric name any row measured, in order of first appearance.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> rows = [HistoryRow("a", 1, 1, 1, 1, 1.0, {"accuracy": 0.9}, 0.0),
        ...         HistoryRow("b", 1, 1, 1, 1, 1.0, {"accuracy": 0.8, "loss": 0.5}, 0.0)]
        >>> history_metrics(History(rows))
        ['accuracy', 'loss']
    """
    names: dict[str, None] = {}
    for row in history.rows:
        for name in row.metrics:
            names.setdefault(name, None)
    return list(names)


def require_rows(history: History) -> None:
    """Raise unless the history has at least one row (the original model) to report on.

    Example:
        >>> require_rows(History([]))
        Traceback (most recent call last):
        ...
        modelpress.errors.ModelpressError: history rows: expected at least 1 (the original model), got 0. \
Fix: report the History of a run, which records the original model first
    """
    if not history.rows:
        raise ModelpressError("history rows", "at least 1 (the original model)", 0,
                              "report the History of a run, which records the original model first")


def resolve_info(history: History, info: InfoLike) -> ReportInfo:
    """Validate a report's inputs: a history with rows, an info dict (or :class:`ReportInfo`) whose primary metric
    the history measured. Every report entry point calls this before it renders anything.

    Example:
        >>> from modelpress.history import HistoryRow
        >>> row = HistoryRow("original", 10, 1, 1, 1, 1.0, {"accuracy": 0.9}, 0.0)
        >>> resolve_info(History([row]), {"model": "m", "task": "t", "primary_metric": "accuracy"}).model
        'm'
    """
    require_rows(history)
    resolved = info if isinstance(info, ReportInfo) else ReportInfo.from_mapping(info)
    resolved.check_against(history)
    return resolved


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def describe_machine() -> str:
    """One line naming this machine for the report header: OS, CPU model and count, Python and torch versions.

    Example:
        >>> "CPU" in describe_machine()
        True
    """
    cpu = _cpu_model()
    count = os.cpu_count() or 1
    parts = [f"{platform.system()} {platform.machine()}",
             f"{count} CPU{'s' if count != 1 else ''}" + (f" ({cpu})" if cpu else ""),
             f"Python {platform.python_version()}"]
    with contextlib.suppress(metadata.PackageNotFoundError):
        parts.append(f"torch {metadata.version('torch')}")
    return ", ".join(parts)
