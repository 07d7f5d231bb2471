"""The ``prune-bert`` stage: score heads and FFN neurons of BERT layers, keep the best, make the layers smaller.

Steps: find the BERT-style layers (:func:`~modelpress.structured.bert.bert_layers`; other modules the include
patterns select are skipped with the reason), score their units (:mod:`~modelpress.structured.bert_importance`,
on the task's calibration inputs), decide how many each layer keeps (:func:`allocate`), cut the layers
(:func:`~modelpress.structured.bert.prune_heads_`, :func:`~modelpress.structured.bert.prune_ffn_`), record
``{"type": "prune-bert", "layers": [{name, heads, head_size, ffn}]}`` in the provenance (its rebuilder cuts the
rebuilt base model to those shapes, so ``unpack`` gives the same outputs) and the kept units per layer in
``ctx.notes["layers"]``. With ``hints`` and ``finetune: {distill: ...}`` the stage sets ``ctx.objective`` to the
distillation objective plus one hidden-state hint per pruned layer (teacher layer ↔ the same pruned layer).

Example:
    >>> import torch
    >>> from transformers import BertConfig, BertModel
    >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
    ...                             intermediate_size=64))
    >>> ctx = StageContext()
    >>> bert = apply_prune_bert(bert, PruneBertConfig(heads=0.5, ffn=0.5, criterion="magnitude", ffn_multiple=8), ctx)
    >>> ctx.notes["layers"]["encoder.layer.0"]["heads"], ctx.notes["layers"]["encoder.layer.0"]["ffn"]
    ('2/4', '32/64')
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError, FormatError
from modelpress.history import Skip
from modelpress.provenance import REBUILDERS, record_transform
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches
from modelpress.structured.bert import layer_shape, prune_ffn_, prune_heads_, why_not_bert_layer
from modelpress.structured.bert_config import BertScope, PruneBertConfig
from modelpress.structured.bert_importance import BertCriterion, unit_scores

__all__ = ["allocate", "apply_prune_bert", "prune_bert"]

Plan = dict[str, tuple[list[int], list[int]]]  # layer name -> (kept head indices, kept neuron indices), sorted


def _round_ffn(count: float, total: int, multiple: int | None) -> int:
    """``count`` rounded to the nearest multiple of ``multiple``, at least one multiple, at most ``total``."""
    if multiple is None:
        return max(1, min(total, round(count)))
    return min(total, multiple * max(1, round(count / multiple)))


def _top(scores: Tensor, count: int) -> list[int]:
    """Indices of the ``count`` highest scores, sorted (ties broken by index, for determinism)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:count])


def allocate(scores: dict[str, tuple[Tensor, Tensor]], config: PruneBertConfig) -> Plan:
    """The kept heads and neurons of each layer under ``config`` (ratios, scope, rounding, explicit removals).

    Example:
        >>> s = {"a": (torch.tensor([3.0, 1.0, 2.0, 0.5]), torch.arange(16.0)),
        ...      "b": (torch.tensor([9.0, 8.0, 7.0, 6.0]), torch.arange(16.0))}
        >>> allocate(s, PruneBertConfig(heads=0.5, ffn=0.5, ffn_multiple=4))["a"]
        ([0, 2], [8, 9, 10, 11, 12, 13, 14, 15])
        >>> allocate(s, PruneBertConfig(heads=0.5, scope="global"))["a"][0], allocate(s, PruneBertConfig(
        ...     heads=0.5, scope="global"))["b"][0]
        ([0], [0, 1, 2])
    """
    heads_n = {name: len(h) for name, (h, _) in scores.items()}
    ffn_n = {name: len(f) for name, (_, f) in scores.items()}
    if config.scope is BertScope.uniform:
        keep_heads = {name: round((1 - config.heads) * n) for name, n in heads_n.items()}
        keep_ffn = {name: _round_ffn((1 - config.ffn) * n, n, config.ffn_multiple) for name, n in ffn_n.items()}
        for name, kept in keep_heads.items():
            if kept < 1 and name not in config.remove_heads:
                raise ConfigError(f"{config.tag}: heads", f"a fraction that leaves layer {name!r} at least 1 of its "
                                  f"{heads_n[name]} heads", config.heads,
                                  f"use heads < {1 - 0.5 / heads_n[name]:.3g}, or scope: global (min_heads)")
    else:  # one ranking over all layers; the least important units go first, within each layer's floor
        keep_heads, keep_ffn = dict(heads_n), dict(ffn_n)
        floor = {name: min(config.min_heads, n) for name, n in heads_n.items()}
        ranked = sorted((float(s), name, i) for name, (h, _) in scores.items() for i, s in enumerate(h))
        remove = round(config.heads * sum(heads_n.values()))
        for _, name, _ in ranked:
            if remove <= 0:
                break
            if keep_heads[name] > floor[name]:
                keep_heads[name] -= 1
                remove -= 1
        all_ffn = torch.cat([f.float() for _, f in scores.values()])  # [sum F]
        remove_ffn = round(config.ffn * len(all_ffn))
        if remove_ffn:
            threshold = torch.sort(all_ffn).values[remove_ffn - 1]  # the largest removed score
            for name, (_, f) in scores.items():
                keep_ffn[name] = _round_ffn(int((f.float() > threshold).sum()), ffn_n[name], config.ffn_multiple)
        else:
            keep_ffn = {name: _round_ffn(n, n, config.ffn_multiple) for name, n in ffn_n.items()}
    plan: Plan = {}
    for name, (h, f) in scores.items():
        if name in config.remove_heads:  # explicit indices win over the ratio
            removed = set(config.remove_heads[name])
            if any(not 0 <= i < heads_n[name] for i in removed):
                raise ConfigError(f"{config.tag}: remove_heads[{name!r}]", f"head indices in [0, {heads_n[name] - 1}]",
                                  sorted(removed), f"layer {name!r} has {heads_n[name]} heads")
            if len(removed) >= heads_n[name]:
                raise ConfigError(f"{config.tag}: remove_heads[{name!r}]", f"fewer than all {heads_n[name]} heads",
                                  sorted(removed), "keep at least one head per layer")
            kept_heads = [i for i in range(heads_n[name]) if i not in removed]
        else:
            kept_heads = _top(h, keep_heads[name])
        plan[name] = (kept_heads, _top(f, keep_ffn[name]))
    return plan


def _select(model: nn.Module, config: PruneBertConfig) -> tuple[list[tuple[str, nn.Module]], list[Skip]]:
    """The BERT layers the config prunes, and skips (selected modules that are not BERT layers, exclusions)."""
    targets, skipped, seen = [], [], []
    for name, module in model.named_modules():
        reason = why_not_bert_layer(module)
        if config.include is not None and not any(matches(name, p) for p in config.include):
            continue
        if reason is None:
            seen.append(name)
            if any(matches(name, p) for p in config.exclude):
                skipped.append(Skip(name, "excluded by the stage's exclude patterns"))
            else:
                targets.append((name, module))
        elif config.include is not None and hasattr(module, "attention"):
            skipped.append(Skip(name or "<root>", reason))
    unknown = sorted(set(config.remove_heads) - {name for name, _ in targets})
    if unknown:
        raise ConfigError(f"{config.tag}: remove_heads", "names of pruned BERT layers", unknown,
                          f"use one of: {', '.join(n for n, _ in targets) or '(none)'}")
    if not targets and not seen:
        raise ConfigError(f"{config.tag}", "a model with BERT-style layers (attention.self.query/key/value, "
                          "intermediate.dense, output.dense)", f"<{type(model).__name__}>",
                          "use prune-channels for other models, or check the include patterns")
    return targets, skipped


def _params(layer: nn.Module) -> int:
    return sum(p.numel() for p in layer.parameters())


@stage(PruneBertConfig)
def apply_prune_bert(model: nn.Module, config: PruneBertConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``prune-bert`` (see the module docstring). Returns the model, changed in place."""
    targets, skipped = _select(model, config)
    ctx.skipped.extend(skipped)
    if config.hints is not None and (config.finetune is None or config.finetune.distill is None):
        raise ConfigError(f"{config.tag}: hints", "a finetune section with distill (hints are a distillation term)",
                          config.hints, "add finetune: {distill: {loss: cosine, alpha: 1.0}} or drop hints")
    batches: Any = []
    if config.criterion is BertCriterion.output_norm and targets:
        task = ctx.require_task(f"{config.tag}: criterion output-norm")
        batches = task.calibration_batches(config.calibration_batches, config.calibration_batch_size,
                                           seed=config.seed)
    plan = allocate(unit_scores(model, targets, batches, config.criterion, config.seed), config)
    notes: dict[str, Any] = {}
    records = []
    for name, layer in targets:
        before, (heads, d, ffn) = _params(layer), layer_shape(layer)
        kept_heads, kept_ffn = plan[name]
        if len(kept_heads) < heads:
            prune_heads_(layer, kept_heads, f"{config.tag}: {name}")
        if len(kept_ffn) < ffn:
            prune_ffn_(layer, kept_ffn, f"{config.tag}: {name}")
        records.append({"name": name, "heads": len(kept_heads), "head_size": d, "ffn": len(kept_ffn)})
        notes[name] = {"heads": f"{len(kept_heads)}/{heads}", "kept_heads": kept_heads,
                       "ffn": f"{len(kept_ffn)}/{ffn}", "params_before": before, "params_after": _params(layer)}
    if records:
        record_transform(model, {"type": "prune-bert", "layers": records})
    ctx.notes["layers"] = notes
    ctx.notes["criterion"] = config.criterion.value
    ctx.notes["params_before"] = sum(n["params_before"] for n in notes.values())
    ctx.notes["params_after"] = sum(n["params_after"] for n in notes.values())
    if config.hints is not None and targets:
        from modelpress.distill import DistillObjective, FeaturePair, TeacherSet

        if ctx.teacher is None:
            raise ConfigError(f"{config.tag}: hints", "a teacher (run() keeps the original model as one)", "<none>",
                              "run the stage through modelpress.run, or set ctx.teacher")
        pairs = [FeaturePair(student=name, teacher=name, weight=config.hints) for name, _ in targets]
        ctx.objective = DistillObjective(model, TeacherSet([ctx.teacher]), config.finetune.distill,  # type: ignore[union-attr]
                                         ctx.require_task(f"{config.tag}: hints"), hints=pairs)
    return model


def prune_bert(model: nn.Module, config: PruneBertConfig, task: Any = None) -> nn.Module:
    """Apply a ``prune-bert`` config outside a recipe (no fine-tuning); ``task`` supplies calibration inputs.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
        ...                             intermediate_size=64))
        >>> bert = prune_bert(bert, PruneBertConfig(heads=0.25, criterion="random", ffn_multiple=None))
        >>> bert.encoder.layer[0].attention.self.num_attention_heads
        3
    """
    return apply_prune_bert(model, config, StageContext(task=task))


@REBUILDERS.register("prune-bert")
def _rebuild_prune_bert(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Cut each recorded layer of the rebuilt base model to the recorded shapes (the values load later)."""
    for entry in record.get("layers", []):
        name = str(entry.get("name", ""))
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            layer = None
        reason = "no such layer" if layer is None else why_not_bert_layer(layer)
        shape = layer_shape(layer) if reason is None else None
        if shape is None or shape.head_size != entry["head_size"] or not (
                1 <= entry["heads"] <= shape.heads and 1 <= entry["ffn"] <= shape.ffn):
            raise FormatError(f"prune-bert transform: layer {name!r}", f"a BERT layer with at least {entry['heads']} "
                              f"heads of {entry['head_size']} and {entry['ffn']} FFN neurons",
                              f"<{reason or tuple(shape)}>",  # type: ignore[arg-type]
                              "the file and this modelpress version disagree on the architecture")
        if entry["heads"] < shape.heads:
            prune_heads_(layer, range(entry["heads"]))  # type: ignore[arg-type]
        if entry["ffn"] < shape.ffn:
            prune_ffn_(layer, range(entry["ffn"]))  # type: ignore[arg-type]
    return model
