"""The terminal table: every stage, the right ratio strings, metrics formatted, skipped layers listed under it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from modelpress.errors import ConfigError, ModelpressError
from modelpress.history import History
from modelpress.report import print_table, render_skips, render_table


def _text(renderable: object) -> str:
    console = Console(file=io.StringIO(), record=True, width=200)
    console.print(renderable)
    return console.export_text()


def _row_of(text: str, stage: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(stage))


def test_table_has_one_row_per_stage_with_ratios_against_the_first(history, info):
    table = render_table(history, info)
    assert table.row_count == 3
    text = _text(table)
    assert "412 kB (1.00x)" in _row_of(text, "original")
    prune = _row_of(text, "prune")
    assert "41.2 kB (10.0x)" in prune
    assert "600 (90.0% sparse)" in prune
    assert "2.00 ms (2.00x)" in prune
    quantize = _row_of(text, "quantize")
    assert "10.0 kB (41.2x)" in quantize
    assert "1.00 ms (4.00x)" in quantize
    assert "3.25 s" in quantize


def test_accuracy_is_a_percentage_and_other_metrics_have_four_decimals(history, info):
    text = _text(render_table(history, info))
    original = _row_of(text, "original")
    assert "98.12%" in original
    assert "0.0612" in original
    assert "accuracy ↑" in text


def test_primary_metric_column_comes_first_and_shows_direction(history, info):
    info = dict(info, primary_metric="loss", higher_is_better=False)
    headers = [c.header for c in render_table(history, info).columns]
    assert headers.index("loss ↓") < headers.index("accuracy")


def test_print_table_lists_skipped_layers_under_the_table(history, info):
    console = Console(file=io.StringIO(), record=True, width=200)
    print_table(history, info, console)
    text = console.export_text()
    last_stage_row = text.index(_row_of(text, "quantize"))
    for stage, layer, reason in [("prune", "block0.fc", "excluded: first layer is sensitive"),
                                 ("quantize", "block2.fc", "no int8 kernel for this layer's shape")]:
        line = next(line for line in text.splitlines() if reason in line)
        assert text.index(line) > last_stage_row
        assert stage in line and layer in line


def test_print_table_says_when_nothing_was_skipped(history, info):
    for row in history.rows:
        row.skipped = []
    assert render_skips(history) is None
    console = Console(file=io.StringIO(), record=True, width=200)
    print_table(history, info, console)
    assert "No layers were skipped." in console.export_text()


def test_unknown_info_key_is_rejected_with_the_known_keys(history, info):
    with pytest.raises(ConfigError) as err:
        render_table(history, dict(info, metric="accuracy"))
    assert str(err.value) == ("report info key 'metric': expected one of model, task, primary_metric, "
                              "higher_is_better, recipe, date, machine, got 'metric'. Fix: remove or rename the key")


def test_missing_primary_metric_is_rejected(history, info):
    del info["primary_metric"]
    with pytest.raises(ConfigError) as err:
        render_table(history, info)
    assert str(err.value) == ("report info 'primary_metric': expected a non-empty string, got None. "
                              "Fix: set info['primary_metric']")


def test_unmeasured_primary_metric_is_rejected_with_the_measured_ones(history, info):
    with pytest.raises(ConfigError) as err:
        render_table(history, dict(info, primary_metric="top1"))
    assert str(err.value) == ("report info 'primary_metric': expected one of the measured metrics (accuracy, loss), "
                              "got 'top1'. Fix: set info['primary_metric'] to a measured metric")


def test_non_bool_direction_is_rejected(history, info):
    with pytest.raises(ConfigError) as err:
        render_table(history, dict(info, higher_is_better="yes"))
    assert str(err.value) == ("report info 'higher_is_better': expected True or False, got 'yes'. "
                              "Fix: use True for accuracy-like metrics, False for losses")


def test_empty_history_is_rejected(info):
    with pytest.raises(ModelpressError) as err:
        render_table(History([]), info)
    assert str(err.value) == ("history rows: expected at least 1 (the original model), got 0. "
                              "Fix: report the History of a run, which records the original model first")


def test_a_narrow_terminal_gets_the_compact_table_with_nothing_cut(history, info):
    info = dict(info, recipe=None)
    del_loss = [row.metrics.pop("loss") for row in history.rows]
    assert len(del_loss) == 3
    console = Console(file=io.StringIO(), record=True, width=80)
    print_table(history, info, console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for stage in ["original", "prune", "quantize"]:
        assert _row_of(text, stage)
    for ratio_text in ["10.0x", "41.2x", "4.00x", "90.0%"]:
        assert ratio_text in text


def test_compact_table_puts_ratios_under_values(history, info):
    text = _text(render_table(history, info, compact=True))
    lines = text.splitlines()
    quantize = lines.index(_row_of(text, "quantize"))
    assert "10.0 kB" in lines[quantize] and "41.2x" in lines[quantize + 1]
    assert "(41.2x)" not in text
