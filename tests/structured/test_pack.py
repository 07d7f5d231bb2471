"""Pruned models pack with their architecture change recorded (no pickle) and unpack to identical outputs; the
stage runs through a recipe with fine-tuning and distillation from the unpruned model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from modelpress.errors import FormatError
from modelpress.format import read_file
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run, run_stage
from modelpress.recipe.schema import Recipe
from modelpress.structured import PruneChannelsConfig, PrunedMultiheadAttention, prune_channels
from modelpress.task import ClassificationTask
from tests.structured.models import MODELS


@pytest.mark.parametrize("name", ["residual", "depthwise", "concat_split", "grouped", "tiny_lm", "encoder_layer"])
def test_pack_unpack_round_trip(name: str, tmp_path: Path) -> None:
    factory, inputs = MODELS[name]
    model = factory().eval()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": f"tests.structured.models:{factory.__name__}"}))
    x = inputs()
    model = prune_channels(model, PruneChannelsConfig(ratio=0.5, criterion="fpgm"), x)
    model = prune_channels(model, PruneChannelsConfig(ratio=0.25), x)  # a second stage prunes the pruned model
    path = tmp_path / "m.mpz"
    pack(model, path)
    _, metadata = read_file(path)
    records = [t for t in metadata["provenance"]["transforms"] if t["type"] == "prune-channels"]
    assert len(records) == 2 and all(r["layers"] for r in records)
    restored = unpack(path)
    assert torch.equal(restored(*x), model(*x))
    if name == "tiny_lm":  # the tie survives: one tensor, stored once
        assert restored.head.weight is restored.embed.weight
        assert "head.weight" in metadata["aliases"]
    if name in ("tiny_lm", "encoder_layer"):
        attn = restored.layer.self_attn if name == "tiny_lm" else restored.self_attn
        assert isinstance(attn, PrunedMultiheadAttention) and attn.num_heads < 4


def test_record_that_disagrees_with_the_architecture_is_a_format_error() -> None:
    factory, inputs = MODELS["residual"]
    model = factory()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "tests.structured.models:residual"}))
    model = prune_channels(model, PruneChannelsConfig(ratio=0.5), inputs())
    record = copy.deepcopy(get_provenance(model).transforms[-1])  # type: ignore[union-attr]
    record["layers"][0]["kind"] = "linear"  # the stem conv recorded as a Linear
    from modelpress.provenance import replay_transforms

    with pytest.raises(FormatError, match=r"prune-channels transform: layer 'stem\.0': expected a layer matching the "
                       r"record \(linear\), got <Conv2d>"):
        replay_transforms(factory(), [record])


def _toy_task() -> ClassificationTask:
    """64 random 8x8 images in 10 classes (the data only has to drive the loop; no accuracy is claimed)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=gen), torch.arange(64) % 10
    return ClassificationTask("toy", x[:48], y[:48], x[48:], y[48:], 10)


def test_stage_fine_tunes_with_distillation_from_the_unpruned_model() -> None:
    from modelpress.zoo.models import ResNetSmall

    digits_task = _toy_task()
    torch.manual_seed(0)
    model = ResNetSmall(in_shape=(1, 8, 8), widths=(8, 16, 16))
    teacher = copy.deepcopy(model).eval()
    config = PruneChannelsConfig(ratio=0.5, criterion="taylor", calibration={"batches": 1, "batch_size": 16},
                                 finetune={"epochs": 0.5, "batch_size": 16, "distill": {"temperature": 2}})
    ctx = StageContext(task=digits_task, teacher=teacher, quiet=True)
    before = [p.detach().clone() for p in prune_channels(copy.deepcopy(model), config.model_copy(
        update={"finetune": None}), digits_task.example_inputs(2), digits_task).parameters()]
    pruned = run_stage(model, config, ctx)
    assert pruned.layer1[0].conv1.out_channels == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, pruned.parameters(), strict=True)), "fine-tuning ran"
    assert ctx.notes["layers"]["layer1.0.conv1"] == {"kind": "conv2d", "before": [8, 8, 3, 3], "after": [4, 4, 3, 3]}


def test_recipe_run_records_rows_and_the_file_reproduces(tmp_path: Path) -> None:
    digits_task = _toy_task()
    stages = Recipe(measure={"batch_size": 4, "runs": 2, "warmup": 0},
                    stages=(PruneChannelsConfig(ratio=0.5, round_to=4, exclude=["stem.*"]),))
    # the residual test model pools adaptively, so it runs on 8x8 images too
    result = run(stages, MODELS["residual"][0]().eval(), digits_task, out=tmp_path / "r.mpz", quiet=True,
                 source="tests.structured.models:residual")
    original, pruned = result.history.rows
    assert pruned.flops < original.flops / 2 and pruned.file_bytes < original.file_bytes
    assert any("stem.0" in s.layer and "exclude" in s.reason for s in pruned.skipped)
    json.dumps(pruned.notes)  # JSON-able report rows
    restored = unpack(tmp_path / "r.mpz")
    assert digits_task.evaluate(restored) == pruned.metrics
