"""Quantization-aware training: the STE and LSQ gradients, learned steps that move, apply/strip, and the ``qat``
stage's conversion to an integer model that packs and unpacks exactly (small models, the 8x8 digits task)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from modelpress.config import FinetuneConfig
from modelpress.errors import ConfigError, FormatError
from modelpress.format import read_file
from modelpress.kernels import Int8DynamicLinear, Int8WeightOnlyLinear
from modelpress.kernels.quantized_conv import QuantizedConv2d
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.quantize.fake import FakeQuantConv2d, FakeQuantLinear, apply_fake_quant, strip_fake_quant
from modelpress.quantize.lsq import LSQQuantizer, lsq_fake_quantize
from modelpress.quantize.qat import QATConfig, QATConverter, _rebuild_qat, select_qat_targets
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.recipe.schema import parse_recipe
from modelpress.zoo.models import LeNet5


def test_ste_passes_the_output_gradient_inside_the_range_and_zero_outside() -> None:
    x = torch.tensor([-3.0, -0.9, -0.2, 0.0, 0.3, 0.74, 0.76, 2.0], requires_grad=True)
    scale = torch.tensor(0.25, requires_grad=True)
    y = lsq_fake_quantize(x, scale, -3, 3, 1.0)  # range [-0.75, 0.75]
    upstream = torch.arange(1.0, 9.0)
    y.backward(upstream)
    inside = (x.detach() >= -0.75) & (x.detach() <= 0.75)
    assert torch.equal(x.grad, torch.where(inside, upstream, torch.zeros(())))
    assert inside.tolist() == [False, False, True, True, True, True, False, False]


def test_lsq_step_gradient_is_the_papers_with_its_grad_scale() -> None:
    torch.manual_seed(1)
    x = torch.randn(200)
    scale = torch.tensor(0.3, requires_grad=True)
    factor = 1 / math.sqrt(200 * 7)
    lsq_fake_quantize(x, scale, -7, 7, factor).sum().backward()
    v = x / 0.3
    # Esser et al. eq. 3: -v + round(v) inside the range, qmin below, qmax above; times g
    per_element = torch.where(v <= -7, torch.tensor(-7.0), torch.where(v >= 7, torch.tensor(7.0), torch.round(v) - v))
    assert scale.grad == pytest.approx(float(per_element.sum()) * factor, rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 8), rows=st.integers(1, 6), cols=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_lsq_integers_times_steps_is_the_fake_quantized_weight(bits: int, rows: int, cols: int, seed: int) -> None:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    quant = LSQQuantizer(bits, channels=rows, signed=True)
    quant.initialize(w)
    q, scale = quant.integers(w)
    assert int(q.abs().max()) <= 2 ** (bits - 1) - 1
    assert torch.allclose(q.float() * scale[:, None], quant(w).detach(), rtol=0, atol=1e-6)


def test_lsq_steps_receive_gradients_and_move_in_training() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    apply_fake_quant(model, ["0", "2"], "lsq", bits=3, input_bits=4)
    scales = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("scale")}
    assert set(scales) == {"0.weight_quant.scale", "0.input_quant.scale", "2.weight_quant.scale",
                           "2.input_quant.scale"}
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    model(x)  # the first batch initializes the input steps
    scales = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("scale")}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        for name, p in model.named_parameters():
            if name.endswith("scale"):
                assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
        optimizer.step()
    for name, p in model.named_parameters():
        if name.endswith("scale"):
            assert not torch.equal(p.detach(), scales[name]), name


def test_apply_then_strip_restores_the_original_modules_exactly() -> None:
    model = LeNet5()
    before = copy.deepcopy(model.state_dict())
    layers = {n: m for n, m in model.named_modules() if n}
    x = torch.randn(2, 1, 28, 28)
    reference = model(x)
    wrapped = apply_fake_quant(model, list(layers), "lsq", bits=4, input_bits=8)
    assert isinstance(model.conv1, FakeQuantConv2d) and isinstance(model.fc1, FakeQuantLinear)
    assert not torch.equal(model(x), reference)  # 4-bit weights change the outputs
    assert strip_fake_quant(model) == wrapped
    assert all(model.get_submodule(n) is m for n, m in layers.items())
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert torch.equal(model(x), reference)




def _toy_model() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 32), nn.ReLU(),
                          nn.Linear(32, 10))
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "tests.quantize.test_qat:_toy_model"}))
    return model


@pytest.mark.parametrize(("config", "linear", "max_level"), [
    (QATConfig(bits=4, activation_bits=8, finetune=FinetuneConfig(epochs=6, lr=5e-3)), Int8WeightOnlyLinear, 7),
    (QATConfig(bits=8, finetune=FinetuneConfig(epochs=6, lr=5e-3)), Int8DynamicLinear, 127),
    (QATConfig(scheme="ternary", finetune=FinetuneConfig(epochs=6, lr=5e-3)), Int8WeightOnlyLinear, 1),
])
def test_qat_stage_trains_then_converts_to_an_integer_model_that_unpacks_exactly(config, linear, max_level,
                                                                                 digits_task, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _toy_model()
    ctx = StageContext(task=digits_task, quiet=True)
    model = run_stage(model, config, ctx)
    assert isinstance(model[0], QuantizedConv2d) and isinstance(model[3], linear) and isinstance(model[5], linear)
    for index in (0, 3, 5):
        assert 0 < int(model[index].weight_int8.abs().max()) <= max_level
    assert ctx.notes["runtime"]["0"] == "QuantizedConv2d"
    assert get_provenance(model).transforms[-1]["type"] == "qat"
    assert digits_task.evaluate(model)["accuracy"] > 0.5
    path = tmp_path / "qat.mpz"
    pack(model, path)
    tensors, _ = read_file(path)
    assert tensors["0.weight_int8"].dtype == torch.int8 and tensors["3.weight_int8"].dtype == torch.int8
    restored = unpack(path)
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(restored(x), model(x))


def test_converter_converts_once_and_no_finetune_converts_at_once() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    apply_fake_quant(model, ["0"], "binary", bits=1)
    converter = QATConverter(QATConfig(scheme="binary"), ["0"], {})
    converter.convert(model)
    first = model[0]
    converter.convert(model)
    assert model[0] is first and set(first.weight_int8.unique().tolist()) <= {-1, 1}


def test_selection_skips_with_reasons_and_rejects_patterns_matching_nothing() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), nn.Linear(4, 4))
    model[2].weight = model[0].weight
    names, skipped = select_qat_targets(model, QATConfig())
    assert names == []
    assert [s.layer for s in skipped] == ["0", "1", "2"]
    assert "circular" in skipped[1].reason and "tied" in skipped[0].reason
    with pytest.raises(ConfigError, match=r"qat.include: expected patterns matching at least one Linear or Conv2d "
                                          r"layer, got \['nope'\]. Fix: use names among: 0, 1, 2"):
        select_qat_targets(model, QATConfig(include=["nope"]))


@pytest.mark.parametrize(("stages", "message"), [
    ([{"type": "qat", "scheme": "ternary", "bits": 4, "finetune": {"epochs": 1}}],
     "stages[0].bits: expected no bits with scheme ternary (its levels are fixed), got 4. Fix: drop bits"),
    ([{"type": "qat"}], "stages[0].finetune: expected a finetune section"),
    ([{"type": "qat", "finetune": {"epochs": 1}}, {"type": "cast", "dtype": "bfloat16"}],
     "stages[1]: expected no cast stage after a qat stage"),
])
def test_recipe_rules(stages, message) -> None:
    with pytest.raises(ConfigError) as info:
        parse_recipe({"name": "r", "stages": stages})
    assert message in str(info.value)


def test_a_record_that_does_not_match_the_architecture_is_refused() -> None:
    with pytest.raises(FormatError, match=r"qat transform: layer '3': expected a layer matching the record"):
        _rebuild_qat(_toy_model(), {"type": "qat", "layers": [{"name": "3", "kind": "linear-int8-weight",
                                                                "in_features": 5, "out_features": 32}]})
    with pytest.raises(FormatError, match=r"qat transform: layer '0': kind: expected one of"):
        _rebuild_qat(_toy_model(), {"type": "qat", "layers": [{"name": "0", "kind": "conv3d"}]})


def test_pruned_zeros_stay_zero_through_qat(digits_task) -> None:
    from modelpress.prune.masks import MaskKeeper

    torch.manual_seed(0)
    model = _toy_model()
    with torch.no_grad():
        model[3].weight[:, ::2] = 0.0  # half the weights pruned
    keeper = MaskKeeper.from_zeros(model, ["3.weight"])
    names_before = [n for n, _ in model.named_parameters()]
    apply_fake_quant(model, ["0", "3", "5"], "lsq", bits=4)
    assert [n for n in names_before if n not in dict(model.named_parameters())] == []  # same names while wrapped
    strip_fake_quant(model)
    ctx = StageContext(task=digits_task, quiet=True, callbacks=[keeper])
    model = run_stage(model, QATConfig(bits=4, finetune=FinetuneConfig(epochs=2, lr=5e-3)), ctx)
    assert int(model[3].weight_int8[:, ::2].abs().sum()) == 0
    assert int(model[3].weight_int8[:, 1::2].abs().sum()) > 0


def test_lsq_rejects_unsupported_bits() -> None:
    with pytest.raises(ConfigError, match=r"bits: expected an integer in \[2, 8\], got 1. Fix: use 2 to 8 bits "
                                          r"\(binary: the binary scheme\)"):
        LSQQuantizer(1)
