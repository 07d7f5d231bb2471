"""Profile a model: totals and per-layer rows of parameters, nonzeros, FLOPs and bytes; latency; peak memory;
and the bytes of the real compressed file the model packs into.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one example (batch 1), so they equal torch's own
counter (a multiply-add counts 2).

Example:
    >>> import torch
    >>> from modelpress.zoo.models import LeNet5
    >>> p = profile_model(LeNet5(), (torch.zeros(1, 1, 28, 28),), latency=False, file_bytes=False)
    >>> p.params, p.flops
    (431080, 4586000)
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

import modelpress.analyze.flops  # noqa: F401  (registers the integer kernels with torch's FLOP counter)
from modelpress.evaluate.latency import Latency, measure_latency
from modelpress.evaluate.memory import peak_activation_bytes
from modelpress.history import LayerRow

__all__ = ["Profile", "count_flops", "layer_rows", "own_weight_counts", "profile_model"]


@dataclass
class Profile:
    """What :func:`profile_model` measured. ``file_bytes`` is None when packing was not asked for."""

    params: int
    nonzeros: int
    flops: int
    memory_bytes: int  # parameters + buffers as held in memory
    peak_activation_bytes: int | None
    file_bytes: int | None
    latency: Latency | None
    layers: list[LayerRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; ``bytes`` is the stored size (the file's when packed, else in-memory)."""
        data = asdict(self)
        data["bytes"] = self.file_bytes if self.file_bytes is not None else self.memory_bytes
        data["latency_ms"] = self.latency.median_ms if self.latency else None
        return data


def _per_module_flops(model: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[int, dict[str, int]]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(*[t[:1] for t in inputs])
    finally:
        model.train(was_training)
    root = type(model).__name__
    per_module: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        # keys look like "LeNet5.conv1"; the root's own class name is the prefix
        if key.startswith(root + "."):
            per_module[key[len(root) + 1:]] = int(sum(ops.values()))
    return int(counter.get_total_flops()), per_module


def count_flops(model: nn.Module, inputs: tuple[Tensor, ...]) -> int:
    """FLOPs of one example (the first of the batch) as torch's FlopCounterMode counts them.

    Example:
        >>> count_flops(torch.nn.Linear(10, 5), (torch.zeros(3, 10),))
        100
    """
    return _per_module_flops(model, inputs)[0]


def _leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules holding their own parameters or buffers (weights live here), in definition order."""
    leaves = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if own and name:
            leaves.append((name, module))
    return leaves


def own_weight_counts(module: nn.Module) -> tuple[int, int]:
    """(parameters, nonzeros) that ``module`` holds itself, not counting its children.

    A runtime module that stores its weight in another form than a float Parameter (the integer layers of
    :mod:`modelpress.kernels`) exposes ``dequantized_weight()``: its weight counts as the values that represent (a
    quantized zero is a zero), and its ``bias`` buffer as parameters, so a quantized model keeps the parameter count
    of the original instead of showing 0.

    Example:
        >>> own_weight_counts(torch.nn.Linear(3, 2))
        (8, 8)
    """
    params = list(module.parameters(recurse=False))
    count = sum(p.numel() for p in params)
    nonzeros = sum(int(torch.count_nonzero(p)) for p in params)
    dequantized = getattr(module, "dequantized_weight", None)
    if callable(dequantized):
        with torch.no_grad():
            weight = dequantized()
        count += weight.numel()
        nonzeros += int(torch.count_nonzero(weight))
        bias = getattr(module, "bias", None)
        if isinstance(bias, Tensor) and not isinstance(bias, nn.Parameter):
            count += bias.numel()
            nonzeros += int(torch.count_nonzero(bias))
    return count, nonzeros


def _total_counts(model: nn.Module) -> tuple[int, int]:
    """(parameters, nonzeros) of the whole model: each Parameter once (tied weights are shared), plus the weights of
    runtime modules that hold them as integer buffers (see :func:`own_weight_counts`)."""
    params = list(model.parameters())
    count = sum(p.numel() for p in params)
    nonzeros = sum(int(torch.count_nonzero(p)) for p in params)
    for module in model.modules():
        if callable(getattr(module, "dequantized_weight", None)):
            total, nz = own_weight_counts(module)
            own = list(module.parameters(recurse=False))
            count += total - sum(p.numel() for p in own)
            nonzeros += nz - sum(int(torch.count_nonzero(p)) for p in own)
    return count, nonzeros


def layer_rows(model: nn.Module, inputs: tuple[Tensor, ...] | None = None) -> list[LayerRow]:
    """One row per module that owns parameters: params, nonzeros, FLOPs (0 without inputs), bytes in memory.

    Example:
        >>> [r.name for r in layer_rows(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))]
        ['0']
    """
    flops = _per_module_flops(model, inputs)[1] if inputs is not None else {}
    rows = []
    for name, module in _leaf_modules(model):
        tensors = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        count, nonzeros = own_weight_counts(module)
        rows.append(LayerRow(
            name=name, kind=type(module).__name__, params=count, nonzeros=nonzeros,
            flops=flops.get(name, 0),
            bytes=sum(t.numel() * t.element_size() for t in tensors),
        ))
    return rows


def _file_bytes(model: nn.Module) -> int:
    from modelpress.pack import pack

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.mpz"
        pack(model, path)
        return path.stat().st_size


def profile_model(model: nn.Module, inputs: tuple[Tensor, ...], latency: bool = True, threads: int | None = None,
                  runs: int = 30, warmup: int = 5, memory: bool = True, file_bytes: bool = True) -> Profile:
    """Measure ``model`` on ``inputs`` (latency and memory at the inputs' batch size; FLOPs for one example)."""
    flops, _ = _per_module_flops(model, inputs)
    rows = layer_rows(model, inputs)
    tensors = list(model.parameters()) + list(model.buffers())
    count, nonzeros = _total_counts(model)
    return Profile(
        params=count,
        nonzeros=nonzeros,
        flops=flops,
        memory_bytes=sum(t.numel() * t.element_size() for t in tensors),
        peak_activation_bytes=peak_activation_bytes(model, inputs) if memory else None,
        file_bytes=_file_bytes(model) if file_bytes else None,
        latency=measure_latency(model, inputs, threads=threads, runs=runs, warmup=warmup) if latency else None,
        layers=rows,
    )
