"""Invalid pruning configs are rejected with the house message, both built in Python and parsed from a recipe."""

from __future__ import annotations

import pytest

from modelpress.errors import ConfigError
from modelpress.prune import GradualPruneConfig, LotteryTicketConfig, PruneConfig
from modelpress.recipe import parse_recipe


def test_sparsity_of_one_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        PruneConfig(sparsity=1.0)
    assert str(err.value) == "sparsity: expected a number in [0, 1), got 1.0"


def test_negative_sparsity_is_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        PruneConfig(sparsity=-0.1)
    assert str(err.value) == "sparsity: expected a number in [0, 1), got -0.1"


@pytest.mark.parametrize("pattern", ["4:4", "5:4", "8:2"])
def test_n_m_with_n_not_below_m_is_rejected(pattern: str) -> None:
    with pytest.raises(ConfigError) as err:
        PruneConfig(pattern=pattern)
    assert str(err.value) == (f"pattern: expected n < m in an n:m pattern (n kept of every m weights), "
                              f"got '{pattern}'")


def test_recipe_errors_are_located() -> None:
    data = {"stages": [{"type": "prune", "sparsity": 1.0},
                       {"type": "prune", "pattern": "4:4"},
                       {"type": "prune", "sparsity": -0.5, "criterion": "wanda"}]}
    with pytest.raises(ConfigError) as err:
        parse_recipe(data)
    lines = str(err.value).splitlines()
    assert "stages[0].sparsity: expected a number in [0, 1), got 1.0" in lines
    assert "stages[1].pattern: expected n < m in an n:m pattern (n kept of every m weights), got '4:4'" in lines
    assert "stages[2].sparsity: expected a number in [0, 1), got -0.5" in lines


def test_unknown_pattern_and_criterion_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"pattern: expected 'unstructured', an n:m pattern like '2:4' or a block "
                                          r"like '1x4', got '2-4'"):
        PruneConfig(sparsity=0.5, pattern="2-4")
    with pytest.raises(ConfigError, match=r"criterion: expected one of .*magnitude.*wanda.*, got 'size'"):
        PruneConfig(sparsity=0.5, criterion="size")


def test_n_m_fixes_the_sparsity_and_unstructured_needs_one() -> None:
    with pytest.raises(ConfigError, match=r"expected no sparsity with the n:m pattern 2:4 \(it fixes the sparsity "
                                          r"at 0.5\)"):
        PruneConfig(pattern="2:4", sparsity=0.5)
    with pytest.raises(ConfigError, match=r"expected a sparsity in \[0, 1\)"):
        PruneConfig()
    assert PruneConfig(pattern="2:4").target_sparsity() == 0.5


def test_min_density_must_leave_room_for_the_target() -> None:
    with pytest.raises(ConfigError, match=r"expected min_density <= 1 - sparsity \(0.1\)"):
        PruneConfig(sparsity=0.9, min_density=0.2)


def test_gradual_window_and_lottery_criterion() -> None:
    with pytest.raises(ConfigError, match=r"expected end > start \(0.5\)"):
        GradualPruneConfig(sparsity=0.9, start=0.5, end=0.4)
    with pytest.raises(ConfigError, match=r"expected criterion 'magnitude' for a lottery ticket"):
        LotteryTicketConfig(sparsity=0.9, criterion="random")


def test_training_stages_need_a_finetune_section() -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "prune-gradual", "sparsity": 0.9}]})
    assert ("stages[0].finetune: expected a finetune section (gradual pruning happens during it), got none. "
            "Fix: add e.g. `finetune: {epochs: 10}` to the prune-gradual stage") in str(err.value)


def test_configs_round_trip_through_recipes() -> None:
    recipe = parse_recipe({"stages": [
        {"type": "prune", "sparsity": 0.8, "pattern": "1x4", "exclude": ["fc3"],
         "overrides": [{"layers": ["fc1"], "sparsity": 0.9}], "min_density": 0.05},
        {"type": "prune-gradual", "sparsity": 0.9, "schedule": "exponential", "finetune": {"epochs": 1}},
        {"type": "lottery-ticket", "sparsity": 0.8, "rounds": 2, "rewind_step": 10, "finetune": {"epochs": 1}},
    ]})
    again = parse_recipe(recipe.to_dict())
    assert again == recipe
    assert recipe.stages[0].pattern.describe() == "1x4"
