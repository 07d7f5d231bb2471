"""A synthetic three-stage History (original → prune → quantize) with layers, skips and notes, and its info."""

from __future__ import annotations

import pytest

from modelpress.history import History, HistoryRow, LayerRow, Skip


def make_layers(count: int, sparsity: float) -> list[LayerRow]:
    """``count`` Linear layers with distinct sizes; a fraction ``sparsity`` of each one's weights are zero."""
    layers = []
    for i in range(count):
        params = 1000 * (i + 1)
        nonzeros = round(params * (1 - sparsity))
        layers.append(LayerRow(f"block{i}.fc", "Linear", params, nonzeros, 2 * nonzeros, 4 * params))
    return layers


def make_history() -> History:
    """Original 412 kB → prune 41.2 kB (10.0x) → quantize 10.0 kB (41.2x); latency 4 → 2 → 1 ms."""
    setup = {"batch": 1, "threads": 2, "runs": 20, "warmup": 3}
    return History([
        HistoryRow("original", 412_000, 6000, 6000, 12_000, 4.0, {"accuracy": 0.9812, "loss": 0.061234}, 0.0,
                   latency_setup=setup, layers=make_layers(3, 0.0)),
        HistoryRow("prune", 41_200, 6000, 600, 1200, 2.0, {"accuracy": 0.9790, "loss": 0.070011}, 12.5,
                   latency_setup=setup, layers=make_layers(3, 0.9),
                   skipped=[Skip("block0.fc", "excluded: first layer is sensitive")],
                   notes={"target_sparsity": 0.9, "schedule": "cubic"}),
        HistoryRow("quantize", 10_000, 6000, 600, 1200, 1.0, {"accuracy": 0.9775, "loss": 0.071111}, 3.25,
                   latency_setup=setup, layers=make_layers(3, 0.9),
                   skipped=[Skip("block2.fc", "no int8 kernel for this layer's shape")],
                   notes={"bits": 8, "scheme": "per-channel"}),
    ])


@pytest.fixture
def history() -> History:
    return make_history()


@pytest.fixture
def info() -> dict[str, object]:
    return {"model": "lenet-toy", "task": "digits", "primary_metric": "accuracy", "higher_is_better": True,
            "recipe": "prune-then-quantize", "date": "2025-01-31", "machine": "test machine, 2 CPUs"}
