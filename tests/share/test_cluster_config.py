"""The ``cluster`` stage's configuration errors, each message checked (direct construction and recipe parsing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpress.errors import ConfigError
from modelpress.recipe import load_recipe
from modelpress.share.cluster import select_cluster_targets
from modelpress.share.config import ClusterConfig
from modelpress.zoo.models import LeNet5, LeNet300

BITS = r"expected bits in \[1, 8\] \(at most 2\^8 = 256 shared values per layer, the codebook codec's limit\)"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"linear_bits": 0}, rf"^linear_bits: {BITS}, got 0$"),
    ({"linear_bits": 9}, rf"^linear_bits: {BITS}, got 9$"),
    ({"conv_bits": 0}, rf"^conv_bits: {BITS}, got 0$"),
    ({"conv_bits": 9}, rf"^conv_bits: {BITS}, got 9$"),
    ({"overrides": [{"layers": ["fc3"], "bits": 9}]}, rf"^overrides\[0\]\.bits: {BITS}, got 9$"),
])
def test_bits_out_of_range(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClusterConfig(**kwargs)


def test_bits_out_of_range_in_a_recipe_is_located(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nstages:\n  - type: prune\n    sparsity: 0.5\n  - type: cluster\n    conv_bits: 0\n"
                    "  - type: cluster\n    init: kmeans\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    assert "r.yaml:6: stages[1].conv_bits: expected bits in [1, 8]" in message and "got 0" in message
    assert "r.yaml:8: stages[2].init: expected one of 'linear', 'density' or 'kmeans++', got 'kmeans'" in message


def test_override_matching_no_selected_layer() -> None:
    config = ClusterConfig(include=["fc*"], overrides=[{"layers": ["fc2"], "bits": 6},
                                                       {"layers": ["conv*"], "bits": 7}])
    with pytest.raises(ConfigError, match=r"^cluster: overrides\[1\]\.layers: expected patterns matching a selected "
                                          r"layer, got \['conv\*'\]\. Fix: use names among the selected layers: "
                                          r"fc1, fc2$"):
        select_cluster_targets(LeNet5(), config)


def test_selection_matching_nothing() -> None:
    with pytest.raises(ConfigError, match=r"^cluster: include: expected patterns that leave at least one Linear or "
                                          r"Conv layer selected, got \['conv\*'\]\. Fix: use names of this model's "
                                          r"Linear/Conv layers: fc1, fc2, fc3$"):
        select_cluster_targets(LeNet300(), ClusterConfig(include=["conv*"]))
    with pytest.raises(ConfigError, match=r"^cluster: exclude: .*got \['\*'\]"):
        select_cluster_targets(LeNet300(), ClusterConfig(exclude=["*"]))


def test_bits_per_layer_kind_and_first_override_wins() -> None:
    config = ClusterConfig(conv_bits=7, linear_bits=3, overrides=[{"layers": ["fc2", "re:conv[12]"], "bits": 6},
                                                                  {"layers": ["fc*"], "bits": 2}])
    assert config.bits_for("conv1", is_conv=True) == 6
    assert config.bits_for("conv9", is_conv=True) == 7
    assert config.bits_for("fc2", is_conv=False) == 6
    assert config.bits_for("fc1", is_conv=False) == 2
    assert config.bits_for("head", is_conv=False) == 3
