"""The sparse Linear computes what the dense one does, keeps nn.Linear's state-dict layout, and is swapped in only
where it was measured faster."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelpress.prune.sparse_linear import (
    SparseKernel,
    SparseLinear,
    candidate_kernels,
    sparsify_for_inference,
)


def _sparse_linear(out: int, inp: int, sparsity: float, block: int | None = None) -> nn.Linear:
    torch.manual_seed(0)
    linear = nn.Linear(inp, out)
    with torch.no_grad():
        if block is None:
            keep = torch.rand(out, inp) >= sparsity
        else:
            keep = (torch.rand(out // block, inp // block) >= sparsity).repeat_interleave(block, 0)
            keep = keep.repeat_interleave(block, 1)
        linear.weight.mul_(keep)
    return linear


@pytest.mark.parametrize("kernel,block", [(SparseKernel.csr, None), (SparseKernel.bsr, 8)])
def test_sparse_matches_dense_on_any_leading_shape(kernel: SparseKernel, block: int | None) -> None:
    linear = _sparse_linear(32, 64, 0.9, block=8)
    sparse = SparseLinear.from_linear(linear, kernel, block)
    for shape in [(64,), (3, 64), (2, 5, 64)]:
        x = torch.randn(shape)
        assert torch.allclose(sparse(x), linear(x), atol=1e-5)


def test_state_dict_round_trips_through_the_dense_layout() -> None:
    linear = _sparse_linear(16, 32, 0.8)
    sparse = SparseLinear.from_linear(linear, SparseKernel.csr)
    state = sparse.state_dict()
    assert torch.equal(state["weight"], linear.weight.detach()) and torch.equal(state["bias"], linear.bias.detach())
    other = SparseLinear.from_linear(_sparse_linear(16, 32, 0.1), SparseKernel.csr)
    other.load_state_dict(state)
    x = torch.randn(4, 32)
    assert torch.allclose(other(x), linear(x), atol=1e-5)


def test_bsr_is_a_candidate_only_for_block_pruned_weights() -> None:
    blocky = _sparse_linear(64, 64, 0.9, block=16)
    kinds = candidate_kernels(blocky.weight)
    assert (SparseKernel.bsr, 16) in kinds and kinds[0] == (SparseKernel.csr, None)
    scattered = _sparse_linear(64, 64, 0.9)
    assert candidate_kernels(scattered.weight) == [(SparseKernel.csr, None)]


def test_sparsify_swaps_only_where_measured_faster() -> None:
    model = nn.Sequential(_sparse_linear(256, 1024, 0.99), nn.ReLU(), _sparse_linear(8, 256, 0.0))
    x = torch.randn(16, 1024)
    expected = model(x)
    choices = sparsify_for_inference(model, (x,), runs=15)
    assert [c.layer for c in choices] == ["0"]  # the dense layer is not even timed
    choice = choices[0]
    assert set(choice.timings) >= {"dense", "csr"} and choice.input_shape == (16, 1024)
    best = min(v for k, v in choice.timings.items() if k != "dense")
    assert (choice.chosen != "dense") == (best * 1.1 <= choice.timings["dense"])
    assert isinstance(model[0], SparseLinear) == (choice.chosen != "dense")
    assert torch.allclose(model(x), expected, atol=1e-4)
