"""The N:M property holds for any shape and N < M; blocks and per-row pruning remove what they say."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from modelpress.prune import Pattern, PruneConfig, compute_masks
from modelpress.prune.patterns import build_mask, pattern_support


@st.composite
def _n_m_case(draw: st.DrawFn) -> tuple[int, int, tuple[int, ...], int]:
    m = draw(st.integers(2, 16))
    n = draw(st.integers(1, m - 1))
    out = draw(st.integers(1, 12))
    groups_in = draw(st.integers(1, 6))
    kernel = draw(st.sampled_from([(), (1,), (3,), (2, 3)]))
    seed = draw(st.integers(0, 2**16))
    return n, m, (out, groups_in * m, *kernel), seed


@settings(max_examples=60, deadline=None)
@given(_n_m_case())
def test_n_m_keeps_exactly_n_of_every_m_along_the_input_dimension(case: tuple[int, int, tuple[int, ...], int]) -> None:
    n, m, shape, seed = case
    scores = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    mask = build_mask(scores, Pattern.model_validate(f"{n}:{m}"), prune=0)
    assert mask.shape == scores.shape
    along_input = mask.movedim(1, -1)  # [out, *kernel, in]: groups run along the input dimension
    groups = along_input.reshape(*along_input.shape[:-1], -1, m)
    assert bool((groups.sum(-1) == n).all())
    # and the kept ones are the N highest scores of their group
    group_scores = scores.movedim(1, -1).reshape(groups.shape)
    kept_min = group_scores.masked_fill(~groups, float("inf")).min(-1).values
    dropped_max = group_scores.masked_fill(groups, float("-inf")).max(-1).values
    assert bool((kept_min >= dropped_max).all())


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), st.integers(0, 1000))
def test_n_m_through_the_pruner_on_linear_and_conv(out: int, blocks: int, seed: int) -> None:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(4 * blocks, 8, 3), nn.Flatten(), nn.LazyLinear(out))
    model(torch.zeros(1, 4 * blocks, 5, 5))
    result = compute_masks(model, PruneConfig(pattern="2:4"), task=None)
    assert set(result.layer_sparsity) == {"0"} | ({"2"} if (8 * 9) % 4 == 0 else set())
    for mask in result.masks.values():
        assert bool((mask.movedim(1, -1).reshape(-1, 4).sum(-1) == 2).all())


def test_layers_whose_input_does_not_divide_by_m_are_skipped_with_the_reason() -> None:
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    result = compute_masks(model, PruneConfig(pattern="2:4"), task=None)
    assert list(result.masks) == ["0.weight"]
    assert [(s.layer, s.reason) for s in result.skipped] == [("2", "the input dimension 6 is not a multiple of M=4")]
    assert pattern_support((3, 8), Pattern.model_validate("1:8")) is None


def test_blocks_remove_whole_blocks_and_keep_the_count() -> None:
    torch.manual_seed(0)
    scores = torch.rand(8, 16)
    mask = build_mask(scores, Pattern.model_validate("2x4"), prune=5)
    blocks = mask.reshape(4, 2, 4, 4).permute(0, 2, 1, 3).reshape(16, 8)  # one row per 2x4 block
    assert bool(((blocks.sum(1) == 0) | (blocks.sum(1) == 8)).all())
    assert int((blocks.sum(1) == 0).sum()) == 5
    # the blocks removed have the lowest mean scores
    means = scores.reshape(4, 2, 4, 4).mean(dim=(1, 3)).flatten()
    removed = blocks.sum(1) == 0
    assert float(means[removed].max()) <= float(means[~removed].min())


def test_per_row_spreads_the_pruning_evenly() -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0], [40.0, 30.0, 20.0, 10.0], [5.0, 6.0, 7.0, 8.0]])
    mask = build_mask(scores, Pattern(), prune=7, per_row=True)
    assert mask.sum(1).tolist() == [1, 2, 2]  # 7 = 3 + 2 + 2: the remainder goes to the first rows
    assert mask.int().tolist() == [[0, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]]
