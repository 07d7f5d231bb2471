"""The HTML page: self-contained, complete (stages, plots, layers, skips, notes), escaped, written atomically."""

from __future__ import annotations

import base64
import re
import struct

import pytest

from modelpress.history import History, HistoryRow, Skip
from modelpress.report import html as html_module
from modelpress.report import render_html, write_html
from modelpress.report.plots import layer_comparison_png

from .conftest import make_history, make_layers

INFO = {"model": "lenet-toy", "task": "digits", "primary_metric": "accuracy", "recipe": "prune-then-quantize",
        "date": "2025-01-31", "machine": "test machine, 2 CPUs"}


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_history(), INFO)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])  # IHDR width, height


def test_page_is_self_contained(page):
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    sources = re.findall(r"""\b(?:src|href|srcset|poster|data)\s*=\s*["']?([^"'\s>]*)""", page, flags=re.I)
    assert sources, "the plots must be embedded as images"
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(u.startswith("data:") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", page))


def test_plots_are_embedded_pngs(page):
    payloads = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(payloads) == 3  # size vs metric, per-stage ratios, per-layer comparison
    for payload in payloads:
        width, height = _png_size(base64.b64decode(payload, validate=True))
        assert width > 500 and height > 150


def test_page_shows_header_every_stage_and_ratio(page):
    for text in ["lenet-toy", "digits", "prune-then-quantize", "2025-01-31", "test machine, 2 CPUs",
                 "accuracy (higher is better)", "batch 1 · threads 2 · runs 20 · warmup 3"]:
        assert text in page
    for stage in ["original", "prune", "quantize"]:
        assert f'<td class="name">{stage}</td>' in page
    for cell in ["412 kB (1.00x)", "41.2 kB (10.0x)", "10.0 kB (41.2x)", "1.00 ms (4.00x)", "97.75%"]:
        assert f">{cell}</td>" in page
    assert "41.2x smaller" in page and "4.00x faster" in page and "−0.37 points" in page


def test_page_lists_skips_notes_and_final_layers(page):
    assert "excluded: first layer is sensitive" in page
    assert "no int8 kernel for this layer&#x27;s shape" in page
    assert re.search(r"<td[^>]*>prune</td><td[^>]*>block0\.fc</td><td>excluded", page)
    for key, value in [("target_sparsity", "0.9"), ("schedule", "cubic"), ("bits", "8"), ("scheme", "per-channel")]:
        assert f"<dt>{key}</dt><dd>{value}</dd>" in page
    for name in ["block0.fc", "block1.fc", "block2.fc"]:
        assert f'<td class="layer">{name}</td>' in page
    assert ">90.0%<" in page  # final-stage layer sparsity


def test_every_text_is_escaped():
    history = make_history()
    history.rows[1].stage = "<script>alert(1)</script>"
    history.rows[1].skipped.append(Skip('emb"<b>', "reason with <i>markup</i> & ampersand"))
    history.rows[1].notes["<k>"] = "<v>"
    info = dict(INFO, model="<img src=x onerror=alert(1)>", machine="a & b")
    page = render_html(history, info)
    assert "<script>" not in page and "<img src=x" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "reason with &lt;i&gt;markup&lt;/i&gt; &amp; ampersand" in page
    assert "emb&quot;&lt;b&gt;" in page
    assert "<dt>&lt;k&gt;</dt><dd>&lt;v&gt;</dd>" in page
    assert "a &amp; b" in page


def test_a_failing_render_writes_nothing_and_keeps_the_old_page(history, tmp_path, monkeypatch):
    def boom(_history):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(html_module, "layer_comparison_png", boom)
    fresh = tmp_path / "new.html"
    with pytest.raises(RuntimeError, match="plot failed"):
        write_html(history, INFO, fresh)
    assert not fresh.exists()
    existing = tmp_path / "old.html"
    existing.write_text("old page")
    with pytest.raises(RuntimeError, match="plot failed"):
        write_html(history, INFO, existing)
    assert existing.read_text() == "old page"
    assert [p.name for p in tmp_path.iterdir()] == ["old.html"]


def test_write_html_returns_the_written_path(tmp_path):
    history = History([HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0)])
    path = write_html(history, INFO, tmp_path / "out" / "report.html")
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "No stage recorded per-layer rows." in text and "No stage skipped a layer." in text
    assert "No stage recorded notes." in text


def test_layer_plot_grows_with_the_layer_count():
    def with_layers(count: int) -> History:
        return History([HistoryRow("original", 1, 1, 1, 1, 1.0, {}, 0.0, layers=make_layers(count, 0.0)),
                        HistoryRow("prune", 1, 1, 1, 1, 1.0, {}, 0.0, layers=make_layers(count, 0.5))])

    _, small = _png_size(layer_comparison_png(with_layers(3)))
    _, large = _png_size(layer_comparison_png(with_layers(60)))
    assert large > 60 * 25  # at least ~25 px per layer row: names stay legible
    assert large > 4 * small


def test_lower_is_better_metric_marks_an_increase_as_worse():
    history = make_history()
    page = render_html(history, dict(INFO, primary_metric="loss", higher_is_better=False))
    assert "loss (lower is better)" in page
    assert '<span class="bad">+0.0099</span>' in page


def test_unmeasured_latency_and_metric_show_a_dash():
    history = make_history()
    history.rows[2].latency_ms = float("nan")
    del history.rows[2].metrics["accuracy"]
    page = render_html(history, INFO)
    assert '<div class="label">Latency</div><div class="value">—</div>' in page
    assert '<div class="label">accuracy</div><div class="value">—</div>' in page
    assert "<td class=\"num\">—</td>" in page  # the quantize row's latency and accuracy cells
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3
