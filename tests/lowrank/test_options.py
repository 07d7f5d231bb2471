"""The ``low-rank`` stage's runtime options: ranks rounded to a multiple, channels_last recorded in the file, and
activation-aware (whitened) SVD."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from modelpress.errors import ConfigError
from modelpress.lowrank import LowRankConfig, low_rank_
from modelpress.lowrank.stage import choose_ranks, select_low_rank_targets
from modelpress.lowrank.svd import factorize_svd
from modelpress.lowrank.whiten import input_grams
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.zoo.models import LeNet300, ResNetSmall


def test_rank_multiple_rounds_every_rule_and_the_budget_still_holds() -> None:
    layer = nn.Linear(300, 100)
    assert choose_ranks([("fc", layer)], LowRankConfig(rank=20, rank_multiple=16)) == {"fc": (16,)}
    assert choose_ranks([("fc", layer)], LowRankConfig(rank=2, rank_multiple=16)) == {"fc": (16,)}  # at least one
    assert choose_ranks([("fc", layer)], LowRankConfig(ratio=0.99, rank_multiple=16)) == {"fc": (96,)}  # 99 -> 96
    narrow = nn.Linear(300, 10)  # a mode smaller than the multiple keeps its full rank
    assert choose_ranks([("fc", narrow)], LowRankConfig(ratio=1.0, rank_multiple=16)) == {"fc": (10,)}
    model = ResNetSmall()
    config = LowRankConfig(method="tucker", param_budget=0.3, rank_multiple=16, exclude=["stem.*"])
    targets, _ = select_low_rank_targets(model, config)
    ranks = choose_ranks(targets, config)
    assert all(r % 16 == 0 for pair in ranks.values() for r in pair)
    ctx = StageContext()
    low_rank_(model, config, ctx=ctx)
    assert ctx.notes["params_after"] <= 0.3 * ctx.notes["params_before"]
    cp = LowRankConfig(method="cp", param_budget=0.3, rank_multiple=8, exclude=["stem.*"])
    cp_ranks = choose_ranks(select_low_rank_targets(ResNetSmall(), cp)[0], cp)
    assert all(r % 8 == 0 for (r,) in cp_ranks.values())


def test_channels_last_is_recorded_and_the_unpacked_model_runs_in_it(tmp_path: Path) -> None:
    model = ResNetSmall(widths=(8, 16, 16)).eval()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "modelpress.zoo.models:ResNetSmall",
                                             "kwargs": {"widths": [8, 16, 16]}}))
    model = low_rank_(model, LowRankConfig(method="tucker", ratio=0.5, channels_last=True))
    assert get_provenance(model).transforms[-1]["channels_last"] is True
    path = tmp_path / "m.mpz"
    pack(model, path)
    restored = unpack(path).eval()
    for module in (model, restored):
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    x = torch.randn(4, 1, 28, 28)  # an ordinary NCHW input: the first conv switches to channels_last
    out = restored.layer1[0].conv1(restored.stem(x))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(model(x), restored(x))


def _correlated(n: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=generator) * torch.logspace(0, -3, dim)[None, :]  # few strong directions
    return torch.randn(n, dim, generator=generator) @ mix.T * 5 + 1  # [n, dim], not centred


def test_activation_aware_svd_is_exact_at_full_rank_and_lowers_the_output_error() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(32, 24)
    x = _correlated(256, 32, seed=1)
    gram = input_grams(layer, [""], [(x,)])[""]
    full = factorize_svd(layer, 24, gram=gram)
    assert torch.allclose(full(x), layer(x), atol=1e-4)
    plain, aware = factorize_svd(layer, 4), factorize_svd(layer, 4, gram=gram)
    error_plain = (plain(x) - layer(x)).norm()
    error_aware = (aware(x) - layer(x)).norm()
    assert error_aware < 0.5 * error_plain
    conv = nn.Conv2d(32, 24, 1, bias=False)  # a 1x1 conv: every position is one input row
    images = x.reshape(16, 4, 4, 32).permute(0, 3, 1, 2)  # [16, 32, 4, 4]
    conv_gram = input_grams(conv, [""], [(images,)])[""]
    assert torch.allclose(conv_gram, gram)
    assert torch.allclose(factorize_svd(conv, 24, gram=conv_gram)(images), conv(images), atol=1e-4)


def test_activation_aware_factors_are_balanced_whatever_the_calibration_size() -> None:
    # Regression: the whitened factors used to come out each about N^(1/4) off in scale, in opposite directions (N
    # calibration rows), which made Adam move the first factor hundreds of times faster, relative to its size, than
    # the second (MiniLM FFN recovery). Each rank component now has equal norms in both factors, and the product is
    # unchanged.
    torch.manual_seed(0)
    layer = nn.Linear(32, 24)
    for rows in (256, 65_536):
        x = _correlated(rows, 32, seed=2)
        gram = input_grams(layer, [""], [(x,)])[""]
        pair = factorize_svd(layer, 6, gram=gram)
        first_norms, second_norms = pair[0].weight.norm(dim=1), pair[1].weight.norm(dim=0)  # [6] each
        assert torch.allclose(first_norms, second_norms, rtol=1e-4)
        scaled = factorize_svd(layer, 6, gram=gram * 1e4)  # 10,000x the rows, same statistics: the same layers
        assert torch.allclose(scaled[0].weight, pair[0].weight, atol=1e-5)
        assert torch.allclose(scaled[1].weight, pair[1].weight, atol=1e-5)


def test_activation_aware_stage_needs_a_task_and_svd() -> None:
    with pytest.raises(ConfigError, match="expected activation_aware only with method svd"):
        LowRankConfig(method="tucker", ratio=0.5, activation_aware=True)
    config = LowRankConfig(rank=4, include=["fc2"], activation_aware=True, calibration_batches=2)
    with pytest.raises(ConfigError, match="low-rank: activation_aware: expected a task"):
        low_rank_(LeNet300(), config)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 1, 28, 28, generator=generator), torch.randint(0, 10, (128,), generator=generator)
    task = ClassificationTask("tiny", x, y, x[:32], y[:32], num_classes=10)
    torch.manual_seed(0)
    original = LeNet300().eval()
    plain = low_rank_(copy.deepcopy(original), config.model_copy(update={"activation_aware": False}))
    ctx = StageContext()
    aware = low_rank_(copy.deepcopy(original), config, task=task, ctx=ctx)
    assert ctx.notes["layers"]["fc2"]["ranks"] == [4] and type(aware.fc2) is nn.Sequential
    with torch.no_grad():  # on the task's (calibration) inputs, whitening gives the smaller error at fc2's output
        hidden = original.fc1(x.flatten(1)).relu()
        target = original.fc2(hidden)
        assert (aware.fc2(hidden) - target).norm() < (plain.fc2(hidden) - target).norm()


class _Tokens(nn.Module):
    """A token model ``(x [B, T, D], mask [B, T]) -> [B, T, D]`` with one Linear, to test masked statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * mask[..., None]


def test_input_grams_leave_out_masked_tokens() -> None:
    x = torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    kept = x[mask.bool()]  # [4, 6]: the real tokens only
    masked = input_grams(_Tokens(), ["proj"], [(x, mask)], mask_input=1)["proj"]
    assert torch.allclose(masked, kept.double().T @ kept.double())
    every = input_grams(_Tokens(), ["proj"], [(x, mask)])["proj"]  # without mask_input: all 10 rows
    assert torch.allclose(every, x.reshape(10, 6).double().T @ x.reshape(10, 6).double())
