"""The ``quantize-static`` stage: static W8A8 for Linear layers, with input ranges calibrated on the task's
``calibration_batches`` (training split only), and int8 per-channel weights for Conv2d layers.

One pass over ``calibration_batches`` batches records, per selected Linear layer, the range of its inputs with an
observer (``minmax``: the running min and max, or ``percentile``: a symmetric range at the ``percentile`` of ``|x|``,
which clips rare outliers). Then:

- ``nn.Linear`` -> :class:`~modelpress.kernels.static_int8.StaticInt8Linear`: int8 x int8 -> int32 GEMM
  (``torch._int_mm``), inputs quantized with the calibrated scale;
- ``nn.Conv2d`` -> :class:`~modelpress.kernels.quantized_conv.QuantizedConv2d`: int8 per-output-channel weights
  stored as integers, **computed in float32** (dequantized once on load). Convolutions are NOT executed in integer
  arithmetic: the only integer conv path that paid on this CPU needs torch's deprecated quantized engine
  (``quint8``/``qint8`` tensors), which modelpress does not build on, and ``torch._int_mm`` over unfolded patches was
  3-4x slower than the float32 convolution (measured on LeNet-5's layers). The file still stores the integers.

``ctx.notes["runtimes"]`` says per layer which runtime it got. The structure change is recorded
(``{"type": "quantize-static"}``) so ``unpack`` rebuilds the modules and loads the integers and scales: the unpacked
model's outputs equal the packed one's.

Example:
    >>> import torch
    >>> from modelpress.recipe.registry import StageContext
    >>> from modelpress.task import ClassificationTask
    >>> x = torch.randn(256, 1, 6, 6); y = (x.mean((1, 2, 3)) > 0).long()
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 2))
    >>> ctx = StageContext(task=ClassificationTask("toy", x, y, x, y, num_classes=2))
    >>> model = apply_static(model, StaticQuantizeConfig(calibration_batches=2), ctx)
    >>> [type(m).__name__ for m in model], ctx.notes["calibration_examples"]
    (['QuantizedConv2d', 'Flatten', 'StaticInt8Linear'], 128)
    >>> ctx.notes["runtimes"]["0"]
    'int8 weights stored, float32 conv (not integer arithmetic)'
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from modelpress.config import StageConfig
from modelpress.eval_mode import evaluating
from modelpress.history import Skip
from modelpress.kernels.int8_dynamic import quantize_per_channel
from modelpress.kernels.quantized_conv import QuantizedConv2d, conv_from_record
from modelpress.kernels.static_int8 import StaticInt8Linear
from modelpress.provenance import REBUILDERS, rebuild_layers, record_transform, replace_module
from modelpress.quantize.observers import MinMaxObserver, Observer, PercentileObserver
from modelpress.quantize.qat import QATConfig, select_qat_targets
from modelpress.recipe.registry import StageContext, rule, stage

__all__ = ["ActivationObserver", "StaticQuantizeConfig", "apply_static", "calibrate_ranges"]

# What each converted layer runs as (ctx.notes["runtimes"]).
LINEAR_RUNTIME = "int8 x int8 -> int32 (torch._int_mm), calibrated input scale"
CONV_RUNTIME = "int8 weights stored, float32 conv (not integer arithmetic)"


class ActivationObserver(StrEnum):
    """How a calibrated activation range is chosen."""

    minmax = "minmax"
    percentile = "percentile"


class StaticQuantizeConfig(StageConfig, tag="quantize-static"):
    """Static W8A8 of the selected Linear layers (calibrated input ranges); int8 weights for the Conv2d layers.

    Example:
        >>> StaticQuantizeConfig(observer="percentile").calibration_batches
        8
    """

    calibration_batches: int = Field(8, ge=1, le=10000, description="batches of the task's training split observed")
    batch_size: int = Field(64, ge=1, le=65536)
    observer: ActivationObserver = ActivationObserver.minmax
    percentile: float = Field(99.99, gt=0, le=100, description="percentile observer: the |x| quantile kept")
    include: tuple[str, ...] | None = Field(None, description="layer name patterns; None: every Linear and Conv2d")
    exclude: tuple[str, ...] = Field((), description="layer name patterns left in float")


def _observer(config: StaticQuantizeConfig) -> Observer:
    if config.observer is ActivationObserver.percentile:
        return PercentileObserver(config.percentile)
    return MinMaxObserver()


@torch.no_grad()
def calibrate_ranges(model: nn.Module, names: Sequence[str], batches: Any,
                     config: StaticQuantizeConfig) -> tuple[dict[str, tuple[Tensor, Tensor]], int]:
    """Input ranges of the layers at ``names`` over ``batches`` (input tuples); returns the ranges and the number of
    examples seen.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2))
        >>> ranges, n = calibrate_ranges(model, ["0"], [(torch.tensor([[-1.0, 3.0]]),)], StaticQuantizeConfig())
        >>> ranges["0"], n
        ((tensor(-1.), tensor(3.)), 1)
    """
    observers: dict[str, Observer] = {}
    handles = []
    for name in names:
        module = model.get_submodule(name)

        def hook(mod: nn.Module, args: tuple[Tensor, ...], out: Tensor, name: str = name) -> None:
            observers.setdefault(name, _observer(config)).update(args[0])

        handles.append(module.register_forward_hook(hook))
    seen = 0
    with evaluating(model, handles):
        for inputs in batches:
            model(*inputs)
            seen += int(inputs[0].shape[0])
    return {key: obs.min_max() for key, obs in observers.items()}, seen


@stage(StaticQuantizeConfig)
def apply_static(model: nn.Module, config: StaticQuantizeConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``quantize-static``: calibrate on the training split, replace the layers, record them."""
    task = ctx.require_task("quantize-static: calibration")
    selection = QATConfig(include=config.include, exclude=config.exclude)
    names, skipped = select_qat_targets(model, selection)
    ctx.skipped.extend(skipped)
    linears = [name for name in names if isinstance(model.get_submodule(name), nn.Linear)]
    batches = task.calibration_batches(config.calibration_batches, config.batch_size, seed=ctx.seed)
    ranges, seen = calibrate_ranges(model, linears, batches, config)  # only the Linear layers need input ranges
    layers: list[dict[str, Any]] = []
    runtimes: dict[str, str] = {}
    for name in names:
        module = model.get_submodule(name)
        if isinstance(module, nn.Conv2d):
            # weight [out, in / groups, kh, kw] -> rows [out, rest]: one symmetric int8 scale per output channel
            q, scale = quantize_per_channel(module.weight.detach().reshape(module.out_channels, -1))
            new: nn.Module = QuantizedConv2d.from_integers(module, q.reshape(module.weight.shape), scale)
            layers.append({"name": name, "kind": "conv2d", **new.config()})
            runtimes[name] = CONV_RUNTIME
        elif name not in ranges:
            ctx.skipped.append(Skip(name, "not called by the model's forward on the calibration batches"))
            continue
        else:
            new = StaticInt8Linear.from_linear(module, ranges[name])
            layers.append({"name": name, "kind": "linear", "in_features": module.in_features,
                           "out_features": module.out_features, "bias": module.bias is not None})
            runtimes[name] = LINEAR_RUNTIME
        replace_module(model, name, new.eval())
    if layers:
        record_transform(model, {"type": "quantize-static", "layers": layers})
    ctx.notes.update(layers=[layer["name"] for layer in layers], runtimes=runtimes, calibration_examples=seen,
                     observer=config.observer.value)
    return model


@REBUILDERS.register("quantize-static")
def _rebuild_static(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded layer by an empty runtime module (``QuantizedConv2d`` or ``StaticInt8Linear``); the
    integers and scales load later."""
    return rebuild_layers(model, record, {"conv2d": conv_from_record, "linear": _linear_from_record},
                          "quantize-static")


def _linear_from_record(module: nn.Module | None, layer: dict[str, Any]) -> StaticInt8Linear | None:
    shape = [layer.get("out_features"), layer.get("in_features")]
    if type(module) is not nn.Linear or list(module.weight.shape) != shape:
        return None
    return StaticInt8Linear(shape[1], shape[0], bool(layer.get("bias", True)))


@rule
def _static_rules(stages: Sequence[StageConfig]) -> list[str]:
    problems = []
    for i, s in enumerate(stages):
        if isinstance(s, StaticQuantizeConfig) and s.finetune is not None:
            problems.append(f"stages[{i}].finetune: expected no fine-tuning of static int8 layers (they hold no "
                            "trainable weights), got a finetune section. Fix: fine-tune in an earlier stage, or use "
                            "the qat stage")
        if s.tag == "cast" and any(isinstance(q, StaticQuantizeConfig) for q in stages[:i]):
            problems.append(f"stages[{i}]: expected no cast after a quantize-static stage (its layers keep float32 "
                            "scales), got a cast stage. Fix: put the cast before it")
    return problems
