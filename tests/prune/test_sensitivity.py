"""Sensitivity sweeps measure each layer alone on training data, and their allocation meets the global target."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.prune import PruneConfig, compute_masks, sensitivity_sweep
from modelpress.task import ClassificationTask


def _trained() -> tuple[nn.Module, ClassificationTask]:
    from modelpress.config import FinetuneConfig
    from modelpress.train import fit

    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g)
    y = (x[:, :4].sum(1) > 0).long()
    task = ClassificationTask("toy", x[:384], y[:384], x[384:], y[384:], num_classes=2)
    torch.manual_seed(0)
    # a wide first layer (redundant) and a narrow bottleneck (every weight matters)
    model = nn.Sequential(nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 4), nn.ReLU(), nn.Linear(4, 2))
    fit(model, task, FinetuneConfig(epochs=15, lr=0.01, batch_size=64), quiet=True)
    return model, task


def test_sweep_rows_restore_the_model_and_grow_with_sparsity() -> None:
    model, task = _trained()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = sensitivity_sweep(model, PruneConfig(sparsity=0.5), task, grid=[0.5, 0.9, 0.99], held_out=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert {r.layer for r in rows} == {"0", "2", "4"}
    assert len(rows) == 3 * 4 and all("accuracy" in r.metrics for r in rows)
    bottleneck = [r.loss for r in rows if r.layer == "2"]
    assert bottleneck[-1] > bottleneck[0] + 0.1  # emptying the bottleneck hurts


def test_sensitivity_scope_meets_the_target_and_spares_the_sensitive_layer() -> None:
    model, task = _trained()
    config = PruneConfig(sparsity=0.8, scope="sensitivity", sensitivity={"grid": [0.3, 0.6, 0.8, 0.9, 0.95, 0.99]})
    result = compute_masks(model, config, task)
    assert result.overall == pytest.approx(0.8, abs=2e-3)
    assert result.layer_sparsity["0"] > result.layer_sparsity["2"]
    notes = result.notes(config)
    assert notes["scope"] == "sensitivity" and {r["layer"] for r in notes["sensitivity"]} == {"0", "2", "4"}


def test_sensitivity_shows_as_a_table_and_a_plot_in_the_html_report() -> None:
    from modelpress.history import History, HistoryRow
    from modelpress.prune import prune_
    from modelpress.recipe.registry import StageContext
    from modelpress.report.html import render_html

    model, task = _trained()
    ctx = StageContext(task=task)
    config = PruneConfig(sparsity=0.8, scope="sensitivity",
                         sensitivity={"grid": [0.5, 0.8, 0.95], "report_metrics": True})
    prune_(model, config, task, ctx=ctx)
    assert all("accuracy" in r for r in ctx.notes["sensitivity"])  # held-out metric recorded for the report
    rows = [HistoryRow("original", 1000, 10, 10, 20, 1.0, {"accuracy": 0.9}, 0.0),
            HistoryRow("prune-sensitivity", 500, 10, 2, 20, 1.0, {"accuracy": 0.85}, 1.0, notes=dict(ctx.notes))]
    page = render_html(History(rows), {"model": "m", "task": "t", "primary_metric": "accuracy"})
    section = page[page.index("<h2>Sensitivity</h2>"):]
    section = section[:section.index("</section>")]
    assert 'alt="Sensitivity of each layer: accuracy"' in section and "data:image/png;base64," in section
    for layer, chosen in ctx.notes["layer_sparsity"].items():
        assert f'<td class="layer">{layer}</td><td class="num">{100 * chosen:.1f}%</td>' in section
    assert "<th class='num'>95.0%</th>" in section
    assert "see the sensitivity section" in page  # the raw rows are not dumped into the stage notes
