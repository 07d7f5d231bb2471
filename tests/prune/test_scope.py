"""Global vs layer-wise vs min-density allocation, overrides and exclusions, on a model with unequal layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.errors import ConfigError
from modelpress.prune import PruneConfig, compute_masks, prune_
from modelpress.recipe.registry import StageContext


def _model() -> nn.Module:
    """Three layers whose weights differ in scale, so a global threshold treats them differently."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10),
                          nn.LayerNorm(10))
    with torch.no_grad():
        model[0].weight.mul_(0.1)  # small weights: a global threshold takes most of them
        model[4].weight.mul_(10.0)  # large weights: a global threshold spares them
    return model


def _sparsity(model: nn.Module, index: int) -> float:
    return float((model[index].weight == 0).float().mean())


def test_global_hits_the_overall_target_with_unequal_layers() -> None:
    model = _model()
    ctx = StageContext()
    prune_(model, PruneConfig(sparsity=0.8), ctx=ctx)
    layer = ctx.notes["layer_sparsity"]
    sizes = {"0": 64 * 64, "2": 64 * 32, "4": 32 * 10}
    pruned = sum(int((model[int(n)].weight == 0).sum()) for n in sizes)
    assert pruned == round(0.8 * sum(sizes.values()))
    assert layer["0"] > 0.95 and layer["4"] < 0.05  # one threshold: the small layer goes, the large one stays
    assert ctx.notes["sparsity"] == pytest.approx(0.8, abs=1e-4)
    assert [(s.layer, s.reason) for s in ctx.skipped] == [("5", "LayerNorm is not a Linear or Conv layer")]


def test_layer_scope_prunes_every_layer_equally() -> None:
    model = _model()
    prune_(model, PruneConfig(sparsity=0.8, scope="layer"))
    assert [_sparsity(model, i) for i in (0, 2, 4)] == pytest.approx([0.8, 0.8, 0.8], abs=1e-3)


def test_min_density_keeps_every_layer_alive_and_the_target_still_holds() -> None:
    plain = compute_masks(_model(), PruneConfig(sparsity=0.9), task=None)
    assert plain.layer_sparsity["0"] == 1.0  # without a floor the global threshold empties the small layer
    result = compute_masks(_model(), PruneConfig(sparsity=0.9, min_density=0.05), task=None)
    assert result.layer_sparsity["0"] == pytest.approx(0.95, abs=1e-3)  # clamped at its floor
    assert all(s <= 0.95 + 1e-9 for s in result.layer_sparsity.values())
    assert result.overall == pytest.approx(0.9, abs=1e-4)  # the others pruned more to make up


def test_overrides_fix_a_layer_and_the_rest_make_up_the_target() -> None:
    config = PruneConfig(sparsity=0.8, overrides=[{"layers": ["4"], "sparsity": 0.5}])
    result = compute_masks(_model(), config, task=None)
    assert result.layer_sparsity["4"] == 0.5
    assert result.overall == pytest.approx(0.8, abs=1e-4)
    layer = compute_masks(_model(), PruneConfig(sparsity=0.8, scope="layer",
                                                overrides=[{"layers": ["re:[02]"], "sparsity": 0.3}]), task=None)
    assert layer.layer_sparsity == pytest.approx({"0": 0.3, "2": 0.3, "4": 0.8}, abs=1e-3)


def test_exclusions_leave_first_and_last_layer_dense_and_are_reported() -> None:
    model = _model()
    ctx = StageContext()
    prune_(model, PruneConfig(sparsity=0.8, exclude=["0", "4"]), ctx=ctx)
    assert _sparsity(model, 0) == 0.0 and _sparsity(model, 4) == 0.0
    assert _sparsity(model, 2) == pytest.approx(0.8, abs=1e-3)
    assert ("0", "excluded by the stage's exclude patterns") in [(s.layer, s.reason) for s in ctx.skipped]
    assert set(ctx.notes["layer_sparsity"]) == {"2"}


def test_impossible_targets_are_rejected_clearly() -> None:
    config = PruneConfig(sparsity=0.5, overrides=[{"layers": ["0"], "sparsity": 0.0}])
    with pytest.raises(ConfigError, match=r"sparsity: expected a target the overrides and min_density allow "
                                          r"\(between 0 and 0.3"):
        compute_masks(_model(), config, task=None)
    with pytest.raises(ConfigError, match=r"prune: include/exclude: expected at least one Linear or Conv layer"):
        compute_masks(_model(), PruneConfig(sparsity=0.5, include=["nothing*"]), task=None)


def test_block_pattern_under_global_scope_counts_blocks() -> None:
    result = compute_masks(_model(), PruneConfig(sparsity=0.75, pattern="1x4"), task=None)
    assert result.overall == pytest.approx(0.75, abs=1e-4)
    for mask in result.masks.values():
        assert bool(((mask.reshape(-1, 4).sum(1) == 0) | (mask.reshape(-1, 4).sum(1) == 4)).all())
