"""Latency: median wall time of a forward pass over repeated runs after warm-up, at a stated thread count.

Example:
    >>> import torch
    >>> lat = measure_latency(torch.nn.Linear(8, 8), (torch.randn(4, 8),), threads=1, warmup=2, runs=5)
    >>> lat.runs, lat.batch, lat.threads
    (5, 4, 1)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Latency", "measure_latency", "num_threads"]


@dataclass(frozen=True)
class Latency:
    """A latency measurement and the setup it was taken under."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    warmup: int
    batch: int
    threads: int
    input_shapes: list[list[int]]

    def setup(self) -> dict[str, Any]:
        """Everything but the figures: what a reader needs to reproduce the number."""
        data = asdict(self)
        for key in ("median_ms", "p10_ms", "p90_ms"):
            data.pop(key)
        return data


@contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Temporarily set torch's intra-op thread count (None: leave it); yields the count in force."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def measure_latency(model: nn.Module, inputs: tuple[Tensor, ...], threads: int | None = None, warmup: int = 5,
                    runs: int = 30, min_seconds: float = 0.0) -> Latency:
    """Median forward latency of ``model(*inputs)`` in eval mode under ``torch.inference_mode``.

    ``runs`` timed repetitions follow ``warmup`` untimed ones; with ``min_seconds`` > 0, timing continues past
    ``runs`` until that much time has been spent, for very fast models.
    """
    was_training = model.training
    model.eval()
    times: list[float] = []
    try:
        with num_threads(threads) as used, torch.inference_mode():
            for _ in range(warmup):
                model(*inputs)
            start_all = time.perf_counter()
            while len(times) < runs or (time.perf_counter() - start_all) < min_seconds:
                start = time.perf_counter()
                model(*inputs)
                times.append((time.perf_counter() - start) * 1e3)
    finally:
        model.train(was_training)
    deciles = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return Latency(median_ms=statistics.median(times), p10_ms=deciles[0], p90_ms=deciles[-1], runs=len(times),
                   warmup=warmup, batch=int(inputs[0].shape[0]), threads=used,
                   input_shapes=[list(t.shape) for t in inputs])
