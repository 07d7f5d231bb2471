"""Numbers as the report shows them: bytes, counts, ratios, percentages, metrics, durations.

Every cell of the terminal table and of the HTML page goes through one of these functions, so the two always agree.
A value that was not measured (``None`` or NaN) is shown as an em dash.

Example:
    >>> human_bytes(1_070_000), human_count(266_200), ratio(41.23), percent(0.95), metric_value("accuracy", 0.9812)
    ('1.07 MB', '266k', '41.2x', '95.0%', '98.12%')
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "MISSING",
    "duration",
    "human_bytes",
    "human_count",
    "is_fraction_metric",
    "is_missing",
    "metric_value",
    "milliseconds",
    "note_value",
    "percent",
    "ratio",
    "tick_count",
]

MISSING = "—"

_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB")
_COUNT_SUFFIXES = ("", "k", "M", "G", "T")


def is_missing(value: float | int | None) -> bool:
    """Whether a measured value is absent: ``None`` or NaN.

    Example:
        >>> is_missing(None), is_missing(float("nan")), is_missing(0.0)
        (True, True, False)
    """
    return value is None or (isinstance(value, float) and math.isnan(value))


def _three_significant(value: float) -> str:
    # 3 significant figures without scientific notation: 1.07, 26.0, 512
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _scaled(value: float, step: float, units: tuple[str, ...]) -> tuple[float, str]:
    index = 0
    # rounding first keeps 999_999 from showing as "1000k" instead of "1.00M"
    while index < len(units) - 1 and float(_three_significant(abs(value))) >= step:
        value /= step
        index += 1
    return value, units[index]


def human_bytes(n: int | None) -> str:
    """A byte count in decimal (SI) units with three significant figures, as ``ls --si`` would show it.

    Example:
        >>> human_bytes(512), human_bytes(26_034), human_bytes(1_070_000), human_bytes(None)
        ('512 B', '26.0 kB', '1.07 MB', '—')
    """
    if n is None or is_missing(n):
        return MISSING
    if n < 1000:
        return f"{int(n)} B"
    value, unit = _scaled(float(n), 1000.0, _BYTE_UNITS)
    return f"{_three_significant(value)} {unit}"


def human_count(n: int | float | None) -> str:
    """A count (parameters, FLOPs) with a k/M/G/T suffix and three significant figures.

    Example:
        >>> human_count(950), human_count(266_200), human_count(1_234_567), human_count(4.6e9)
        ('950', '266k', '1.23M', '4.60G')
    """
    if n is None or is_missing(n):
        return MISSING
    if abs(n) < 1000:
        return f"{n:.0f}" if isinstance(n, float) else str(n)
    value, suffix = _scaled(float(abs(n)), 1000.0, _COUNT_SUFFIXES)
    sign = "-" if n < 0 else ""
    return f"{sign}{_three_significant(value)}{suffix}"


def tick_count(value: float) -> str:
    """A count on an axis tick: like :func:`human_count` without trailing zeros, since ticks are round numbers.

    Example:
        >>> tick_count(10_000), tick_count(2_050_000), tick_count(1_500), tick_count(100)
        ('10k', '2.05M', '1.5k', '100')
    """
    text = human_count(value)
    match = re.fullmatch(r"(-?\d+\.\d+)([kMGT]?)", text)
    if match is None:
        return text
    return match.group(1).rstrip("0").rstrip(".") + match.group(2)


def ratio(value: float | None) -> str:
    """A ratio against the original ("how many times"): 2 decimals below 10, 1 below 100, none above, and two
    significant figures below 0.1.

    Example:
        >>> ratio(1.0), ratio(2.345), ratio(41.23), ratio(123.4), ratio(0.00694), ratio(None)
        ('1.00x', '2.35x', '41.2x', '123x', '0.0069x', '—')
    """
    if value is None or is_missing(value) or math.isinf(value):
        return MISSING
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"{value:.2g}x"  # a slowdown or growth: keep two significant figures


def percent(fraction: float | None, decimals: int = 1) -> str:
    """A fraction in [0, 1] shown as a percentage.

    Example:
        >>> percent(0.95), percent(0.98123, decimals=2), percent(None)
        ('95.0%', '98.12%', '—')
    """
    if fraction is None or is_missing(fraction):
        return MISSING
    return f"{100.0 * fraction:.{decimals}f}%"


def is_fraction_metric(name: str) -> bool:
    """Whether a metric is an accuracy-like fraction in [0, 1], shown as a percentage.

    Example:
        >>> is_fraction_metric("accuracy"), is_fraction_metric("top1"), is_fraction_metric("loss")
        (True, True, False)
    """
    lowered = name.lower()
    return "accuracy" in lowered or lowered in ("acc", "top1", "top5") or lowered.endswith("_acc")


def metric_value(name: str, value: float | None) -> str:
    """A metric as the report shows it: accuracy-like fractions as percentages, anything else with 4 decimals.

    Example:
        >>> metric_value("accuracy", 0.9812), metric_value("mean_cosine", 0.99871), metric_value("loss", None)
        ('98.12%', '0.9987', '—')
    """
    if value is None or is_missing(value):
        return MISSING
    if is_fraction_metric(name):
        return percent(value, decimals=2)
    return f"{value:.4f}"


def milliseconds(ms: float | None) -> str:
    """A latency in milliseconds with three significant figures (at least two decimals below 1 ms).

    Example:
        >>> milliseconds(0.4123), milliseconds(12.345), milliseconds(None)
        ('0.412 ms', '12.3 ms', '—')
    """
    if ms is None or is_missing(ms):
        return MISSING
    if ms < 1:
        return f"{ms:.3f} ms"
    return f"{_three_significant(ms)} ms"


def duration(seconds: float | None) -> str:
    """A wall-clock duration: seconds below a minute, then minutes and seconds, then hours and minutes.

    Example:
        >>> duration(0.42), duration(12.34), duration(125.0), duration(3725.0)
        ('0.42 s', '12.3 s', '2m 05s', '1h 02m')
    """
    if seconds is None or is_missing(seconds):
        return MISSING
    if seconds < 60:
        return f"{_three_significant(seconds)} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {(whole % 3600) // 60:02d}m"


def note_value(value: Any) -> str:
    """A stage note's value as text: floats with 4 significant figures, lists joined by commas, dicts as
    ``key: value`` pairs.

    Example:
        >>> note_value(0.123456), note_value(4), note_value({"bits": 4, "group": 128}), note_value(["a", 0.5])
        ('0.1235', '4', 'bits: 4, group: 128', 'a, 0.5')
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {note_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(note_value(v) for v in value)
    return str(value)
