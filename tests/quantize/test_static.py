"""Static W8A8 (``quantize-static``): calibration on the training split only, integer modules that track the float
layers, LeNet-5 on MNIST-5k within 0.3 points of fp32, and a file that unpacks to the same outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from modelpress import zoo
from modelpress.errors import ConfigError, FormatError
from modelpress.format import read_file
from modelpress.kernels.int8_dynamic import quantize_per_channel
from modelpress.kernels.quantized_conv import QuantizedConv2d
from modelpress.kernels.static_int8 import StaticInt8Linear
from modelpress.pack import pack, unpack
from modelpress.quantize.static import StaticQuantizeConfig, _rebuild_static, apply_static, calibrate_ranges
from modelpress.recipe.registry import StageContext
from modelpress.recipe.schema import parse_recipe


def test_calibration_reads_only_the_training_split(mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    original = type(mnist).train_batches

    def spy(self, batch_size, generator):  # type: ignore[no-untyped-def]
        seen.append((batch_size, 0))
        return original(self, batch_size, generator)

    monkeypatch.setattr(type(mnist), "train_batches", spy)
    monkeypatch.setattr(type(mnist), "evaluate", lambda self, model: pytest.fail("calibration used the test split"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    ctx = StageContext(task=mnist)
    apply_static(model, StaticQuantizeConfig(calibration_batches=3, batch_size=32), ctx)
    assert seen == [(32, 0)] and ctx.notes["calibration_examples"] == 96


def test_ranges_cover_the_linear_inputs() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = torch.randn(4, 1, 6, 6)
    ranges, n = calibrate_ranges(model, ["2"], [(x[:2],), (x[2:],)], StaticQuantizeConfig())
    assert n == 4 and set(ranges) == {"2"}
    hidden = model[1](model[0](x))  # [4, 32]: what the Linear sees
    assert torch.equal(ranges["2"][0], hidden.min()) and torch.equal(ranges["2"][1], hidden.max())


def test_lenet5_static_int8_within_0_3_points_and_file_unpacks_exactly(mnist, tmp_path: Path) -> None:
    fp32 = zoo.load("lenet5", mnist)
    reference = mnist.evaluate(fp32)["accuracy"]
    ctx = StageContext(task=mnist)
    model = apply_static(copy.deepcopy(fp32), StaticQuantizeConfig(), ctx)
    assert isinstance(model.conv1, QuantizedConv2d) and isinstance(model.fc1, StaticInt8Linear)
    assert ctx.notes["runtimes"]["conv1"].startswith("int8 weights stored, float32 conv")
    assert ctx.notes["runtimes"]["fc1"].startswith("int8 x int8 -> int32")
    accuracy = mnist.evaluate(model)["accuracy"]
    assert accuracy >= reference - 0.003
    path = tmp_path / "w8a8.mpz"
    nbytes = pack(model, path)
    assert nbytes < 0.35 * pack(fp32, tmp_path / "fp32.mpz")
    tensors, _ = read_file(path)
    assert tensors["conv2.weight_int8"].dtype == torch.int8 and tensors["fc1.weight_int8"].dtype == torch.int8
    restored = unpack(path)
    x = mnist.example_inputs(16)[0]
    assert isinstance(restored.conv2, QuantizedConv2d) and isinstance(restored.fc1, StaticInt8Linear)
    assert torch.equal(restored(x), model(x))


def test_static_modules_track_the_float_layers() -> None:
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.Linear(32, 8)
    x, v = torch.randn(4, 3, 9, 9), torch.randn(6, 32)
    y = conv(x)
    levels, scale = quantize_per_channel(conv.weight.detach().reshape(8, -1))  # what the stage does: [8, 27], [8]
    q = QuantizedConv2d.from_integers(conv, levels.reshape(conv.weight.shape), scale)
    assert isinstance(q, QuantizedConv2d) and q.weight_int8.dtype == torch.int8
    assert q.weight_int8.abs().amax((1, 2, 3)).eq(127).all()  # symmetric per-channel: each row reaches +-127
    assert (q(x) - y).abs().max() < 0.03 * y.abs().max()
    ql = StaticInt8Linear.from_linear(linear, (v.min(), v.max()))
    assert (ql(v) - linear(v)).abs().max() < 0.03 * linear(v).abs().max()


def test_errors() -> None:
    with pytest.raises(ConfigError, match=r"stages\[0\].finetune: expected no fine-tuning of static int8 layers"):
        parse_recipe({"name": "r", "stages": [{"type": "quantize-static", "finetune": {"epochs": 1}}]})
    with pytest.raises(ConfigError, match=r"stages\[1\]: expected no cast after a quantize-static stage"):
        parse_recipe({"name": "r", "stages": [{"type": "quantize-static"}, {"type": "cast", "dtype": "float16"}]})
    with pytest.raises(ConfigError, match=r"quantize-static: calibration: expected a task"):
        apply_static(nn.Sequential(nn.Linear(2, 2)), StaticQuantizeConfig(), StageContext())
    with pytest.raises(FormatError, match=r"quantize-static transform: layer '0': expected a layer matching"):
        _rebuild_static(nn.Sequential(nn.Linear(2, 2)), {"layers": [{"name": "0", "kind": "linear",
                                                                     "in_features": 3, "out_features": 2}]})
    with pytest.raises(FormatError, match=r"layer '0': kind: expected one of \['conv2d', 'linear'\], got 'lstm'"):
        _rebuild_static(nn.Sequential(nn.Linear(2, 2)), {"layers": [{"name": "0", "kind": "lstm"}]})
