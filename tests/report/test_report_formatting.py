"""Display formatting: units, significant figures, ratios, metrics, and missing values."""

from __future__ import annotations

import math

import pytest

from modelpress.report.formatting import (
    duration,
    human_bytes,
    human_count,
    metric_value,
    milliseconds,
    note_value,
    percent,
    ratio,
    tick_count,
)


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (999, "999 B"), (1000, "1.00 kB"), (26_034, "26.0 kB"),
                                         (999_999, "1.00 MB"), (1_070_000, "1.07 MB"), (3_200_000_000, "3.20 GB")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize(("n", "text"), [(950, "950"), (266_200, "266k"), (999_700, "1.00M"),
                                         (1_234_567, "1.23M"), (4.6e9, "4.60G")])
def test_human_count(n, text):
    assert human_count(n) == text


def test_ratio_precision_shrinks_as_the_ratio_grows():
    assert [ratio(v) for v in (1.0, 2.345, 41.23, 123.4)] == ["1.00x", "2.35x", "41.2x", "123x"]


def test_metrics_accuracy_as_percent_others_four_decimals():
    assert metric_value("accuracy", 0.98123) == "98.12%"
    assert metric_value("val_accuracy", 0.5) == "50.00%"
    assert metric_value("mean_cosine", 0.998712) == "0.9987"
    assert percent(0.9) == "90.0%"


def test_durations_and_latencies():
    assert [duration(s) for s in (0.42, 12.34, 125.0, 3725.0)] == ["0.42 s", "12.3 s", "2m 05s", "1h 02m"]
    assert [milliseconds(ms) for ms in (0.4123, 12.345)] == ["0.412 ms", "12.3 ms"]


def test_missing_values_are_a_dash():
    for fn in (human_bytes, human_count, ratio, percent, milliseconds, duration):
        assert fn(None) == "—"
        assert fn(math.nan) == "—"
    assert metric_value("accuracy", math.nan) == "—"
    assert ratio(math.inf) == "—"


def test_note_values():
    assert note_value(0.123456) == "0.1235"
    assert note_value({"bits": 4, "group": 128}) == "bits: 4, group: 128"
    assert note_value(["sparse", "bitpack", "rans"]) == "sparse, bitpack, rans"
    assert note_value(True) == "True" and note_value(None) == "None"


def test_axis_ticks_drop_trailing_zeros_only():
    assert [tick_count(v) for v in (100, 1000, 1500, 2_050_000, 10_000_000)] == ["100", "1k", "1.5k", "2.05M", "10M"]
