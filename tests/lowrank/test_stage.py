"""The ``low-rank`` stage: rank rules, skips with reasons, clear errors, and pack -> unpack bit-identical outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from modelpress.errors import ConfigError, FormatError
from modelpress.lowrank import LowRankConfig, low_rank_
from modelpress.lowrank.stage import _rebuild_low_rank
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.recipe import parse_recipe
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.zoo.models import LeNet5, LeNet300, ResNetSmall


def _with_source(model: nn.Module, ref: str) -> nn.Module:
    set_provenance(model, Provenance(source={"kind": "factory", "ref": ref}))
    return model


def test_rank_zero_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^rank: expected a number in \[1, inf\], got 0$"):
        LowRankConfig(rank=0)


def test_one_rank_rule_and_no_energy_for_cp() -> None:
    with pytest.raises(ConfigError, match="expected exactly one rank rule of rank, ratio, energy, param_budget "
                                          r"\(given: none\)"):
        LowRankConfig()
    with pytest.raises(ConfigError, match="expected rank, ratio or param_budget for method cp"):
        LowRankConfig(method="cp", energy=0.9)


def test_rank_above_the_full_rank_is_rejected_naming_the_layer() -> None:
    with pytest.raises(ConfigError) as info:
        low_rank_(LeNet300(), LowRankConfig(rank=11, include=["fc3"]))
    assert str(info.value) == ("low-rank: rank: expected a rank in [1, 10] for layer 'fc3' (its full rank: [10]), "
                               "got 11. Fix: lower the rank or exclude the layer")


def test_include_selecting_nothing_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"low-rank: include: expected patterns that select at least one Linear or "
                                          r"Conv2d layer, got \['nope'\]. Fix: use names of this model's layers: "
                                          "fc1, fc2, fc3"):
        low_rank_(LeNet300(), LowRankConfig(rank=4, include=["nope"]))


def test_ranks_that_do_not_save_parameters_are_skipped_with_the_reason() -> None:
    ctx = StageContext()
    model = low_rank_(LeNet300(), LowRankConfig(rank=80, include=["fc1", "fc2"]), ctx=ctx)  # fc2: 300*100/400 = 75 < 80
    assert type(model.fc1) is nn.Sequential and type(model.fc2) is nn.Linear
    reasons = {s.layer: s.reason for s in ctx.skipped}
    assert reasons["fc2"] == ("ranks [80] give 32100 parameters, not fewer than the layer's 30100; SVD saves "
                              "parameters only below m n / (m + n) = 75.0")
    with pytest.raises(ConfigError, match="for layer 'fc3'"):  # fc3's full rank is 10
        low_rank_(LeNet300(), LowRankConfig(rank=80, exclude=["fc1"]))


def test_methods_skip_layers_they_do_not_handle() -> None:
    ctx = StageContext()
    model = low_rank_(LeNet5(), LowRankConfig(method="tucker", ratio=0.5), ctx=ctx)
    reasons = {s.layer: s.reason for s in ctx.skipped}
    assert reasons["fc1"] == "a Linear layer: use method svd (tucker factorizes k x k convs)"
    assert type(model.conv1) is nn.Sequential and type(model.conv2) is nn.Sequential
    assert [tuple(m.weight.shape) for m in model.conv2] == [(10, 20, 1, 1), (25, 10, 5, 5), (50, 25, 1, 1)]
    grouped = nn.Sequential(nn.Conv2d(8, 8, 3, groups=2), nn.Conv2d(8, 8, 1))
    ctx = StageContext()
    low_rank_(grouped, LowRankConfig(method="cp", rank=2), ctx=ctx)
    assert [(s.layer, s.reason) for s in ctx.skipped] == [
        ("0", "a grouped conv (groups=2); low-rank handles groups=1 only"),
        ("1", "a 1x1 conv: use method svd (cp factorizes k x k convs)")]


def test_energy_and_budget_rules() -> None:
    ctx = StageContext()
    low_rank_(LeNet300(), LowRankConfig(param_budget=0.2, include=["fc1", "fc2"]), ctx=ctx)
    before, after = ctx.notes["params_before"], ctx.notes["params_after"]
    assert before == 235_500 + 30_100 and after <= 0.2 * before and after > 0.15 * before
    ctx = StageContext()
    low_rank_(ResNetSmall(), LowRankConfig(method="tucker", param_budget=0.3), ctx=ctx)
    model_convs = sum(n["params_before"] for n in ctx.notes["layers"].values())
    assert ctx.notes["params_after"] <= 0.3 * model_convs + 300  # the stem (288) stays whole, inside the budget
    ctx = StageContext()
    low_rank_(LeNet300(), LowRankConfig(energy=1.0, include=["fc3"]), ctx=ctx)
    assert ctx.skipped[0].layer == "fc3"  # full energy: full rank, no saving


@pytest.mark.parametrize("config", [LowRankConfig(rank=16, include=["fc1", "fc2"]),
                                    LowRankConfig(method="tucker", ratio=0.5),
                                    LowRankConfig(method="cp", rank=8, cp_iterations=20),
                                    LowRankConfig(method="cp", rank=8, spatial="full", cp_iterations=20)],
                         ids=["svd", "tucker", "cp-separable", "cp-full"])
def test_pack_unpack_round_trip_is_bit_identical(config: LowRankConfig, tmp_path: Path) -> None:
    lenet = config.method.value == "svd"
    model = _with_source(LeNet300() if lenet else LeNet5(),
                         "modelpress.zoo.models:" + ("LeNet300" if lenet else "LeNet5")).eval()
    model = low_rank_(model, config)
    assert get_provenance(model).transforms[-1]["type"] == "low-rank"
    path = tmp_path / "m.mpz"
    pack(model, path)
    restored = unpack(path).eval()
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model(x), restored(x))
    assert restored.state_dict().keys() == model.state_dict().keys()


def test_rebuilder_rejects_a_record_that_does_not_fit_the_architecture() -> None:
    record = {"type": "low-rank", "layers": [{"name": "fc1", "form": "svd-linear", "in": 784, "out": 200,
                                              "ranks": [4], "bias": True, "kernel": [1, 1], "stride": [1, 1],
                                              "padding": [0, 0], "dilation": [1, 1], "dtype": "float32"}]}
    with pytest.raises(FormatError, match=r"low-rank transform: layer 'fc1': expected a Linear of shape \[200, 784\]"):
        _rebuild_low_rank(LeNet300(), record)
    broken = copy.deepcopy(record)
    broken["layers"][0]["ranks"] = [0]
    with pytest.raises(FormatError, match="the file is corrupted"):
        _rebuild_low_rank(LeNet300(), broken)


def test_recipe_stage_parses() -> None:
    recipe = parse_recipe({"name": "r", "stages": [{"type": "low-rank", "method": "svd", "rank": 32,
                                                    "include": ["fc1"], "finetune": {"epochs": 1}}]})
    assert recipe.stages[0] == LowRankConfig(rank=32, include=["fc1"], finetune={"epochs": 1})


def _tiny_task() -> ClassificationTask:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)
    return ClassificationTask("tiny", x, y, x[:32], y[:32], num_classes=10)


def test_keep_if_faster_needs_a_task_and_decides_every_layer_by_measurement() -> None:
    config = LowRankConfig(rank=8, include=["fc1", "fc2"], keep_if_faster=True, latency_batch=8)
    with pytest.raises(ConfigError, match="low-rank: keep_if_faster: expected a task"):
        low_rank_(LeNet300(), config)
    ctx = StageContext()
    model = low_rank_(LeNet300(), config, task=_tiny_task(), ctx=ctx)
    slower = {s.layer for s in ctx.skipped if "not faster" in s.reason and "keep_if_faster" in s.reason}
    kept = set(ctx.notes["layers"])
    assert kept | slower == {"fc1", "fc2"} and not kept & slower  # each layer either kept or skipped as slower
    for name in kept:
        assert type(getattr(model, name)) is nn.Sequential
        assert ctx.notes["layers"][name]["factorized_ms"] < ctx.notes["layers"][name]["dense_ms"]
    for name in slower:
        assert type(getattr(model, name)) is nn.Linear
