"""``prune-bert``: head/FFN surgery on a tiny random BERT (exactness, shapes), clear errors, skips, global allocation,
calibration scores, the distillation hints, and pack -> unpack bit-identical outputs. No hub downloads."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from modelpress.errors import ConfigError, FormatError
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.recipe import parse_recipe
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.structured.bert import bert_layers, layer_shape, prune_ffn_, prune_heads_
from modelpress.structured.bert_config import PruneBertConfig
from modelpress.structured.bert_importance import BertCriterion, unit_scores
from modelpress.structured.bert_stage import _rebuild_prune_bert, allocate, prune_bert
from modelpress.task import Batch, Task
from modelpress.zoo.minilm import SentenceEncoder

FACTORY = "tests.structured.test_bert_stage:tiny_encoder"


def tiny_encoder() -> SentenceEncoder:
    """2 layers, hidden 32, 4 heads of 8, FFN 64; random weights (seeded), eval mode."""
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64, max_position_embeddings=32), add_pooling_layer=False)
    model = SentenceEncoder(bert).eval()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": FACTORY}))
    return model


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 50, (3, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0  # one padded sentence
    return ids, mask


class TokenTask(Task):
    """32 random token sequences [B, 6] (with an all-ones mask); targets: zero vectors (only KD uses them)."""

    name, primary_metric = "tokens", "mean_cosine"

    def __init__(self) -> None:
        self.ids = torch.randint(1, 50, (32, 6), generator=torch.Generator().manual_seed(2))

    def example_inputs(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        ids = self.ids[torch.arange(batch_size) % 32]
        return ids, torch.ones_like(ids)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        order = torch.randperm(32, generator=generator)
        for start in range(0, 32, batch_size):
            ids = self.ids[order[start:start + batch_size]]
            yield (ids, torch.ones_like(ids)), torch.zeros(len(ids), 32)

    def num_train_examples(self) -> int:
        return 32

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).pow(2).mean()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"mean_cosine": 0.0}


def _task() -> TokenTask:
    return TokenTask()


def test_keeping_every_head_and_neuron_gives_exactly_the_original_output() -> None:
    model = tiny_encoder()
    expected = model(*_inputs())
    for _, layer in bert_layers(model):
        prune_heads_(layer, range(4))
        prune_ffn_(layer, range(64))
    assert torch.equal(model(*_inputs()), expected)
    staged = prune_bert(tiny_encoder(), PruneBertConfig(heads=0.0, ffn=0.0, ffn_multiple=None, criterion="random"))
    assert torch.equal(staged(*_inputs()), expected)
    assert get_provenance(staged).transforms[-1]["layers"][0] == {"name": "bert.encoder.layer.0", "heads": 4,
                                                                 "head_size": 8, "ffn": 64}


def test_removed_heads_and_neurons_equal_zeroing_their_output_weights() -> None:
    model, reference = tiny_encoder(), tiny_encoder()
    layer, ref = model.bert.encoder.layer[0], reference.bert.encoder.layer[0]
    prune_heads_(layer, [0, 3])
    prune_ffn_(layer, list(range(0, 64, 2)))
    with torch.no_grad():  # a removed head's context enters only through its 8 columns of the output projection
        ref.attention.output.dense.weight[:, 8:24] = 0
        ref.output.dense.weight[:, 1::2] = 0
    assert layer.attention.self.query.weight.shape == (16, 32) and layer.attention.output.dense.weight.shape == (32, 16)
    assert layer.intermediate.dense.weight.shape == (32, 32) and layer.output.dense.weight.shape == (32, 32)
    assert (layer.attention.self.num_attention_heads, layer.attention.self.all_head_size) == (2, 16)
    assert torch.allclose(model(*_inputs()), reference(*_inputs()), atol=1e-5)


def test_stage_shapes_notes_and_output_shape() -> None:
    ctx = StageContext(task=_task())
    from modelpress.structured.bert_stage import apply_prune_bert

    model = apply_prune_bert(tiny_encoder(), PruneBertConfig(heads=0.5, ffn=0.5, ffn_multiple=16), ctx)
    assert [tuple(layer_shape(layer)) for _, layer in bert_layers(model)] == [(2, 8, 32), (2, 8, 32)]
    assert ctx.notes["layers"]["bert.encoder.layer.1"]["heads"] == "2/4"
    assert ctx.notes["layers"]["bert.encoder.layer.1"]["ffn"] == "32/64"
    assert ctx.notes["params_after"] < ctx.notes["params_before"]
    assert model(*_inputs()).shape == (3, 32)


def test_output_norm_scores_ignore_padding_and_follow_the_output_weights() -> None:
    model = tiny_encoder()
    layers = bert_layers(model)
    ids, mask = _inputs()
    with torch.no_grad():
        model.bert.encoder.layer[0].attention.output.dense.weight[:, 16:24] = 0  # head 2 adds nothing
        model.bert.encoder.layer[0].output.dense.weight[:, 5] = 0  # neuron 5 adds nothing
    scores = unit_scores(model, layers, [(ids, mask)], BertCriterion.output_norm)
    heads, ffn = scores["bert.encoder.layer.0"]
    assert heads[2] == 0 and bool((heads[[0, 1, 3]] > 0).all()) and ffn[5] == 0
    junk = ids.clone()
    junk[1, 5:] = 7  # different tokens under padding: same scores
    again = unit_scores(model, layers, [(junk, mask)], BertCriterion.output_norm)
    assert torch.allclose(again["bert.encoder.layer.1"][0], scores["bert.encoder.layer.1"][0], atol=1e-5)


def test_global_scope_moves_heads_between_layers_but_keeps_min_heads() -> None:
    scores = {"a": (torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.arange(8.0)),
              "b": (torch.tensor([10.0, 20.0, 30.0, 40.0]), torch.arange(8.0) + 100)}
    plan = allocate(scores, PruneBertConfig(heads=0.5, ffn=0.5, scope="global", ffn_multiple=None))
    assert plan["a"][0] == [3] and plan["b"][0] == [1, 2, 3]  # 4 of 8 heads go, the 3 weakest from layer a
    assert plan["a"][1] == [7] and plan["b"][1] == list(range(8))  # a's neurons go first; every layer keeps 1
    floor = allocate(scores, PruneBertConfig(heads=0.5, scope="global", min_heads=2, ffn_multiple=None))
    assert floor["a"][0] == [2, 3] and floor["b"][0] == [2, 3]


def test_pruning_every_head_or_a_bad_ratio_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^heads: expected a number in \[0, 1\), got 1.0$"):
        PruneBertConfig(heads=1.0)
    with pytest.raises(ConfigError, match=r"^ffn: expected a number in \[0, 1\), got -0.1$"):
        PruneBertConfig(ffn=-0.1)
    with pytest.raises(ConfigError, match=r"prune-bert: heads: expected a fraction that leaves layer "
                                          r"'bert.encoder.layer.0' at least 1 of its 4 heads, got 0.9\. "
                                          r"Fix: use heads < 0.875, or scope: global \(min_heads\)"):
        prune_bert(tiny_encoder(), PruneBertConfig(heads=0.9, criterion="magnitude"))
    with pytest.raises(ConfigError, match=r"remove_heads\['bert.encoder.layer.1'\]: expected fewer than all 4 "
                                          r"heads, got \[0, 1, 2, 3\]\. Fix: keep at least one head per layer"):
        prune_bert(tiny_encoder(), PruneBertConfig(remove_heads={"bert.encoder.layer.1": [0, 1, 2, 3]},
                                                   criterion="magnitude"))
    with pytest.raises(ConfigError, match=r"expected head indices in \[0, 3\], got \[4\]"):
        prune_bert(tiny_encoder(), PruneBertConfig(remove_heads={"bert.encoder.layer.1": [4]}, criterion="random"))
    with pytest.raises(ConfigError, match=r"remove_heads: expected names of pruned BERT layers, got \['layer9'\]"):
        prune_bert(tiny_encoder(), PruneBertConfig(remove_heads={"layer9": [0]}, criterion="random"))
    with pytest.raises(ConfigError, match=r"prune-bert: expected a model with BERT-style layers .* got <Linear>"):
        prune_bert(nn.Linear(2, 2), PruneBertConfig(heads=0.5))
    with pytest.raises(ConfigError, match=r"hints: expected a finetune section with distill"):
        prune_bert(tiny_encoder(), PruneBertConfig(heads=0.5, hints=1.0, criterion="random"))


def test_explicit_heads_and_layers_it_cannot_handle_are_skipped_with_a_reason() -> None:
    model = tiny_encoder()
    layer1 = model.bert.encoder.layer[1]
    layer1.attention.self.query = nn.Sequential(nn.Linear(32, 4), nn.Linear(4, 32))  # e.g. factorized earlier
    ctx = StageContext()
    from modelpress.structured.bert_stage import apply_prune_bert

    apply_prune_bert(model, PruneBertConfig(include=["re:bert\\.encoder\\.layer\\.\\d+"], criterion="magnitude",
                                            remove_heads={"bert.encoder.layer.0": [1]}), ctx)
    assert [(s.layer, s.reason) for s in ctx.skipped] == [
        ("bert.encoder.layer.1", "a BERT-style layer whose projections are not plain nn.Linear (e.g. quantized or "
                                 "factorized)")]
    assert ctx.notes["layers"]["bert.encoder.layer.0"]["kept_heads"] == [0, 2, 3]
    assert model(*_inputs()).shape == (3, 32)


def test_recipe_hints_and_distillation_run_through_run_stage() -> None:
    config = parse_recipe({"stages": [{"type": "prune-bert", "heads": 0.5, "ffn": 0.5, "ffn_multiple": 8,
                                       "hints": 1.0, "finetune": {"epochs": 1, "batch_size": 16, "lr": 1e-3,
                                                                  "distill": {"loss": "cosine", "alpha": 1.0}}}]})
    task, teacher = _task(), tiny_encoder()
    ctx = StageContext(task=task, teacher=teacher, quiet=True)
    model = run_stage(tiny_encoder(), config.stages[0], ctx)
    assert ctx.objective is not None and len(ctx.objective.hints) == 2
    assert model.bert.encoder.layer[0].intermediate.dense.out_features == 32
    assert not torch.equal(model.bert.encoder.layer[0].output.dense.weight,  # trained after the cut
                           tiny_encoder().bert.encoder.layer[0].output.dense.weight[:, :32])


def test_pack_unpack_round_trip_is_bit_identical(tmp_path: Path) -> None:
    model = prune_bert(tiny_encoder(), PruneBertConfig(heads=0.25, ffn=0.75, ffn_multiple=8, scope="global",
                                                       criterion="output-norm", min_heads=3), _task())
    model = prune_bert(model, PruneBertConfig(remove_heads={"bert.encoder.layer.1": [0]}, criterion="magnitude"))
    with torch.no_grad():  # values that differ from the factory's, so the file's values must be the ones loaded
        for p in model.parameters():
            p.add_(0.01)
    path = tmp_path / "m.mpz"
    pack(model, path)
    restored = unpack(path).eval()
    assert torch.equal(model(*_inputs()), restored(*_inputs()))
    assert [tuple(layer_shape(la)) for _, la in bert_layers(restored)] == [
        tuple(layer_shape(la)) for _, la in bert_layers(model)]


def test_rebuilder_rejects_a_record_that_does_not_fit() -> None:
    record = {"type": "prune-bert", "layers": [{"name": "bert.encoder.layer.0", "heads": 8, "head_size": 8,
                                                "ffn": 16}]}
    with pytest.raises(FormatError, match=r"layer 'bert.encoder.layer.0': expected a BERT layer with at least 8 "
                                          r"heads of 8 and 16 FFN neurons, got <\(4, 8, 64\)>"):
        _rebuild_prune_bert(copy.deepcopy(tiny_encoder()), record)
