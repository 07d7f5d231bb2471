"""Peak activation memory of one forward pass, from torch's profiler allocation records.

The profiler attributes each CPU allocation (+bytes) and free (-bytes) to the op that made it; the running sum over
time is the memory held by activations, and its maximum is the peak. Weights are not included (they exist before
the pass): add the model's parameter bytes for a total.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(100, 1000), torch.nn.ReLU(), torch.nn.Linear(1000, 10))
    >>> peak_activation_bytes(model, (torch.randn(64, 100),))  # two [64, 1000] fp32 tensors live at once
    512000
"""

from __future__ import annotations

import os

# Kineto (torch's profiler backend) prints start/stop lines on stderr at its default log level; read at its first use.
os.environ.setdefault("KINETO_LOG_LEVEL", "99")

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile

__all__ = ["peak_activation_bytes"]


def peak_activation_bytes(model: nn.Module, inputs: tuple[Tensor, ...]) -> int:
    """Largest number of bytes allocated at once during ``model(*inputs)`` beyond what existed before."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model(*inputs)
    finally:
        model.train(was_training)
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage  # self: allocations of this op only, so nesting is not counted twice
        peak = max(peak, current)
    return int(peak)
