"""GPTQ: lower layer-output error than round to nearest with a calibration Hessian, identical to it without one,
exact pack/unpack of its integers through the ``quantize`` stage, bias correction, and its config errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from modelpress.errors import ConfigError
from modelpress.kernels import Int4WeightOnlyLinear
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, set_provenance
from modelpress.quantize import QuantizeConfig, quantize_
from modelpress.quantize.gptq import HessianAccumulator, collect_input_stats, gptq_quantize, hessian_from_inputs
from modelpress.quantize.lowbit import group_qparams_quantize, grouped_module
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask


def _problem(seed: int, n: int = 24, k: int = 64, rows: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight [n, k] and correlated inputs [rows, k] (a low-rank mix plus noise, as real activations are)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 16, generator=g) @ torch.randn(16, k, generator=g) + 0.2 * torch.randn(rows, k, generator=g)
    return torch.randn(n, k, generator=g), x


def _output_error(w: torch.Tensor, wq: torch.Tensor, x: torch.Tensor) -> float:
    return float(((x @ (wq - w).T) ** 2).mean())


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_beats_round_to_nearest_on_layer_output(bits: int, act_order: bool) -> None:
    for seed in range(3):
        w, x = _problem(seed)
        h = hessian_from_inputs(x)
        gptq = gptq_quantize(w, h, bits, group_size=32, act_order=act_order)
        rtn = gptq_quantize(w, None, bits, group_size=32)
        assert _output_error(w, gptq.dequantized(), x) < 0.7 * _output_error(w, rtn.dequantized(), x)
        assert int(gptq.u.max()) <= 2**bits - 1 and int(gptq.zero.max()) <= 2**bits - 1


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), groups=st.integers(1, 3), group_size=st.sampled_from([2, 4, 8]), bits=st.integers(2, 8),
       seed=st.integers(0, 1000))
def test_gptq_with_identity_hessian_is_round_to_nearest(n: int, groups: int, group_size: int, bits: int,
                                                        seed: int) -> None:
    w = torch.randn(n, groups * group_size, generator=torch.Generator().manual_seed(seed))
    gptq = gptq_quantize(w, torch.eye(w.shape[1]), bits, group_size, block_size=4)
    u, scale, zero = group_qparams_quantize(w, bits, group_size)
    assert torch.equal(gptq.u, u)
    assert torch.equal(gptq.scale, scale.float()) and torch.equal(gptq.zero, zero.to(torch.int32))


def test_gptq_values_pack_and_unpack_exactly() -> None:
    w, x = _problem(0, n=32, k=64)
    linear = nn.Linear(64, 32)
    with torch.no_grad():
        linear.weight.copy_(w)
    r = gptq_quantize(w, hessian_from_inputs(x), 4, group_size=32)
    module = grouped_module(linear, r.u, r.scale, r.zero, 32)
    assert torch.equal(module.weight_uint4(), r.u) and torch.equal(module.dequantized_weight(), r.dequantized())
    fresh = Int4WeightOnlyLinear(64, 32, 32)
    fresh.load_state_dict(module.state_dict())
    assert torch.equal(fresh(x), module(x)) and torch.equal(fresh(x[:4]), module(x[:4]))


def _toy_task() -> ClassificationTask:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=g) @ torch.randn(64, 64, generator=g) + 1.0  # non-zero mean inputs
    y = (x[:, 0] > 1).long()
    return ClassificationTask("toy", x, y, x[:64], y[:64], num_classes=2)


def _toy_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32))
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "tests.quantize.test_gptq:_toy_model"}))
    return model


def test_gptq_stage_round_trips_and_beats_rtn(tmp_path: Path) -> None:
    task, model = _toy_task(), _toy_model()
    config = {"mode": "weight-int4", "group_size": 32, "calibration_batches": 2}
    ctx = StageContext(task=task)
    gptq = quantize_(copy.deepcopy(model), QuantizeConfig(**config, method="gptq"), ctx=ctx)
    rtn = quantize_(copy.deepcopy(model), QuantizeConfig(**config))
    assert ctx.notes["method"] == "gptq" and ctx.notes["calibration_rows"] == 128
    pack(gptq, tmp_path / "g.mpz")
    restored = unpack(tmp_path / "g.mpz")
    x = task.x_test
    assert torch.equal(restored(x), gptq(x))
    with torch.no_grad():
        reference = model(x)
        assert ((gptq(x) - reference) ** 2).mean() < ((rtn(x) - reference) ** 2).mean()


def test_bias_correction_removes_the_mean_output_shift() -> None:
    task, model = _toy_task(), _toy_model()
    config = {"mode": "weight-int4", "group_size": 32, "calibration_batches": 4, "include": ["0"]}
    ctx = StageContext(task=task)
    corrected = quantize_(copy.deepcopy(model), QuantizeConfig(**config, bias_correction=True), ctx=ctx)
    plain = quantize_(copy.deepcopy(model), QuantizeConfig(**config))
    assert ctx.notes["bias_corrected"] == ["0"]
    x = task.x_train
    with torch.no_grad():
        reference = model[0](x)
        shift_plain = (plain[0](x) - reference).mean(0).abs().mean()
        shift_corrected = (corrected[0](x) - reference).mean(0).abs().mean()
    assert shift_corrected < 0.05 * shift_plain


def test_hessian_accumulator_matches_direct_product() -> None:
    x = torch.randn(3, 5, 4)
    acc = HessianAccumulator(4)
    acc.update(x[:1])
    acc.update(x[1:])
    rows = x.reshape(-1, 4)
    assert torch.allclose(acc.hessian(), rows.T @ rows / 15, atol=1e-5)
    assert torch.allclose(acc.mean(), rows.mean(0), atol=1e-6)
    stats = collect_input_stats(nn.Sequential(nn.Conv2d(2, 3, 1)), ["0"], [(torch.ones(1, 2, 3, 3),)])
    assert stats["0"].count == 9 and torch.equal(stats["0"].mean(), torch.ones(2))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bits": 0}, "bits: expected an integer in [1, 8], got 0"),
    ({"bits": 9}, "bits: expected an integer in [1, 8], got 9"),
    ({"group_size": 24}, "group_size: expected an even divisor of the 64 input features, got 24"),
    ({"damp": 1.5}, "gptq.damp: expected a number in [0, 1)"),
    ({"block_size": 0}, "gptq.block_size: expected a positive integer, got 0"),
])
def test_gptq_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    w, x = _problem(0)
    args = {"bits": 4, "group_size": 32, **kwargs}
    with pytest.raises(ConfigError) as err:
        gptq_quantize(w, hessian_from_inputs(x), **args)
    assert message in str(err.value)


def test_gptq_rejects_a_hessian_of_the_wrong_shape() -> None:
    with pytest.raises(ConfigError, match=r"gptq hessian: expected a \[8, 8\] matrix"):
        gptq_quantize(torch.ones(2, 8), torch.eye(4), 4, group_size=4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "gptq"}, "expected mode weight-int4 with method gptq"),
    ({"mode": "weight-int4", "embedding_bits": 9}, "expected embedding_bits 4 (int4 groups) or 8 (int8 rows), not 9"),
])
def test_quantize_config_rejects_bad_combinations(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        QuantizeConfig(**kwargs)


def test_gptq_needs_a_task() -> None:
    with pytest.raises(ConfigError, match="quantize: gptq: expected a task"):
        quantize_(_toy_model(), QuantizeConfig(mode="weight-int4", method="gptq"))
