"""The JSON report: round-trips into equal History rows, strict JSON, atomic writes."""

from __future__ import annotations

import json
import math
import os
from enum import Enum
from pathlib import Path

import numpy as np
import pytest

from modelpress.errors import FormatError
from modelpress.history import History
from modelpress.report import json_report, read_json, write_json


def test_rows_round_trip_through_history_from_dicts(history, info, tmp_path):
    path = write_json(history, info, tmp_path / "report.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "modelpress-report" and doc["version"] == 1
    assert History.from_dicts(doc["rows"]).rows == history.rows
    assert doc["info"] == dict(info)


def test_read_json_gives_back_history_and_info(history, info, tmp_path):
    read_history, read_info = read_json(write_json(history, info, tmp_path / "r.json"))
    assert read_history == history
    assert read_info.to_dict() == info


def test_summary_holds_the_ratios_the_table_shows(history, info, tmp_path):
    doc = json.loads(write_json(history, info, tmp_path / "r.json").read_text())
    assert [s["stage"] for s in doc["summary"]] == ["original", "prune", "quantize"]
    assert [round(s["size_ratio"], 3) for s in doc["summary"]] == [1.0, 10.0, 41.2]
    assert [s["speedup"] for s in doc["summary"]] == [1.0, 2.0, 4.0]
    assert doc["summary"][2]["sparsity"] == pytest.approx(0.9)


def test_unmeasured_values_are_null_in_strict_json_and_nan_when_read(history, info, tmp_path):
    history.rows[1].latency_ms = math.nan
    history.rows[1].metrics["loss"] = math.nan
    path = write_json(history, info, tmp_path / "r.json")
    text = path.read_text()
    assert "NaN" not in text
    doc = json.loads(text)
    assert doc["rows"][1]["latency_ms"] is None and doc["summary"][1]["speedup"] is None
    row = read_json(path)[0].rows[1]
    assert math.isnan(row.latency_ms) and math.isnan(row.metrics["loss"])
    assert row.metrics["accuracy"] == 0.9790


class _Scheme(Enum):
    SYMMETRIC = "symmetric"


def test_numpy_and_enum_notes_are_written_as_plain_values(history, info, tmp_path):
    history.rows[2].notes = {"bits": np.int64(8), "scale": np.float32(0.5), "scheme": _Scheme.SYMMETRIC,
                             "levels": np.arange(3)}
    doc = json.loads(write_json(history, info, tmp_path / "r.json").read_text())
    assert doc["rows"][2]["notes"] == {"bits": 8, "scale": 0.5, "scheme": "symmetric", "levels": [0, 1, 2]}


def test_write_json_creates_parent_directories(history, info, tmp_path):
    path = write_json(history, info, tmp_path / "a" / "b" / "report.json")
    assert path.is_file()


def test_a_failing_render_writes_nothing(history, info, tmp_path, monkeypatch):
    def boom(_history):
        raise RuntimeError("render failed")

    monkeypatch.setattr(json_report, "summarize", boom)
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError, match="render failed"):
        write_json(history, info, target)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_replace_keeps_the_old_file_and_leaves_no_temporary(history, info, tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("old report")

    def broken_replace(src: str, dst: os.PathLike[str]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json(history, info, target)
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_read_json_rejects_other_documents(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(FormatError) as err:
        read_json(bad)
    assert str(err.value) == (f"report {str(bad)!r}: expected format 'modelpress-report', got 'something-else'. "
                              "Fix: pass a report written by write_json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(FormatError, match=r"expected a JSON document, got <invalid JSON: .*Fix: write it with"):
        read_json(broken)


def test_read_json_rejects_another_version(history, info, tmp_path):
    path = write_json(history, info, tmp_path / "r.json")
    doc = json.loads(path.read_text())
    doc["version"] = 99
    Path(path).write_text(json.dumps(doc))
    with pytest.raises(FormatError) as err:
        read_json(path)
    assert str(err.value).endswith("expected version 1, got 99. Fix: use a matching modelpress")
