"""Recipe files: validated before anything runs, errors located by path and YAML line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpress.errors import ConfigError
from modelpress.quantize.cast import CastConfig
from modelpress.recipe import load_recipe, parse_recipe


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_valid_recipe_loads_typed_frozen_stages(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, "name: r\nseed: 3\nstages:\n  - type: cast\n    dtype: float16\n"))
    assert recipe.seed == 3
    assert isinstance(recipe.stages[0], CastConfig)
    assert recipe.stages[0].dtype.value == "float16"
    assert parse_recipe(recipe.to_dict()) == recipe


def test_error_names_file_line_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "stages:\n  - type: cast\n    dtype: int3\n")
    with pytest.raises(ConfigError) as e:
        load_recipe(path)
    assert str(e.value) == f"{path}:3: stages[0].dtype: expected one of 'float16' or 'bfloat16', got 'int3'"


def test_unknown_stage_type_lists_known_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":2: stages\[0\]\.type: expected one of .*cast.*, got 'prunee'"):
        load_recipe(_write(tmp_path, "stages:\n  - type: prunee\n"))


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = "seed: -1\nbogus: 1\nstages:\n  - type: cast\n    finetune: {epochs: 0}\n"
    with pytest.raises(ConfigError) as e:
        load_recipe(_write(tmp_path, text))
    message = str(e.value)
    assert ":2: bogus: unknown key" in message
    assert ":1: seed: expected a number in [0, 2147483647], got -1" in message
    assert "stages[0].finetune.epochs: expected a number in (0, 1000], got 0" in message


def test_cross_stage_rule_cast_must_be_last(tmp_path: Path) -> None:
    text = "stages:\n  - type: cast\n  - type: cast\n    dtype: float16\n"
    with pytest.raises(ConfigError, match=r"stages\[0\]: expected the cast to be the last stage"):
        load_recipe(_write(tmp_path, text))


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"r\.yaml:3: expected valid YAML, got a syntax error"):
        load_recipe(_write(tmp_path, "stages:\n  - type: cast\n  dtype: [unclosed\n"))


def test_missing_file_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"recipe 'nope\.yaml': expected a YAML file, got <no such file>"):
        load_recipe("nope.yaml")


def test_python_recipe_checks_rules_too() -> None:
    with pytest.raises(ConfigError, match="expected the cast to be the last stage"):
        load_recipe([CastConfig(), CastConfig()])
