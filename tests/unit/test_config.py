"""Config validation: every message names the path, what was expected and what arrived."""

from __future__ import annotations

import pytest
from pydantic import Field

from modelpress.config import FinetuneConfig, StageConfig, parse_config
from modelpress.errors import ConfigError


class _Toy(StageConfig, tag="toy-test"):
    sparsity: float = Field(0.5, ge=0, lt=1)
    steps: int = Field(1, ge=1)


def test_out_of_range_names_path_interval_and_value() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(_Toy, {"sparsity": 1.5}, where="stages[2]")
    assert str(e.value) == "stages[2].sparsity: expected a number in [0, 1), got 1.5"


def test_wrong_type_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"stages\[0\]\.steps: expected an integer in \[1, inf\], got 'many'"):
        parse_config(_Toy, {"steps": "many"}, where="stages[0]")


def test_unknown_key_lists_known_keys() -> None:
    with pytest.raises(ConfigError, match=r"stages\[1\]\.sparsty: unknown key\. Fix: remove it or use one of: "
                                          r"finetune, name, sparsity, steps"):
        parse_config(_Toy, {"sparsty": 0.1}, where="stages[1]")


def test_nested_finetune_errors_are_located() -> None:
    with pytest.raises(ConfigError, match=r"stages\[0\]\.finetune\.optimizer: expected one of adam, adamw, sgd"):
        parse_config(_Toy, {"finetune": {"optimizer": "lion"}}, where="stages[0]")


def test_configs_are_frozen_and_round_trip() -> None:
    cfg = _Toy(sparsity=0.25, finetune=FinetuneConfig(epochs=2))
    with pytest.raises(Exception, match="frozen"):
        cfg.sparsity = 0.3  # type: ignore[misc]
    assert parse_config(_Toy, cfg.to_dict()) == cfg


def test_non_mapping_section_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"stages\[0\]: expected a mapping of keys to values, got <list>"):
        parse_config(_Toy, [1, 2], where="stages[0]")


def test_bounds_of_a_field_inside_a_tuple_of_nested_configs() -> None:
    # Regression: the bounds lookup stopped at the list index and printed "expected a number in None".
    from modelpress.prune.config import PruneConfig

    with pytest.raises(ConfigError, match=r"stages\[0\]\.overrides\[0\]\.sparsity: expected a number in \[0, 1\), "
                                          r"got 1\.5"):
        parse_config(PruneConfig, {"sparsity": 0.5, "overrides": [{"layers": ["fc1"], "sparsity": 1.5}]}, "stages[0]")
