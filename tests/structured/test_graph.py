"""The dependency graph: which channels are coupled, what is blocked, how a group prints."""

from __future__ import annotations

import torch
from torch import nn

from modelpress.structured import trace_channels
from tests.structured.models import MODELS, ConcatSplit, Grouped, TinyLM, image, tokens


def _groups(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[tuple[str, ...], list]:
    out: dict[tuple[str, ...], list] = {}
    for group in trace_channels(model, inputs).groups:
        out.setdefault(group.layers, []).append(group)
    return out


def test_residual_add_couples_both_branches_and_the_projection() -> None:
    factory, inputs = MODELS["residual"]
    groups = _groups(factory(), inputs())
    stage2 = groups[("layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2")][0]
    assert stage2.size == 16 and not stage2.blocked
    slots = {(m, t, d) for m, t, d in stage2.slots}
    assert {("layer2.0.shortcut.1", "weight", 0), ("layer2.1.conv1", "weight", 1),
            ("layer3.0.conv1", "weight", 1)} <= slots


def test_concat_split_and_flatten_map_to_the_right_slices() -> None:
    groups = _groups(ConcatSplit(), image(channels=3, size=8))
    a, b = groups[("a",)][0], groups[("b",)][0]
    # cat: a's channels are c's input columns 0..7, b's 8..13
    assert sorted(i for u in a.units for m, t, d, i in u if (m, d) == ("c", 1)) == list(range(8))
    assert sorted(i for u in b.units for m, t, d, i in u if (m, d) == ("c", 1)) == list(range(8, 14))
    halves = groups[("c",)]
    assert [g.size for g in halves] == [6, 6]
    # the left half of c flattens into fc: channel j owns fc columns 16 j .. 16 j + 15
    left = next(g for g in halves if ("fc", "weight", 1) in g.slots)
    first = sorted(i for m, t, d, i in left.units[0] if m == "fc")
    assert first == list(range(16))


def test_grouped_conv_joins_the_same_position_of_every_group_and_depthwise_passes_through() -> None:
    groups = _groups(Grouped(), image(channels=3, size=8))
    conv1 = groups[("conv1",)][0]
    assert conv1.size == 4 and all(len([m for m in u if m[0] == "conv1" and m[1] == "weight"]) == 4
                                   for u in conv1.units)
    middle = groups[("dw", "grouped")][0]
    assert middle.size == 6 and not middle.blocked  # 24 channels in 4 groups: 6 positions


def test_attention_heads_tied_embedding_and_blocked_output() -> None:
    groups = _groups(TinyLM(), tokens())
    heads = groups[("layer.self_attn",)][0]
    assert heads.kind == "heads" and heads.size == 4
    stream = groups[("embed", "layer.linear2", "layer.self_attn")][0]
    assert ("head", "weight", 1) in stream.slots and not stream.blocked  # the tied head reads the same columns
    assert groups[("head",)][0].blocked == "it reaches the model's output"


def test_model_input_blocks_the_residual_stream_of_a_bare_encoder_layer() -> None:
    factory, inputs = MODELS["encoder_layer"]
    groups = _groups(factory(), inputs())
    assert "constant of 16 channels" in str(groups[("linear2",)][0].blocked)
    assert groups[("linear1",)][0].size == 32 and not groups[("linear1",)][0].blocked


def test_unknown_function_blocks_instead_of_breaking() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.out = nn.Conv2d(4, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.out(y) + torch.fft.fft(y).real.sum()  # fft: an op the tracer does not know

    (group,) = [g for g in trace_channels(Odd(), image(channels=3, size=4)).groups if g.layers == ("conv",)]
    assert group.blocked is not None and "fft" in group.blocked


def test_group_prints_its_slots() -> None:
    factory, inputs = MODELS["residual"]
    text = str(next(g for g in trace_channels(factory(), inputs()).groups if g.layers == ("layer1.0.conv1",)))
    assert text.splitlines() == ["Group of 8 channels, layers layer1.0.conv1",
                                 "  layer1.0.bn1.bias dim 0 (8 indices)",
                                 "  layer1.0.bn1.running_mean dim 0 (8 indices)",
                                 "  layer1.0.bn1.running_var dim 0 (8 indices)",
                                 "  layer1.0.bn1.weight dim 0 (8 indices)",
                                 "  layer1.0.conv1.weight dim 0 (8 indices)",
                                 "  layer1.0.conv2.weight dim 1 (8 indices)"]


def test_an_op_call_the_tracer_cannot_follow_blocks_instead_of_crashing(monkeypatch) -> None:
    from modelpress.structured import trace as trace_module

    def broken(*args: object) -> None:
        raise ValueError("an argument form it does not know")

    monkeypatch.setattr(trace_module._Tracer, "reshape", broken)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(64, 2))
    group = next(g for g in trace_channels(model, image(channels=3, size=4)).groups if g.layers == ("0",))
    assert group.blocked == "modelpress could not follow flatten (an argument form it does not know)"
