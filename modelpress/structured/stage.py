"""The ``prune-channels`` stage: trace, score, choose, cut, record; and the ``prune_channels`` verb.

The handler traces the model on the task's example inputs (:mod:`modelpress.structured.trace`), scores every group
that can be pruned, chooses the removed units (:mod:`modelpress.structured.allocate`; with a ``target`` the ratio is
bisected on a copy until the pruned copy keeps that fraction of the FLOPs or latency), cuts them
(:mod:`modelpress.structured.surgery`) and records the transform so the file unpacks to the smaller layers. Blocked
and excluded groups go to ``ctx.skipped`` with the reason; ``ctx.notes["layers"]`` holds each changed layer's
weight shape before and after. With ``channels_last`` the model's 4-D weights are stored channels_last after the
cut and the record says so, so the unpacked model runs in the same memory format (oneDNN's small convs are faster
without a reorder around each). The stage's ``finetune`` (and ``finetune.distill``, from the unpruned model) run
after it through :func:`modelpress.recipe.run.run_stage`, so they train (in place) the channels_last model.

Example:
    >>> import torch
    >>> from modelpress.zoo.models import ResNetSmall
    >>> model = ResNetSmall(widths=(8, 16, 32))
    >>> model = prune_channels(model, PruneChannelsConfig(ratio=0.5), (torch.randn(1, 1, 28, 28),))
    >>> model.layer1[0].conv1.out_channels, model.fc.in_features, model(torch.randn(2, 1, 28, 28)).shape
    (4, 16, torch.Size([2, 10]))
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError
from modelpress.evaluate.latency import measure_latency
from modelpress.history import Skip
from modelpress.memory_format import store_channels_last
from modelpress.provenance import record_transform
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches
from modelpress.structured.allocate import choose_removals
from modelpress.structured.config import ChannelScope, PruneChannelsConfig, TargetMetric
from modelpress.structured.importance import ChannelCriterion, group_scores, mean_gradients
from modelpress.structured.surgery import remove_units
from modelpress.structured.trace import Trace, trace_channels
from modelpress.task import Task

__all__ = ["apply_prune_channels", "prune_channels"]


def _flops(model: nn.Module, inputs: tuple[Tensor, ...]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(*inputs)
    return float(counter.get_total_flops())


def _check_patterns(config: PruneChannelsConfig, trace: Trace, model: nn.Module) -> None:
    prunable = sorted({layer for g in trace.groups if not g.blocked for layer in g.layers})
    names = [name for name, _ in model.named_modules()]
    for field, patterns in [("exclude", config.exclude),
                            *((f"overrides[{i}].layers", o.layers) for i, o in enumerate(config.overrides))]:
        for pattern in patterns:
            if not any(matches(layer, pattern) for layer in prunable):
                known = any(matches(name, pattern) for name in names)
                raise ConfigError(f"{config.tag}: {field}", "a pattern matching a layer whose channels can be pruned",
                                  pattern, ("it names layers whose channels are blocked (see the skipped list); "
                                            if known else "no layer of the model has that name; ") +
                                  f"prunable layers: {', '.join(prunable[:12])}{' ...' if len(prunable) > 12 else ''}")


def _plan(config: PruneChannelsConfig, trace: Trace, scores: dict[int, Tensor], ratio: float) -> dict[int, list[int]]:
    index = sorted(scores)
    ratios: list[float | None] = []
    for i in index:
        group = trace.groups[i]
        own = next((o.ratio for o in config.overrides if any(matches(layer, p) for layer in group.layers
                                                               for p in o.layers)), None)
        ratios.append(own if own is not None else (ratio if config.scope is ChannelScope.uniform else None))
    chosen = choose_removals([scores[i] for i in index], ratios, [trace.groups[i].kind for i in index],
                             global_ratio=ratio if config.scope is ChannelScope.global_ else None,
                             max_ratio=config.max_ratio, round_to=config.round_to)
    return {index[k]: units for k, units in chosen.items()}


def _solve_target(model: nn.Module, config: PruneChannelsConfig, trace: Trace, scores: dict[int, Tensor],
                  inputs: tuple[Tensor, ...]) -> tuple[float, float]:
    """The smallest ratio (bisection, 10 steps) whose pruned copy keeps at most the target fraction; and that
    fraction as measured."""
    assert config.target is not None  # checked by the caller
    target = config.target
    batch = tuple(x[:1].expand(target.batch, *x.shape[1:]).contiguous() for x in inputs)

    def metric(m: nn.Module) -> float:
        if target.metric is TargetMetric.flops:
            return _flops(m, tuple(x[:1] for x in inputs))
        if config.channels_last:  # as the stage will leave it (the original too: a like-for-like fraction)
            m = copy.deepcopy(m).to(memory_format=torch.channels_last)
        return measure_latency(m, batch, warmup=2, runs=7).median_ms

    base = metric(model)
    low, high, fraction = 0.0, config.max_ratio, 1.0
    for _ in range(10):
        middle = (low + high) / 2
        candidate = copy.deepcopy(model)
        candidate_trace = trace_channels(candidate, inputs, config.attention.value)
        candidate, _ = remove_units(candidate, candidate_trace, _plan(config, trace, scores, middle))
        measured = metric(candidate) / base
        if measured <= target.fraction:
            high, fraction = middle, measured
        else:
            low = middle
    return high, fraction


def prune_channels(model: nn.Module, config: PruneChannelsConfig, example_inputs: tuple[Tensor, ...],
                   task: Task | None = None, ctx: StageContext | None = None) -> nn.Module:
    """Prune ``model``'s channels and heads per ``config`` (traced on ``example_inputs``; ``task`` gives the
    training batches of the taylor criterion). Returns the model (smaller layers in place, a new object only when
    the model itself is an attention layer). Skips and notes go to ``ctx`` if given."""
    ctx = ctx or StageContext()
    trace = trace_channels(model, example_inputs, config.attention.value)
    _check_patterns(config, trace, model)
    gradients = None
    if config.criterion is ChannelCriterion.taylor:
        if task is None:
            raise ConfigError(f"{config.tag}: criterion", "a task with training data for the taylor criterion",
                              "<none>", "pass task=, or use criterion l1, l2, fpgm, bn-scale or random")
        gradients = mean_gradients(model, task, config.calibration.batches, config.calibration.batch_size,
                                   config.seed)
    scores: dict[int, Tensor] = {}
    for i, group in enumerate(trace.groups):
        shown = ", ".join(group.layers) or ", ".join(f"{m}.{t}" for m, t, _ in group.slots[:3])
        if group.blocked:
            ctx.skipped.append(Skip(shown, f"{group.size} {group.kind} left whole: {group.blocked}"))
        elif any(matches(layer, p) for layer in group.layers for p in config.exclude):
            ctx.skipped.append(Skip(shown, "excluded by the stage's exclude patterns"))
        else:
            scores[i] = group_scores(model, group, config.criterion, gradients, config.seed)
    ratio = config.ratio
    if config.target is not None:
        ratio, reached = _solve_target(model, config, trace, scores, example_inputs)
        ctx.notes["target"] = {"metric": config.target.metric.value, "fraction": config.target.fraction,
                               "reached": round(reached, 4), "ratio": round(ratio, 4)}
    before = {name: list(m.weight.shape) for name, m in model.named_modules()
              if isinstance(getattr(m, "weight", None), Tensor)}
    before.update({name: list(m.in_proj_weight.shape) for name, m in model.named_modules()
                   if isinstance(m, nn.MultiheadAttention) or hasattr(m, "in_proj_weight")})
    plan = _plan(config, trace, scores, float(ratio or 0.0))
    model, record = remove_units(model, trace, plan)
    if config.channels_last:
        model = store_channels_last(model, record)
    if record["layers"] or config.channels_last:
        record_transform(model, record)
    layers: dict[str, Any] = {}
    for entry in record["layers"]:
        module = model.get_submodule(entry["name"]) if entry["name"] else model
        weight = getattr(module, "in_proj_weight", None)
        after = list((weight if weight is not None else module.weight).shape)
        layers[entry["name"] or "<root>"] = {"kind": entry["kind"], "before": before.get(entry["name"]),
                                             "after": after}
        if entry["kind"] == "attention":
            layers[entry["name"] or "<root>"]["heads"] = entry["args"]["num_heads"]
    ctx.notes["layers"] = layers
    ctx.notes["channels_last"] = config.channels_last
    ctx.notes["groups"] = {"prunable": len(scores), "pruned": len(plan), "blocked": sum(bool(g.blocked)
                                                                                      for g in trace.groups)}
    return model


@stage(PruneChannelsConfig)
def apply_prune_channels(model: nn.Module, config: PruneChannelsConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``prune-channels`` (traces on two of the task's examples).

    Example:
        >>> from modelpress.task import ClassificationTask
        >>> from modelpress.zoo.models import ResNetSmall
        >>> x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
        >>> ctx = StageContext(task=ClassificationTask("toy", x, y, x, y, 10))
        >>> model = apply_prune_channels(ResNetSmall((1, 8, 8), widths=(8, 16, 16)), PruneChannelsConfig(ratio=0.5),
        ...                              ctx)
        >>> ctx.notes["layers"]["layer1.0.conv1"]["after"], [s.layer for s in ctx.skipped]
        ([4, 4, 3, 3], ['fc'])
    """
    task = ctx.require_task(config.tag)
    return prune_channels(model, config, task.example_inputs(2), task, ctx)
