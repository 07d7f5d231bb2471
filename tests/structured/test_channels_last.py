"""``prune-channels`` with ``channels_last``: the 4-D weights are stored in that memory format, the provenance record
says so, the unpacked model runs in it with bit-identical outputs, and the stage's fine-tuning keeps it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from modelpress.format import read_file
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.structured import PruneChannelsConfig, prune_channels
from modelpress.task import ClassificationTask
from tests.structured.models import MODELS


def _convs_channels_last(model: nn.Module) -> list[bool]:
    """Per Conv2d: are its weight's strides channels_last's? (Strides, not ``is_contiguous``: a 1x1 or depthwise
    weight is contiguous in both formats, yet torch picks the conv's output format from its strides.)"""
    return [m.weight.stride() == torch.empty(m.weight.shape, memory_format=torch.channels_last).stride()
            for m in model.modules() if isinstance(m, nn.Conv2d)]


def _packable(name: str) -> tuple[nn.Module, Callable[[], tuple[torch.Tensor, ...]]]:
    """A test model in eval mode with the provenance ``pack`` needs, and its input factory."""
    factory, inputs = MODELS[name]
    model = factory().eval()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": f"tests.structured.models:{name}"}))
    return model, inputs


@pytest.mark.parametrize("name", ["residual", "depthwise"])
def test_channels_last_is_recorded_and_the_unpacked_model_runs_in_it(name: str, tmp_path: Path) -> None:
    factory, inputs = MODELS[name]
    model = factory().eval()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": f"tests.structured.models:{factory.__name__}"}))
    x = inputs()
    model = prune_channels(model, PruneChannelsConfig(ratio=0.5, channels_last=True), x)
    assert get_provenance(model).transforms[-1]["channels_last"] is True  # type: ignore[union-attr]
    path = tmp_path / "m.mpz"
    pack(model, path)
    _, metadata = read_file(path)
    assert metadata["provenance"]["transforms"][-1]["channels_last"] is True
    restored = unpack(path).eval()
    for module in (model, restored):
        flags = _convs_channels_last(module)
        assert flags and all(flags)
    stem = restored.stem(x[0])  # an ordinary NCHW input: the first conv switches to channels_last
    assert stem.is_contiguous(memory_format=torch.channels_last) and not stem.is_contiguous()
    assert torch.equal(restored(*x), model(*x))


def test_without_channels_last_the_record_and_strides_are_unchanged() -> None:
    model, inputs = _packable("residual")
    model = prune_channels(model, PruneChannelsConfig(ratio=0.5), inputs())
    assert not any(_convs_channels_last(model))
    assert "channels_last" not in get_provenance(model).transforms[-1]  # type: ignore[union-attr]


def test_nothing_pruned_still_records_channels_last(tmp_path: Path) -> None:
    model, inputs = _packable("residual")
    x = inputs()
    model = prune_channels(model, PruneChannelsConfig(ratio=0.0, channels_last=True), x)
    record = get_provenance(model).transforms[-1]  # type: ignore[union-attr]
    assert record["layers"] == [] and record["channels_last"] is True
    pack(model, tmp_path / "m.mpz")
    restored = unpack(tmp_path / "m.mpz").eval()
    assert all(_convs_channels_last(restored)) and torch.equal(restored(*x), model(*x))


def test_a_later_stage_without_channels_last_round_trips(tmp_path: Path) -> None:
    """Layers a second (NCHW) stage cuts are rebuilt NCHW, the others stay channels_last: the same on unpack."""
    model, inputs = _packable("residual")
    x = inputs()
    model = prune_channels(model, PruneChannelsConfig(ratio=0.5, channels_last=True), x)
    model = prune_channels(model, PruneChannelsConfig(ratio=0.5, overrides=[{"layers": ["layer3.*"], "ratio": 0.5}],
                                                      exclude=["stem.*", "layer1.*", "layer2.*"]), x)
    flags = _convs_channels_last(model)
    assert any(flags) and not all(flags)  # mixed on purpose
    pack(model, tmp_path / "m.mpz")
    restored = unpack(tmp_path / "m.mpz").eval()
    assert _convs_channels_last(restored) == flags
    assert torch.equal(restored(*x), model(*x))


def test_the_stage_fine_tunes_the_channels_last_model() -> None:
    from modelpress.zoo.models import ResNetSmall

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 1, 8, 8, generator=gen), torch.arange(48) % 10
    task = ClassificationTask("toy", x[:32], y[:32], x[32:], y[32:], 10)
    torch.manual_seed(0)
    model = ResNetSmall(in_shape=(1, 8, 8), widths=(8, 16, 16))
    config = PruneChannelsConfig(ratio=0.5, channels_last=True,
                                 finetune={"epochs": 0.5, "batch_size": 16, "distill": {"temperature": 2}})
    ctx = StageContext(task=task, teacher=copy.deepcopy(model).eval(), quiet=True)
    before = copy.deepcopy(prune_channels(copy.deepcopy(model), config.model_copy(update={"finetune": None}),
                                          task.example_inputs(2)))
    pruned = run_stage(model, config, ctx)
    assert ctx.notes["channels_last"] is True
    assert not torch.equal(before.layer1[0].conv1.weight, pruned.layer1[0].conv1.weight), "fine-tuning ran"
    assert all(_convs_channels_last(pruned))
