"""Mixed precision: the allocation respects its budget (and is optimal on small instances), explicit per-type maps,
sensitivity rows, exact pack/unpack of every storage kind, fewer file bytes at fewer bits, and config errors."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from modelpress.errors import ConfigError
from modelpress.kernels import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from modelpress.kernels.quantized_conv import QuantizedConv2d
from modelpress.kernels.quantized_embedding import QuantizedEmbedding
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, set_provenance
from modelpress.quantize.allocate import _GRID, allocate_bits
from modelpress.quantize.mixed import MixedPrecisionConfig, apply_mixed, layer_category, quantize_mixed_
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.zoo.models import LeNet5, LeNet300

_SENS = st.floats(0.0, 10.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), layers=st.integers(1, 4), budget=st.floats(2.0, 8.0))
def test_allocation_respects_budget_and_is_optimal(data: st.DataObject, layers: int, budget: float) -> None:
    choices = (2, 3, 4, 8)
    sizes = {f"l{i}": data.draw(st.integers(1, 5000)) for i in range(layers)}
    sens = {name: dict(zip(choices, sorted(data.draw(st.lists(_SENS, min_size=4, max_size=4)), reverse=True),
                           strict=True)) for name in sizes}
    chosen = allocate_bits(sens, sizes, budget)
    total = sum(sizes.values())
    assert sum(sizes[n] * b for n, b in chosen.items()) <= budget * total + 1e-6
    # optimal against brute force over assignments fitting a budget tightened by the grid's rounding
    tight = budget * total * (1 - layers / _GRID)
    feasible = [dict(zip(sizes, combo, strict=True)) for combo in itertools.product(choices, repeat=layers)
                if sum(sizes[n] * b for n, b in zip(sizes, combo, strict=True)) <= tight]
    if feasible:
        best = min(sum(sens[n][b] for n, b in a.items()) for a in feasible)
        assert sum(sens[n][b] for n, b in chosen.items()) <= best + 1e-9


def test_impossible_budget_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"average_bits: expected at least 3 .*got 2.5. Fix: raise average_bits"):
        allocate_bits({"a": {3: 1.0, 8: 0.0}}, {"a": 10}, 2.5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layer_bits": {"linear": 0}}, "expected widths between 2 and 8 bits, not 0"),
    ({"layer_bits": {"linear": 9}}, "expected widths between 2 and 8 bits, not 9"),
    ({"average_bits": 5, "bits": [1, 4]}, "expected widths between 2 and 8 bits, not 1"),
    ({}, "expected exactly one of layer_bits"),
    ({"average_bits": 4, "layer_bits": {"linear": 4}}, "expected exactly one of layer_bits"),
    ({"average_bits": 1.5}, "expected average_bits between the narrowest and widest candidate (2 and 8), not 1.5"),
    ({"average_bits": 9}, "expected average_bits between the narrowest and widest candidate (2 and 8), not 9"),
    ({"layer_bits": {"linear": 4}, "group_size": 31}, "group_size"),
])
def test_bad_configs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        MixedPrecisionConfig(**kwargs)
    assert message in str(err.value)


def test_layer_bits_key_matching_nothing_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"layer_bits\['fc9'\]: expected a category"):
        quantize_mixed_(LeNet300(), MixedPrecisionConfig(layer_bits={"fc9": 4}))


def test_categories_of_transformer_layers() -> None:
    linear = nn.Linear(2, 2)
    assert layer_category("bert.encoder.layer.2.attention.output.dense", linear) == ["attention", "linear"]
    assert layer_category("bert.encoder.layer.2.output.dense", linear) == ["ffn", "linear"]
    assert layer_category("bert.pooler.dense", linear) == ["linear"]
    assert layer_category("conv1", nn.Conv2d(1, 1, 1)) == ["conv"]


def _lenet5() -> nn.Module:
    torch.manual_seed(0)
    model = LeNet5()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "modelpress.zoo.models:LeNet5"}))
    return model


def test_explicit_map_round_trips_and_keeps_levels(tmp_path: Path) -> None:
    model = quantize_mixed_(_lenet5(), MixedPrecisionConfig(layer_bits={"conv": 8, "fc2": 8, "linear": 3},
                                                            bias_correction=False))
    assert isinstance(model.conv1, QuantizedConv2d) and isinstance(model.fc2, Int8WeightOnlyLinear)
    assert isinstance(model.fc1, Int4WeightOnlyLinear) and int(model.fc1.weight_uint4().max()) <= 7
    pack(model, tmp_path / "m.mpz")
    restored = unpack(tmp_path / "m.mpz")
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(restored(x), model(x))


def test_fewer_bits_make_a_smaller_file(tmp_path: Path) -> None:
    sizes = {}
    for bits in (2, 4):
        torch.manual_seed(0)
        model = LeNet300()
        set_provenance(model, Provenance(source={"kind": "factory", "ref": "modelpress.zoo.models:LeNet300"}))
        sizes[bits] = pack(quantize_mixed_(model, MixedPrecisionConfig(layer_bits={"linear": bits})),
                           tmp_path / f"{bits}.mpz")
    assert sizes[2] < 0.7 * sizes[4]


def _task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (192,), generator=g)
    return ClassificationTask("toy", x, y, x[:32], y[:32], num_classes=10)


def test_allocation_stage_meets_budget_and_records_sensitivity(tmp_path: Path) -> None:
    model, task = _lenet5(), _task()
    ctx = StageContext(task=task)
    config = MixedPrecisionConfig(average_bits=4.0, bits=(2, 4, 8), sensitivity_batches=1, batch_size=32,
                                  calibration_batches=2, bias_correction=True, method="gptq")
    out = apply_mixed(copy.deepcopy(model), config, ctx)
    assert ctx.notes["average_bits"] <= 4.0 and set(ctx.notes["layer_bits"].values()) <= {2, 4, 8}
    assert set(ctx.notes["layer_bits"]) == {"conv1", "conv2", "fc1", "fc2"}
    rows = ctx.notes["sensitivity_bits"]
    assert len(rows) == 12 and {"weight_sqnr_db", "output_sqnr_db", "output_cosine", "top1_agreement"} <= set(rows[0])
    for layer in ("conv1", "fc1"):  # more bits, less output noise
        noise = [r["output_noise"] for r in rows if r["layer"] == layer]
        assert noise == sorted(noise, reverse=True)
    assert set(ctx.notes["bias_corrected"]) == {"conv1", "conv2", "fc1", "fc2"}
    pack(out, tmp_path / "m.mpz")
    assert torch.equal(unpack(tmp_path / "m.mpz")(task.x_test), out(task.x_test))


class TwoTables(nn.Module):
    """Two embedding tables summed, then a Linear head (a factory for the round trip below)."""

    def __init__(self) -> None:
        super().__init__()
        self.words, self.positions, self.head = nn.Embedding(40, 32), nn.Embedding(8, 32), nn.Linear(32, 16)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.words(ids) + self.positions(torch.arange(ids.shape[-1])))


def two_tables() -> nn.Module:
    """The factory: fixed initial weights."""
    torch.manual_seed(0)
    return TwoTables()


def test_embeddings_round_trip_at_low_and_high_width(tmp_path: Path) -> None:
    model = two_tables()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "tests.quantize.test_mixed:two_tables"}))
    out = quantize_mixed_(model, MixedPrecisionConfig(layer_bits={"words": 3, "embedding": 8, "linear": 4},
                                                      embeddings=True, group_size=8))
    assert isinstance(out.words, QuantizedEmbedding) and out.words.bits == 4
    assert int(out.words.weight_uint4x2.max()) <= 0x77  # both nibbles at most 7: 3-bit levels
    assert isinstance(out.positions, QuantizedEmbedding) and out.positions.bits == 8
    pack(out, tmp_path / "e.mpz")
    ids = torch.randint(0, 40, (2, 5))
    assert torch.equal(unpack(tmp_path / "e.mpz")(ids), out(ids))


def test_average_bits_needs_a_task() -> None:
    with pytest.raises(ConfigError, match="quantize-mixed: sensitivity sweep: expected a task"):
        quantize_mixed_(LeNet300(), MixedPrecisionConfig(average_bits=4))


def test_report_shows_bits_per_layer() -> None:
    from modelpress.history import History, HistoryRow
    from modelpress.report.html import render_html

    rows = [{"layer": "fc<1>", "bits": b, "weights": 10, "output_sqnr_db": 6.0 * b} for b in (2, 8)]
    row = HistoryRow("mixed", 1, 1, 1, 1, 1.0, {"accuracy": 0.9}, 0.0,
                     notes={"layer_bits": {"fc<1>": 8}, "sensitivity_bits": rows})
    page = render_html(History([HistoryRow("original", 4, 1, 1, 1, 1.0, {"accuracy": 0.9}, 0.0), row]),
                       {"model": "m", "task": "t", "primary_metric": "accuracy"})
    assert "Bits per layer" in page and "fc&lt;1&gt;" in page and "SQNR at 8 bits (dB)" in page and ">48<" in page


def test_recipe_rules_apply_to_quantize_mixed() -> None:
    from modelpress.recipe import parse_recipe

    mixed = {"type": "quantize-mixed", "average_bits": 5.0}
    with pytest.raises(ConfigError, match=r"stages\[0\].finetune: expected no fine-tuning of integer layers"):
        parse_recipe({"stages": [{**mixed, "finetune": {"epochs": 1}}]})
    with pytest.raises(ConfigError, match=r"stages\[1\]: expected no cast after an integer quantize stage"):
        parse_recipe({"stages": [mixed, {"type": "cast"}]})
