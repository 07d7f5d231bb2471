"""The optional measured-latency check of the ``low-rank`` stage (``keep_if_faster``): a factorized layer is kept only
if it runs faster than the original on the input that layer really sees.

The inputs of the selected layers are captured with forward pre-hooks during one pass of the task's held-out batch;
the original and factorized layers are then timed alternately (``rounds`` rounds of :func:`measure_latency`, the
median of the medians), so a load change on a shared machine hits both. Timings vary from run to run: the decision
is a measurement, not a property of the config.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> inputs = layer_inputs(model, ["0", "2"], (torch.randn(4, 8),))
    >>> {name: tuple(x.shape) for name, x in inputs.items()}
    {'0': (4, 8), '2': (4, 8)}
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modelpress.eval_mode import evaluating
from modelpress.evaluate.latency import measure_latency

__all__ = ["compare_latency", "layer_inputs"]


@torch.no_grad()
def layer_inputs(model: nn.Module, names: Sequence[str], inputs: tuple[Tensor, ...]) -> dict[str, Tensor]:
    """The first input each named layer receives in one eval-mode pass of ``model(*inputs)``."""
    captured: dict[str, Tensor] = {}
    handles = [model.get_submodule(name).register_forward_pre_hook(
        lambda _m, args, name=name: captured.setdefault(name, args[0].detach())) for name in names]
    with evaluating(model, handles):
        model(*inputs)
    return captured


def compare_latency(original: nn.Module, factorized: nn.Module, x: Tensor, threads: int = 2,
                    rounds: int = 3, channels_last: bool = False) -> tuple[float, float]:
    """Median latencies (ms) of ``original(x)`` and ``factorized(x)``, timed alternately; with ``channels_last``
    both run on copies in that memory format (with a channels_last input), as the stage would leave them.

    Example:
        >>> linear = torch.nn.Linear(16, 16)
        >>> before, after = compare_latency(linear, torch.nn.Sequential(linear), torch.randn(2, 16), rounds=1)
        >>> before > 0 and after > 0
        True
    """
    if channels_last and x.dim() == 4:
        original, factorized = (copy.deepcopy(m).to(memory_format=torch.channels_last) for m in (original, factorized))
        x = x.contiguous(memory_format=torch.channels_last)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for model, record in ((original, times[0]), (factorized, times[1])):
            record.append(measure_latency(model, (x,), threads=threads, warmup=2, runs=10).median_ms)
    return statistics.median(times[0]), statistics.median(times[1])
