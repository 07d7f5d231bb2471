"""Analysis: parameters, nonzeros and FLOPs match torch's own counts; latency and memory are measured."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from modelpress.analyze import count_flops, layer_rows, profile_model
from modelpress.evaluate import measure_latency, peak_activation_bytes
from modelpress.zoo.models import LeNet5, ResNetSmall


def test_flops_equal_torch_counter() -> None:
    model = ResNetSmall().eval()
    x = torch.zeros(1, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert count_flops(model, (x,)) == counter.get_total_flops()


def test_per_layer_rows_sum_to_totals() -> None:
    model = LeNet5()
    with torch.no_grad():
        model.fc1.weight[:100] = 0  # 100 rows of 800 weights zeroed
    prof = profile_model(model, (torch.zeros(4, 1, 28, 28),), latency=False, file_bytes=False)
    rows = {r.name: r for r in prof.layers}
    assert prof.params == 431080 == sum(r.params for r in prof.layers)
    assert prof.flops == sum(r.flops for r in prof.layers) == 4586000
    assert rows["fc1"].nonzeros == 400500 - 80000
    assert abs(rows["fc1"].sparsity - 80000 / 400500) < 1e-12
    assert prof.nonzeros == 431080 - 80000
    assert prof.memory_bytes == 431080 * 4


def test_layer_rows_cover_batchnorm_buffers() -> None:
    rows = {r.name: r for r in layer_rows(ResNetSmall())}
    assert rows["stem.1"].kind == "BatchNorm2d"
    assert rows["stem.1"].bytes == (32 * 4) * 4 + 8  # weight, bias, running mean, running var; int64 counter


def test_latency_is_a_median_with_setup() -> None:
    lat = measure_latency(torch.nn.Linear(64, 64), (torch.randn(8, 64),), threads=1, runs=11, warmup=2)
    assert lat.runs == 11 and lat.batch == 8 and lat.threads == 1
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert torch.get_num_threads() == 2  # restored


def test_peak_activation_memory() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(100, 1000), torch.nn.ReLU(), torch.nn.Linear(1000, 10))
    # input [64,100] exists already; the two [64,1000] fp32 activations are alive together at the ReLU
    assert peak_activation_bytes(model, (torch.randn(64, 100),)) == 2 * 64 * 1000 * 4


def test_integer_layers_keep_the_parameter_count_and_flops() -> None:
    """A quantized model (weights as int8 buffers, matmul by torch._int_mm) reports the original's parameters and
    FLOPs, not 0: a quantized zero counts as a zero."""
    from modelpress.kernels import Int8DynamicLinear

    model = LeNet5().eval()
    x = torch.randn(4, 1, 28, 28)
    dense = profile_model(model, (x,), latency=False, file_bytes=False, memory=False)
    with torch.no_grad():
        model.fc1.weight[:100] = 0
    model.fc1 = Int8DynamicLinear.from_linear(model.fc1)
    quantized = profile_model(model, (x,), latency=False, file_bytes=False, memory=False)
    rows = {r.name: r for r in quantized.layers}
    assert quantized.params == dense.params == 431080 == sum(r.params for r in quantized.layers)
    assert quantized.flops == dense.flops == 4586000
    assert rows["fc1"].kind == "Int8DynamicLinear" and rows["fc1"].params == 400500
    assert rows["fc1"].nonzeros <= 400500 - 80000
