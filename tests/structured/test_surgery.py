"""Surgery: nothing removed changes nothing; removed units equal masking them in the original; every pruned model
runs; attention heads are really removed."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from modelpress.recipe.registry import StageContext
from modelpress.structured import PruneChannelsConfig, PrunedMultiheadAttention, prune_channels, trace_channels
from modelpress.structured.importance import ChannelCriterion, group_scores
from modelpress.structured.stage import _plan
from modelpress.structured.surgery import remove_units
from tests.structured.models import MODELS

SHAPE_MODELS = ["residual", "depthwise", "concat_split", "grouped", "tiny_lm", "encoder_layer"]


def _randomize_norms(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and shifts, so a wrong slice shows in the outputs."""
    gen = torch.Generator().manual_seed(2)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen))
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=gen))
    return model.eval()


@pytest.mark.parametrize("name", SHAPE_MODELS)
def test_keep_everything_gives_identical_outputs(name: str) -> None:
    factory, inputs = MODELS[name]
    model = _randomize_norms(factory())
    x = inputs()
    expected = model(*x)
    ctx = StageContext()
    pruned = prune_channels(copy.deepcopy(model), PruneChannelsConfig(ratio=0.0), x, ctx=ctx)
    assert torch.equal(pruned(*x), expected)
    assert ctx.notes["layers"] == {}


@pytest.mark.parametrize("name", ["residual", "depthwise", "concat_split", "grouped", "tiny_lm", "encoder_layer"])
def test_removing_units_equals_masking_them(name: str) -> None:
    """Zeroing the columns that read the removed channels (and the heads' output columns) in the original gives
    the pruned model's outputs: the surgery cut exactly the right slices everywhere."""
    factory, inputs = MODELS[name]
    model = _randomize_norms(factory())
    x = inputs()
    config = PruneChannelsConfig(ratio=0.4, criterion="random", exclude=["embed"] if name == "tiny_lm" else [])
    trace = trace_channels(model, x)
    scores = {i: group_scores(model, g, ChannelCriterion.random, seed=3) for i, g in enumerate(trace.groups)
              if not g.blocked and g.layers != ("embed", "layer.linear2", "layer.self_attn")}
    plan = _plan(config, trace, scores, 0.4)
    assert plan, "something must be removed"
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for index, units in plan.items():
            for unit in units:
                for module_name, attr, dim, i in trace.groups[index].units[unit]:
                    module = masked.get_submodule(module_name)
                    if dim == 1 and isinstance(module, nn.Conv2d | nn.Linear) and attr == "weight":
                        module.weight[:, i] = 0  # the layer no longer reads this channel (or head)
    pruned, record = remove_units(copy.deepcopy(model), trace, plan)
    assert record["layers"]
    torch.testing.assert_close(pruned(*x), masked(*x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", SHAPE_MODELS)
@pytest.mark.parametrize("scope", ["uniform", "global"])
def test_every_pruned_model_runs(name: str, scope: str) -> None:
    factory, inputs = MODELS[name]
    model = factory().eval()
    x = inputs()
    expected_shape = model(*x).shape
    ctx = StageContext()
    pruned = prune_channels(model, PruneChannelsConfig(ratio=0.5, scope=scope, round_to=2), x, ctx=ctx)
    assert pruned(*x).shape == expected_shape
    assert ctx.notes["layers"], "something must have been removed"
    total = sum(p.numel() for p in factory().parameters())
    assert sum(p.numel() for p in pruned.parameters()) < total


def test_encoder_layer_loses_heads_physically() -> None:
    factory, inputs = MODELS["encoder_layer"]
    layer = factory().eval()
    x = inputs()
    pruned = prune_channels(layer, PruneChannelsConfig(ratio=0.5), x)
    attn = pruned.self_attn
    assert isinstance(attn, PrunedMultiheadAttention)
    assert (attn.num_heads, attn.head_dim) == (2, 4)
    assert attn.in_proj_weight.shape == (3 * 2 * 4, 16) and attn.out_proj.weight.shape == (16, 8)
    assert pruned.linear1.out_features == 16 and pruned.linear2.in_features == 16
    assert pruned(*x).shape == (2, 5, 16)
    pruned.train()(*x).sum().backward()  # trainable: the fine-tuning path works


def test_head_dim_pruning_keeps_the_original_softmax_scale() -> None:
    factory, inputs = MODELS["encoder_layer"]
    layer = factory().eval()
    x = inputs()
    trace = trace_channels(layer, x, attention="head-dim")
    (index,) = [i for i, g in enumerate(trace.groups) if g.kind == "head-dim"]
    masked = copy.deepcopy(layer)
    with torch.no_grad():
        for module_name, attr, _, i in trace.groups[index].units[1]:  # position 1 of every head, q, k and v rows
            if attr.startswith("in_proj"):
                getattr(masked.get_submodule(module_name), attr)[i] = 0
    pruned, _ = remove_units(copy.deepcopy(layer), trace, {index: [1]})
    assert (pruned.self_attn.num_heads, pruned.self_attn.head_dim) == (4, 3)
    assert pruned.self_attn.scale == pytest.approx(0.5)  # 1 / sqrt(4), the original head dim
    torch.testing.assert_close(pruned(*x), masked(*x), rtol=1e-5, atol=1e-5)


def test_round_to_and_override() -> None:
    factory, inputs = MODELS["residual"]
    config = PruneChannelsConfig(ratio=0.3, round_to=4, overrides=[{"layers": ["layer1.0.conv1"], "ratio": 0.75}])
    pruned = prune_channels(factory(), config, inputs())
    assert pruned.layer1[0].conv1.out_channels == 4  # the override: 8 -> 2, rounded up to one multiple of 4
    assert pruned.layer2[0].conv1.out_channels == 12  # 16 * 0.7 = 11.2 -> nearest multiple of 4


def test_flops_target_is_met() -> None:
    factory, inputs = MODELS["concat_split"]
    ctx = StageContext()
    model = factory()
    prune_channels(model, PruneChannelsConfig(target={"metric": "flops", "fraction": 0.4}), inputs(), ctx=ctx)
    assert 0.3 < ctx.notes["target"]["reached"] <= 0.4
