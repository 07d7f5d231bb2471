"""Quantization primitives: error bounds (property tests), stochastic rounding, granularities, error messages."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpress.errors import ConfigError
from modelpress.quantize.primitives import (
    QParams,
    check_bits,
    dequantize,
    qparams_from_min_max,
    qrange,
    quantize,
    reduce_min_max,
)

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=64), bits=st.integers(2, 8), symmetric=st.booleans())
def test_round_to_nearest_error_is_at_most_half_a_step(values: list[float], bits: int, symmetric: bool) -> None:
    x = torch.tensor(values)
    lo, hi = reduce_min_max(x)
    qp = qparams_from_min_max(lo, hi, bits, symmetric)
    q = quantize(x, qp)
    qmin, qmax = qrange(bits, symmetric)
    assert q.dtype == (torch.int8 if symmetric else torch.uint8)
    assert int(q.min()) >= qmin and int(q.max()) <= qmax
    error = (dequantize(q, qp) - x).abs().max()
    assert float(error) <= float(qp.scale) * (0.5 + 1e-4) + 1e-30


@settings(max_examples=100, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=32), bits=st.integers(1, 8))
def test_one_to_eight_bit_asymmetric_levels_cover_the_range(values: list[float], bits: int) -> None:
    x = torch.tensor(values)
    qp = qparams_from_min_max(*reduce_min_max(x), bits=bits, symmetric=False)
    error = (dequantize(quantize(x, qp), qp) - x).abs().max()
    assert float(error) <= float(qp.scale) * (0.5 + 1e-4) + 1e-30
    assert dequantize(quantize(torch.zeros(1), qp), qp).item() == 0.0  # zero is exactly representable


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 6), groups=st.integers(1, 4), group_size=st.sampled_from([2, 4, 8]),
       bits=st.integers(2, 8), symmetric=st.booleans(), seed=st.integers(0, 2**16))
def test_per_group_and_per_channel_error_bounds(rows: int, groups: int, group_size: int, bits: int, symmetric: bool,
                                               seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, groups * group_size, generator=g) * torch.rand(rows, 1, generator=g) * 10
    qp = qparams_from_min_max(*reduce_min_max(w, group_size=group_size), bits, symmetric, group_size=group_size)
    assert qp.scale.shape == (rows, groups)
    step = qp.scale.repeat_interleave(group_size, 1)  # [rows, K]
    assert bool(((dequantize(quantize(w, qp), qp) - w).abs() <= step * (0.5 + 1e-4)).all())
    qc = qparams_from_min_max(*reduce_min_max(w, axis=0), bits, symmetric, axis=0)
    assert qc.scale.shape == (rows,)
    assert bool(((dequantize(quantize(w, qc), qc) - w).abs() <= qc.scale[:, None] * (0.5 + 1e-4)).all())


def test_out_of_range_values_saturate() -> None:
    qp = qparams_from_min_max(torch.tensor(-1.0), torch.tensor(1.0), 8, True)
    assert quantize(torch.tensor([5.0, -5.0]), qp).tolist() == [127, -127]


@settings(max_examples=50, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=32), bits=st.integers(2, 8), seed=st.integers(0, 1000))
def test_stochastic_rounding_error_is_below_one_step(values: list[float], bits: int, seed: int) -> None:
    x = torch.tensor(values)
    qp = qparams_from_min_max(*reduce_min_max(x), bits=bits, symmetric=True)
    q = quantize(x, qp, "stochastic", generator=torch.Generator().manual_seed(seed))
    assert float((dequantize(q, qp) - x).abs().max()) <= float(qp.scale) * (1 + 1e-4)


def test_stochastic_rounding_is_unbiased_and_reproducible() -> None:
    qp = QParams(torch.tensor(1.0), torch.tensor(0, dtype=torch.int32), 8, True)
    x = torch.full((20000,), 0.3)
    q = quantize(x, qp, "stochastic", generator=torch.Generator().manual_seed(0))
    assert set(q.unique().tolist()) == {0, 1}
    assert abs(float(q.float().mean()) - 0.3) < 0.02  # E[q] = 0.3; round-to-nearest would give 0
    again = quantize(x, qp, "stochastic", generator=torch.Generator().manual_seed(0))
    assert torch.equal(q, again)


def test_all_zero_channel_gets_a_usable_scale() -> None:
    w = torch.zeros(2, 4)
    w[1] = 1.0
    qp = qparams_from_min_max(*reduce_min_max(w, axis=0), 8, True, axis=0)
    assert torch.equal(dequantize(quantize(w, qp), qp), w)


@pytest.mark.parametrize("bits", [0, 9, -1, 2.5, True])
def test_bad_bits_message(bits: object) -> None:
    with pytest.raises(ConfigError, match=r"^bits: expected an integer in \[1, 8\], got .*Fix: use 8 bits or fewer"):
        check_bits(bits)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^bits: expected an integer in \[1, 8\]"):
        qparams_from_min_max(torch.tensor(-1.0), torch.tensor(1.0), bits, True)  # type: ignore[arg-type]


def test_symmetric_one_bit_message() -> None:
    with pytest.raises(ConfigError, match=r"^bits: expected at least 2 for a symmetric quantizer .* got 1. Fix: use "
                                          r"bits >= 2, or an asymmetric quantizer for 1 bit$"):
        qrange(1, symmetric=True)


def test_group_size_that_does_not_divide_message() -> None:
    message = (r"^group_size: expected a divisor of the last \(input\) dimension 10, got 3. Fix: pick a group size "
               r"that divides the input features, or quantize per channel$")
    with pytest.raises(ConfigError, match=message):
        reduce_min_max(torch.zeros(4, 10), group_size=3)
    qp = QParams(torch.ones(4, 5), torch.zeros(4, 5, dtype=torch.int32), 8, True, group_size=3)
    with pytest.raises(ConfigError, match=message):
        quantize(torch.zeros(4, 10), qp)
    with pytest.raises(ConfigError, match=r"^group_size: expected a positive integer, got 0"):
        reduce_min_max(torch.zeros(4, 10), group_size=0)


def test_bad_axis_message() -> None:
    with pytest.raises(ConfigError, match=r"^axis: expected a dimension of a 2-d tensor, got 2"):
        reduce_min_max(torch.zeros(4, 10), axis=2)
