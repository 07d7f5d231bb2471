"""Integer runtime modules: exact integer products against an int64 reference, SQNR against fp32, state dicts that
hold integers, and the fallback paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import modelpress.kernels.int8_dynamic as int8_dynamic
from modelpress.errors import ConfigError
from modelpress.kernels import Int4WeightOnlyLinear, Int8DynamicLinear, Int8WeightOnlyLinear, QuantizedEmbedding
from modelpress.kernels.int4_weight import pack_uint4, unpack_uint4
from modelpress.kernels.int8_dynamic import MAX_EXACT_K, int8_matmul, quantize_per_token


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB."""
    reference, approx = reference.detach(), approx.detach()
    return float(10 * torch.log10(reference.pow(2).sum() / (reference - approx).pow(2).sum()))


def _linear(in_features: int, out_features: int, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(in_features, out_features)


@pytest.mark.parametrize(("m", "k", "n"), [(1, 384, 384), (17, 64, 48), (33, 100, 10), (5, 7, 3), (128, 300, 100)])
def test_int_mm_equals_int64_reference_exactly(m: int, k: int, n: int) -> None:
    g = torch.Generator().manual_seed(m * k * n)
    qx = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=g)
    qw = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=g)
    acc = int8_matmul(qx, qw)
    assert acc.dtype == torch.int32
    assert torch.equal(acc.long(), qx.long() @ qw.long().T)


@pytest.mark.parametrize("n", [1, 2, 16])
def test_reduction_of_length_one_is_exact(n: int) -> None:
    # Regression: torch 2.13's CPU _int_mm returns uninitialized values for k == 1 and n >= 2 (found by the
    # compiled-kernel property test); such products take the exact fallback.
    g = torch.Generator().manual_seed(n)
    qx = torch.randint(-127, 128, (3, 1), dtype=torch.int8, generator=g)
    qw = torch.randint(-127, 128, (n, 1), dtype=torch.int8, generator=g)
    assert torch.equal(int8_matmul(qx, qw).long(), qx.long() @ qw.long().T)
    layer = Int8DynamicLinear.from_linear(_linear(1, n))
    x = torch.randn(5, 1)
    torch.testing.assert_close(layer(x), layer.fused_forward(x))


def test_long_reduction_falls_back_to_an_exact_product() -> None:
    k = MAX_EXACT_K + 8  # 127 * 127 * k would overflow int32
    qx = torch.full((2, k), 127, dtype=torch.int8)
    qw = torch.full((3, k), -127, dtype=torch.int8)
    acc = int8_matmul(qx, qw)
    assert acc.dtype == torch.int64 and torch.equal(acc, qx.long() @ qw.long().T)
    assert int(acc[0, 0]) == -(127 * 127 * k) < -(2**31)


def test_dynamic_linear_is_the_integer_product_rescaled(monkeypatch: pytest.MonkeyPatch) -> None:
    linear = _linear(96, 40)
    q = Int8DynamicLinear.from_linear(linear)
    x = torch.randn(3, 11, 96)
    qx, sx = quantize_per_token(x.reshape(-1, 96))
    acc = qx.long() @ q.weight_int8.long().T  # the int64 reference accumulator [33, 40]
    expected = torch.addcmul(q.bias, acc.float() * sx, q.weight_scale).reshape(3, 11, 40)  # the same rescaling
    assert torch.equal(q(x), expected)
    # the fallback (float64) path gives the same bits
    monkeypatch.setattr(int8_dynamic, "int_mm_supported", lambda *args: False)
    assert torch.equal(q(x), expected)


def test_blocked_forward_is_exact_and_batch_independent() -> None:
    q = Int8DynamicLinear.from_linear(_linear(24, 8))
    x = torch.randn(int8_dynamic.CHUNK_ROWS * 2 + 37, 24)  # three blocks, the last one partial
    qx, sx = quantize_per_token(x)
    acc = qx.long() @ q.weight_int8.long().T
    y = q(x)
    assert torch.equal(y, torch.addcmul(q.bias, acc.float() * sx, q.weight_scale))
    assert torch.equal(y[700:701], q(x[700:701]))  # a row's result does not depend on its batch
    assert q(torch.zeros(0, 24)).shape == (0, 8)


def test_per_token_quantization_matches_the_primitives() -> None:
    from modelpress.quantize.primitives import qparams_from_min_max, quantize

    x = torch.randn(6, 50)
    q, s = quantize_per_token(x)
    amax = x.abs().amax(1)
    qp = qparams_from_min_max(-amax, amax, bits=8, symmetric=True, axis=0)
    assert torch.allclose(s.reshape(-1), qp.scale)
    assert (q.int() - quantize(x, qp).int()).abs().max() <= 1  # x * (1/s) vs x / s may round a tie apart
    assert torch.equal(quantize_per_token(torch.zeros(2, 4))[0], torch.zeros(2, 4, dtype=torch.int8))


@pytest.mark.parametrize(("module", "bound"), [(Int8DynamicLinear, 38.0), (Int8WeightOnlyLinear, 44.0)])
@pytest.mark.parametrize("rows", [1, 64])
def test_int8_modules_sqnr(module: type, bound: float, rows: int) -> None:
    linear = _linear(384, 384)
    x = torch.randn(rows, 384)
    assert sqnr_db(linear(x), module.from_linear(linear)(x)) > bound


@pytest.mark.parametrize("rows", [1, 64])
def test_int4_sqnr_and_mse_clipping(rows: int) -> None:
    linear = _linear(384, 384)
    x = torch.randn(rows, 384)
    y = linear(x)
    plain = sqnr_db(y, Int4WeightOnlyLinear.from_linear(linear, group_size=32)(x))
    clipped = sqnr_db(y, Int4WeightOnlyLinear.from_linear(linear, group_size=32, mse_clip=True)(x))
    assert plain > 22.0 and clipped > plain - 0.5


def test_int8_weight_only_kernel_is_exact_on_integer_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    q = Int8WeightOnlyLinear(32, 48, bias=False)
    q.weight_int8.copy_(torch.randint(-3, 4, (48, 32), dtype=torch.int8, generator=g))
    x = torch.randint(-1, 2, (5, 32), generator=g).float()  # |sums| <= 96: exact in bf16
    ref = x.long() @ q.weight_int8.long().T
    assert torch.equal(q.kernel_matmul(x).long(), ref)
    assert torch.equal(q(x).long(), ref)  # 5 rows: the kernel path
    big = torch.randint(-1, 2, (40, 32), generator=g).float()  # 40 rows: the dequantize path
    assert torch.equal(q(big).long(), big.long() @ q.weight_int8.long().T)


def test_int4_kernel_is_exact_on_integer_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    q = Int4WeightOnlyLinear(64, 32, group_size=32, bias=False)
    u = torch.randint(0, 16, (32, 64), dtype=torch.uint8, generator=g)
    zero = torch.randint(0, 16, (32, 2), dtype=torch.uint8, generator=g)
    q.load_state_dict({"weight_uint4x2": pack_uint4(u), "weight_scale": torch.ones(32, 2, dtype=torch.bfloat16),
                       "weight_zero": zero})  # loading rebuilds the kernel layout
    x = torch.zeros(3, 64)
    x[:, :32] = torch.randint(-1, 2, (3, 32), generator=g).float()  # one group: |sums| <= 15 * 32, exact in bf16
    w = u.long() - zero.long().repeat_interleave(32, 1)  # [32, 64] integer weights
    ref = x.long() @ w.T
    assert torch.equal(q.kernel_matmul(x).long(), ref)
    assert torch.equal(F.linear(x, q.dequantized_weight()).long(), ref)


@settings(max_examples=50, deadline=None)
@given(rows=st.integers(1, 4), half=st.integers(1, 8), seed=st.integers(0, 1000))
def test_uint4_packing_round_trips(rows: int, half: int, seed: int) -> None:
    u = torch.randint(0, 16, (rows, 2 * half), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    packed = pack_uint4(u)
    assert packed.shape == (rows, half) and torch.equal(unpack_uint4(packed), u)


@pytest.mark.parametrize("make", [lambda lin: Int8DynamicLinear.from_linear(lin),
                                  lambda lin: Int8WeightOnlyLinear.from_linear(lin),
                                  lambda lin: Int4WeightOnlyLinear.from_linear(lin, group_size=32)])
def test_state_dict_holds_integers_and_reloads_exactly(make) -> None:
    linear = _linear(128, 64)
    q = make(linear)
    state = q.state_dict()
    integer = [k for k, v in state.items() if not v.is_floating_point()]
    assert integer and all(state[k].dtype in (torch.int8, torch.uint8) for k in integer)
    assert "weight" not in state  # no float copy of the weight
    fresh = make(_linear(128, 64, seed=1))
    fresh.load_state_dict(state)
    for rows in (2, 50):
        x = torch.randn(rows, 128)
        assert torch.equal(fresh(x), q(x))


def test_int4_layers_the_kernel_cannot_run_still_compute() -> None:
    linear = _linear(64, 10)  # 10 outputs: not a multiple of 16
    q = Int4WeightOnlyLinear.from_linear(linear, group_size=16)
    x = torch.randn(2, 64)
    assert torch.equal(q(x), F.linear(x, q.dequantized_weight(), q.bias))
    with pytest.raises(ConfigError, match="kernel_matmul: expected out_features a multiple of 16"):
        q.kernel_matmul(x)
    with pytest.raises(ConfigError, match=r"^group_size: expected an even divisor of in_features 64, got 24"):
        Int4WeightOnlyLinear(64, 16, group_size=24)


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_embedding_lookup(bits: int) -> None:
    torch.manual_seed(0)
    table = torch.nn.Embedding(50, 64)
    q = QuantizedEmbedding.from_embedding(table, bits=bits, group_size=32)
    ids = torch.tensor([[0, 49, 7], [7, 7, 1]])
    assert torch.equal(q(ids), q.dequantized_weight()[ids])
    assert sqnr_db(table.weight, q.dequantized_weight()) > (38.0 if bits == 8 else 18.0)
    with pytest.raises(ConfigError, match=r"^QuantizedEmbedding.bits: expected 4 or 8, got 3"):
        QuantizedEmbedding(5, 8, bits=3)
