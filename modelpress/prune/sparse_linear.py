"""Sparse inference where it pays: a Linear that multiplies with torch's sparse CSR or BSR kernel, swapped in per
layer only where that kernel was *measured* faster than the dense one on the layer's real input.

On CPU, torch's sparse kernels (MKL) beat a dense GEMM only at high sparsity, and where depends on the shape, the
batch and the thread count (see docs/benchmarks/pruning.md and ``benchmarks/prune_sparse_kernels.py``), so
:func:`sparsify_for_inference` decides by timing each layer rather than by a fixed threshold. BSR needs square
blocks on CPU and pays only for weights pruned in blocks (``pattern: 16x16``, say).

:class:`SparseLinear` keeps the state-dict layout of ``nn.Linear`` (a dense ``weight`` and ``bias``), so a model
using it packs to the same file; it is an inference-time form (no gradients through the sparse weight).

Example:
    >>> import torch
    >>> linear = torch.nn.Linear(64, 32)
    >>> with torch.no_grad():
    ...     _ = linear.weight.masked_fill_(torch.rand(32, 64) < 0.9, 0.0)
    >>> sparse = SparseLinear.from_linear(linear, SparseKernel.csr)
    >>> x = torch.randn(5, 64)
    >>> torch.allclose(sparse(x), linear(x), atol=1e-5)
    True
    >>> sorted(sparse.state_dict())
    ['bias', 'weight']
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor, nn

from modelpress.evaluate.latency import measure_latency

__all__ = ["KernelChoice", "SparseKernel", "SparseLinear", "candidate_kernels", "sparsify_for_inference",
           "time_kernels"]

BSR_BLOCKS = (4, 8, 16, 32)  # square block sizes tried for BSR (MKL on CPU supports square blocks only)


class SparseKernel(StrEnum):
    """How a Linear's matrix product is computed."""

    dense = "dense"
    csr = "csr"  # compressed sparse rows: any pattern
    bsr = "bsr"  # block sparse rows: weights pruned in square blocks


def _to_sparse(weight: Tensor, kernel: SparseKernel, block: int | None) -> Tensor:
    with warnings.catch_warnings():  # torch warns that sparse CSR/BSR support is in beta
        warnings.simplefilter("ignore")
        if kernel is SparseKernel.csr:
            return weight.detach().to_sparse_csr()
        return weight.detach().to_sparse_bsr((block, block))


class SparseLinear(nn.Module):
    """``y = x W^T + b`` with ``W`` ``[out, in]`` stored as a sparse CSR/BSR tensor (inference only).

    Example:
        >>> lin = torch.nn.Linear(8, 8)
        >>> SparseLinear.from_linear(lin, SparseKernel.bsr, block=4).extra_repr()
        'in_features=8, out_features=8, kernel=bsr, block=4'
    """

    def __init__(self, weight: Tensor, bias: Tensor | None, kernel: SparseKernel, block: int | None = None) -> None:
        super().__init__()
        if kernel is SparseKernel.dense:
            raise ValueError("SparseLinear needs a sparse kernel; keep the nn.Linear for dense")
        self.out_features, self.in_features = weight.shape
        self.kernel = kernel
        self.block = block
        self.sparse_weight = _to_sparse(weight, kernel, block)  # [out, in], sparse layout
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, kernel: SparseKernel, block: int | None = None) -> SparseLinear:
        """A SparseLinear computing what ``linear`` computes."""
        return cls(linear.weight, linear.bias, kernel, block)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in]`` → ``[..., out]``: one sparse-dense product ``W @ x^T`` over all leading dimensions."""
        rows = x.reshape(-1, self.in_features)  # [N, in]
        with torch.inference_mode(torch.is_inference_mode_enabled()):
            out = (self.sparse_weight @ rows.T).T  # [out, in] @ [in, N] -> [out, N] -> [N, out]
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def dense_weight(self) -> Tensor:
        """The weight as a dense ``[out, in]`` tensor."""
        return self.sparse_weight.to_dense()

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        # the same keys as nn.Linear, so a model with sparse layers packs and loads like the original
        destination[prefix + "weight"] = self.dense_weight()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any],
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        key = prefix + "weight"
        if key not in state_dict:
            missing_keys.append(key)
        else:
            self.sparse_weight = _to_sparse(state_dict[key], self.kernel, self.block)
        if self.bias is not None:
            if prefix + "bias" in state_dict:
                with torch.no_grad():
                    self.bias.copy_(state_dict[prefix + "bias"])
            else:
                missing_keys.append(prefix + "bias")

    def extra_repr(self) -> str:
        block = f", block={self.block}" if self.block else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}{block}"


def candidate_kernels(weight: Tensor, max_block_density: float = 0.5) -> list[tuple[SparseKernel, int | None]]:
    """Sparse kernels worth timing for ``weight`` ``[out, in]``: CSR always; BSR for each square block size that
    divides the matrix and leaves at most ``max_block_density`` of the blocks nonzero.

    Example:
        >>> w = torch.zeros(8, 8); w[:4, :4] = 1.0
        >>> candidate_kernels(w)
        [(<SparseKernel.csr: 'csr'>, None), (<SparseKernel.bsr: 'bsr'>, 4)]
    """
    out: list[tuple[SparseKernel, int | None]] = [(SparseKernel.csr, None)]
    rows, cols = weight.shape
    for block in BSR_BLOCKS:
        if rows % block or cols % block:
            continue
        nonzero_blocks = (weight.detach() != 0).reshape(rows // block, block, cols // block, block).any(3).any(1)
        if float(nonzero_blocks.float().mean()) <= max_block_density:
            out.append((SparseKernel.bsr, block))
    return out


@dataclass(frozen=True)
class KernelChoice:
    """The kernel chosen for one layer, with the timings it was chosen on (median ms per call)."""

    layer: str
    sparsity: float
    input_shape: tuple[int, ...]
    timings: dict[str, float]
    chosen: str


def time_kernels(linear: nn.Linear, x: Tensor, threads: int | None = None, runs: int = 30,
                 warmup: int = 5) -> dict[str, float]:
    """Median milliseconds of ``linear`` on ``x`` with the dense kernel and every sparse candidate.

    Keys: ``dense``, ``csr``, ``bsr16`` (block size appended).

    Example:
        >>> sorted(time_kernels(torch.nn.Linear(8, 8), torch.randn(2, 8), runs=2, warmup=1))
        ['csr', 'dense']
    """
    timings = {"dense": measure_latency(linear, (x,), threads=threads, warmup=warmup, runs=runs).median_ms}
    for kernel, block in candidate_kernels(linear.weight):
        sparse = SparseLinear.from_linear(linear, kernel, block)
        name = f"{kernel}{block or ''}"
        timings[name] = measure_latency(sparse, (x,), threads=threads, warmup=warmup, runs=runs).median_ms
    return timings


def _layer_inputs(model: nn.Module, inputs: tuple[Tensor, ...], names: list[str]) -> dict[str, Tensor]:
    """The input each named Linear receives when ``model`` runs on ``inputs`` (first call)."""
    captured: dict[str, Tensor] = {}
    modules = dict(model.named_modules())
    handles = []
    for name in names:
        def hook(_module: nn.Module, args: tuple[Tensor, ...], name: str = name) -> None:
            captured.setdefault(name, args[0].detach().clone())
        handles.append(modules[name].register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def sparsify_for_inference(model: nn.Module, inputs: tuple[Tensor, ...], min_sparsity: float = 0.5,
                           speedup: float = 1.1, threads: int | None = None, runs: int = 30) -> list[KernelChoice]:
    """Swap each ``nn.Linear`` of ``model`` (in place) for a :class:`SparseLinear` where a sparse kernel ran at
    least ``speedup`` times faster than the dense one on that layer's input from ``inputs``.

    Layers below ``min_sparsity`` are not timed (sparse kernels never pay there). Returns one row per timed layer.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(16, 16))
        >>> [c.chosen for c in sparsify_for_inference(model, (torch.randn(4, 16),), runs=3)]
        []
    """
    linears = {name: m for name, m in model.named_modules() if type(m) is nn.Linear}
    sparse_enough = [name for name, m in linears.items() if float((m.weight == 0).float().mean()) >= min_sparsity]
    layer_inputs = _layer_inputs(model, inputs, sparse_enough)
    choices: list[KernelChoice] = []
    for name in sparse_enough:
        if name not in layer_inputs:
            continue  # the layer did not run on these inputs: nothing to measure
        linear = linears[name]
        timings = time_kernels(linear, layer_inputs[name], threads=threads, runs=runs)
        best = min((k for k in timings if k != "dense"), key=timings.__getitem__)
        chosen = best if timings[best] * speedup <= timings["dense"] else "dense"
        choices.append(KernelChoice(name, float((linear.weight == 0).float().mean()),
                                    tuple(layer_inputs[name].shape), timings, chosen))
        if chosen != "dense":
            kernel = SparseKernel.bsr if chosen.startswith("bsr") else SparseKernel.csr
            block = int(chosen[3:]) if kernel is SparseKernel.bsr else None
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, SparseLinear.from_linear(linear, kernel, block))
    return choices
