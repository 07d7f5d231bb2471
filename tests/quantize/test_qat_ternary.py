"""Binary and ternary weights: the levels per channel, TWN's threshold and scale, XNOR's scale, the STE, the
compact storage of the levels in a file, and the ``qat`` stage with these schemes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from modelpress.codec import encode_tensor
from modelpress.config import FinetuneConfig
from modelpress.quantize.fake import apply_fake_quant
from modelpress.quantize.qat import QATConfig
from modelpress.quantize.ternary import BinaryQuantizer, TernaryQuantizer
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage


@settings(max_examples=50, deadline=None)
@given(rows=st.integers(1, 8), cols=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_ternary_takes_only_minus_a_zero_a_per_channel_with_twn_threshold(rows: int, cols: int, seed: int) -> None:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    out = TernaryQuantizer()(w)
    for c in range(rows):
        mean_abs = w[c].abs().mean()
        kept = w[c].abs() > 0.7 * mean_abs
        magnitudes = out[c].abs()[kept].unique()  # one level a per channel (a = mean |w| above the threshold)
        assert magnitudes.numel() == 1 and float(magnitudes) == pytest.approx(float(w[c].abs()[kept].mean()))
        assert torch.equal(out[c] != 0, kept)
        assert torch.equal(torch.sign(out[c][kept]), torch.sign(w[c][kept]))


@settings(max_examples=50, deadline=None)
@given(rows=st.integers(1, 8), cols=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_binary_takes_only_minus_a_a_per_channel_with_a_mean_abs(rows: int, cols: int, seed: int) -> None:
    w = torch.randn(rows, 3, cols, generator=torch.Generator().manual_seed(seed))  # conv-like: channels on dim 0
    out = BinaryQuantizer()(w)
    for c in range(rows):
        magnitudes = out[c].abs().unique()
        assert magnitudes.numel() == 1 and float(magnitudes) == pytest.approx(float(w[c].abs().mean()))
        assert torch.equal(out[c] > 0, w[c] >= 0)


def test_the_ste_passes_the_gradient_to_the_full_precision_weights() -> None:
    for quantizer in (TernaryQuantizer(), BinaryQuantizer()):
        w = torch.randn(4, 6, requires_grad=True)
        upstream = torch.randn(4, 6)
        quantizer(w).backward(upstream)
        assert torch.equal(w.grad, upstream)


def test_levels_are_stored_in_about_one_or_two_bits_per_weight() -> None:
    torch.manual_seed(0)
    w = torch.randn(128, 256)
    ternary, _ = TernaryQuantizer().integers(w)
    binary, _ = BinaryQuantizer().integers(w)
    assert encode_tensor(ternary, "t").nbytes * 8 / w.numel() < 1.7  # log2(3) = 1.58 bits of information
    assert encode_tensor(binary, "b").nbytes * 8 / w.numel() < 1.05


def test_qat_stage_with_ternary_and_binary_weights_gives_per_channel_levels(digits_task) -> None:
    for scheme, levels in (("ternary", {-1, 0, 1}), ("binary", {-1, 1})):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
        config = QATConfig(scheme=scheme, finetune=FinetuneConfig(epochs=4, lr=5e-3))
        model = run_stage(model, config, StageContext(task=digits_task, quiet=True))
        for index in (1, 3):
            layer = model[index]
            assert set(layer.weight_int8.unique().tolist()) <= levels
            weight = layer.dequantized_weight()
            for c in range(weight.shape[0]):
                a = float(layer.weight_scale[c])
                assert set(weight[c].unique().tolist()) <= {-a, 0.0, a} if scheme == "ternary" else {-a, a}
        assert digits_task.evaluate(model)["accuracy"] > 0.5


def test_fake_quant_model_uses_the_levels_it_will_store() -> None:
    model = nn.Sequential(nn.Linear(16, 8))
    apply_fake_quant(model, ["0"], "ternary", bits=2)
    wrapper = model[0]
    q, alpha = wrapper.weight_quant.integers(wrapper.layer.weight)
    assert torch.equal(wrapper.quantized_weight(), q.float() * alpha[:, None])
