"""The factorizations: at full rank they reproduce the layer's output (SVD for Linear and 1x1 convs, Tucker-2 and CP
for k x k convs) with shapes, stride, padding, dilation and bias kept; truncation follows Eckart-Young."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.lowrank.cp import factorize_cp, max_cp_rank
from modelpress.lowrank.svd import energy_rank, factorize_svd, singular_values
from modelpress.lowrank.tucker import factorize_tucker2


@pytest.mark.parametrize("bias", [True, False])
def test_svd_at_full_rank_reproduces_a_linear(bias: bool) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(37, 23, bias=bias)
    pair = factorize_svd(linear, rank=23)
    x = torch.randn(5, 37)
    assert torch.allclose(pair(x), linear(x), atol=1e-5, rtol=1e-5)
    assert (pair[1].bias is not None) == bias and pair[0].bias is None
    if bias:
        assert torch.equal(pair[1].bias, linear.bias)


def test_svd_of_a_1x1_conv_keeps_stride_padding_dilation_and_bias() -> None:
    torch.manual_seed(5)
    conv = nn.Conv2d(12, 7, 1, stride=2, padding=1, dilation=1)
    pair = factorize_svd(conv, rank=7)
    x = torch.randn(2, 12, 9, 8)
    assert pair(x).shape == conv(x).shape == (2, 7, 6, 5)
    assert torch.allclose(pair(x), conv(x), atol=1e-5, rtol=1e-5)
    assert pair[0].stride == (2, 2) and pair[0].padding == (1, 1) and pair[0].bias is None
    assert torch.equal(pair[1].bias, conv.bias)


def test_svd_truncation_error_is_the_tail_of_the_singular_values() -> None:
    torch.manual_seed(1)
    linear = nn.Linear(30, 20, bias=False)
    pair = factorize_svd(linear, rank=7)
    product = (pair[1].weight.double() @ pair[0].weight.double())  # [20, 30]
    values = singular_values(linear.weight)
    error = torch.linalg.matrix_norm(product - linear.weight.double())
    assert torch.isclose(error, values[7:].square().sum().sqrt(), rtol=1e-5)
    assert energy_rank(values, 1.0) == 20 and energy_rank(values, 1e-9) == 1


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), ((2, 1), (1, 2), (1, 2))])
def test_tucker2_at_full_ranks_reproduces_a_conv(stride: int | tuple[int, int], padding: int | tuple[int, int],
                                                 dilation: int | tuple[int, int]) -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(6, 9, (3, 5), stride=stride, padding=padding, dilation=dilation)
    layers = factorize_tucker2(conv, (9, 6))
    x = torch.randn(2, 6, 13, 14)
    assert layers(x).shape == conv(x).shape
    assert torch.allclose(layers(x), conv(x), atol=1e-5, rtol=1e-4)
    assert layers[1].stride == conv.stride and layers[1].padding == conv.padding
    assert layers[1].dilation == conv.dilation and torch.equal(layers[2].bias, conv.bias)


def test_tucker2_shapes_at_low_ranks() -> None:
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    layers = factorize_tucker2(conv, (8, 4))
    assert [tuple(m.weight.shape) for m in layers] == [(4, 16, 1, 1), (8, 4, 3, 3), (32, 8, 1, 1)]
    assert all(m.bias is None for m in layers)
    assert layers(torch.randn(1, 16, 7, 7)).shape == (1, 32, 7, 7)


@pytest.mark.parametrize("spatial", ["separable", "full"])
def test_cp_at_its_rank_bound_reproduces_a_conv(spatial: str) -> None:
    torch.manual_seed(3)
    conv = nn.Conv2d(4, 5, 3, stride=2, padding=1)
    layers = factorize_cp(conv, max_cp_rank(conv, spatial), spatial, iterations=500)
    x = torch.randn(2, 4, 9, 9)
    assert layers(x).shape == conv(x).shape
    assert torch.allclose(layers(x), conv(x), atol=1e-3, rtol=1e-3)
    depthwise = layers[1:-1]
    assert all(m.groups == m.in_channels for m in depthwise)
    assert torch.equal(layers[-1].bias, conv.bias)


def test_cp_low_rank_error_shrinks_with_the_rank() -> None:
    torch.manual_seed(4)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 7, 7)
    errors = [float((factorize_cp(conv, r)(x) - conv(x)).norm() / conv(x).norm()) for r in (2, 16, 64)]
    assert errors[0] > errors[1] > errors[2]
