"""Bad ratios, missing or doubled targets and unknown layer names are rejected with house-format messages."""

from __future__ import annotations

import pytest

from modelpress.config import parse_config
from modelpress.errors import ConfigError
from modelpress.structured import PruneChannelsConfig, prune_channels
from tests.structured.models import MODELS


@pytest.mark.parametrize(("data", "message"), [
    ({"ratio": 1.5}, "ratio: expected a number in [0, 1), got 1.5"),
    ({"ratio": -0.1}, "ratio: expected a number in [0, 1), got -0.1"),
    ({}, "target: expected a target (fraction of flops or latency kept) when no ratio is given (add ratio: 0.5, "
         "say), got None"),
    ({"ratio": 0.5, "target": {"fraction": 0.3}},
     "target: expected no target when a ratio is given (drop one), got {'fraction': 0.3}"),
    ({"target": {"fraction": 1.2}}, "target.fraction: expected a number in (0, 1), got 1.2"),
    ({"ratio": 0.95, "scope": "global"}, "max_ratio: expected max_ratio >= ratio (0.95) with scope global, got 0.9"),
    ({"ratio": 0.5, "round_to": 0}, "round_to: expected a number in [1, 1024], got 0"),
    ({"ratio": 0.5, "criterion": "l3"},
     "criterion: expected one of 'l1', 'l2', 'fpgm', 'bn-scale', 'taylor' or 'random', got 'l3'"),
    ({"ratio": 0.5, "overrides": [{"layers": ["fc"], "ratio": 1.0}]}, "overrides[0].ratio: expected a number in"),
    ({"ratio": 0.5, "sparsity": 0.5}, "sparsity: unknown key"),
])
def test_bad_config_messages(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(PruneChannelsConfig, data)
    assert str(error.value).startswith(message)


def test_unknown_layer_name_lists_the_prunable_layers() -> None:
    factory, inputs = MODELS["residual"]
    with pytest.raises(ConfigError, match=r"prune-channels: exclude: expected a pattern matching a layer whose "
                       r"channels can be pruned, got 'stem\.9'\. Fix: no layer of the model has that name; prunable "
                       r"layers: layer1\.0\.conv1, layer1\.0\.conv2"):
        prune_channels(factory(), PruneChannelsConfig(ratio=0.5, exclude=["stem.9"]), inputs())


def test_blocked_layer_name_says_it_is_blocked() -> None:
    factory, inputs = MODELS["residual"]
    with pytest.raises(ConfigError, match=r"overrides\[0\]\.layers: .*got 'fc'\. Fix: it names layers whose "
                       r"channels are blocked \(see the skipped list\)"):
        prune_channels(factory(), PruneChannelsConfig(ratio=0.5, overrides=[{"layers": ["fc"], "ratio": 0.2}]),
                       inputs())


def test_taylor_without_a_task() -> None:
    factory, inputs = MODELS["residual"]
    with pytest.raises(ConfigError, match=r"prune-channels: criterion: expected a task with training data for the "
                       r"taylor criterion, got <none>\. Fix: pass task=, or use criterion l1, l2, fpgm, bn-scale or "
                       r"random"):
        prune_channels(factory(), PruneChannelsConfig(ratio=0.5, criterion="taylor"), inputs())
