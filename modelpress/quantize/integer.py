"""The ``quantize`` stage: replace selected ``nn.Linear`` layers by integer runtime modules (modelpress.kernels).

Modes (:class:`QuantMode`):

- ``dynamic-int8``: W8A8, int8 weights per output channel, int8 activations per token computed at run time,
  integer GEMM (:class:`~modelpress.kernels.Int8DynamicLinear`); no calibration data needed;
- ``weight-int8``: int8 weights, float activations (:class:`~modelpress.kernels.Int8WeightOnlyLinear`);
- ``weight-int4``: 4-bit weights in groups of ``group_size`` input features
  (:class:`~modelpress.kernels.Int4WeightOnlyLinear`), optionally with MSE-optimal clipping per group, rounded to
  nearest (``method: rtn``) or by GPTQ (``method: gptq``, :mod:`modelpress.quantize.gptq`: error-compensating
  rounding with the Hessian of each layer's inputs on ``calibration_batches`` of the task's training split).

``bias_correction: true`` subtracts the expected output shift of the quantized weight, ``(W_q - W) E[x]``, from
each Linear's bias (``E[x]``: the layer's mean input on the calibration batches; layers without a bias are left as
they are). ``embedding_bits`` overrides the embedding tables' width (e.g. int8 tables in ``weight-int4`` mode).

The file then stores the integers (int8, or two 4-bit values per byte) and the scales. The structure change (which
layers became which module) is recorded in the provenance, so ``unpack`` rebuilds the same modules and loads the
stored integers: outputs match the packed model bit for bit. Layers that are not plain ``nn.Linear``, excluded,
empty, tied to another layer's weight, or (int4) whose input features the group size does not divide are skipped
with the reason. With ``embeddings: true`` the selected ``nn.Embedding`` tables are stored as integers too (int8 rows,
or int4 groups in ``weight-int4``): in a small transformer they are most of the file.

Example:
    >>> import torch
    >>> from modelpress.quantize import quantize_
    >>> from modelpress.zoo.models import LeNet300
    >>> model = quantize_(LeNet300(), QuantizeConfig(mode="dynamic-int8", exclude=["fc3"]))
    >>> type(model.fc1).__name__, type(model.fc3).__name__
    ('Int8DynamicLinear', 'Linear')
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import torch
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from torch import nn

from modelpress.config import StageConfig
from modelpress.errors import ConfigError, FormatError
from modelpress.history import Skip
from modelpress.kernels.int4_weight import Int4WeightOnlyLinear, kernel_supported
from modelpress.kernels.int8_dynamic import Int8DynamicLinear
from modelpress.kernels.int8_weight import Int8WeightOnlyLinear
from modelpress.kernels.quantized_embedding import QuantizedEmbedding
from modelpress.progress import progress_bar
from modelpress.provenance import REBUILDERS, record_transform, replace_module
from modelpress.quantize.gptq import GPTQOptions, collect_input_stats, gptq_quantize
from modelpress.quantize.lowbit import grouped_module
from modelpress.recipe.registry import StageContext, rule, stage
from modelpress.select import matches

__all__ = ["QuantMethod", "QuantMode", "QuantizeConfig", "apply_quantize", "select_linear_targets"]

_EXCLUDED = "excluded by the stage's exclude patterns"
_QUANTIZED = (Int8DynamicLinear, Int8WeightOnlyLinear, Int4WeightOnlyLinear, QuantizedEmbedding)


class QuantMode(StrEnum):
    """Which integer runtime module replaces a Linear."""

    dynamic_int8 = "dynamic-int8"
    weight_int8 = "weight-int8"
    weight_int4 = "weight-int4"


class QuantMethod(StrEnum):
    """How weight-int4 values are rounded."""

    rtn = "rtn"  # round to nearest, each group on its own
    gptq = "gptq"  # error-compensating, column by column, with the calibration Hessian


class QuantizeConfig(StageConfig, tag="quantize"):
    """Replace the selected Linear layers by integer modules of ``mode``.

    Example:
        >>> QuantizeConfig(mode="weight-int4", group_size=64).mode
        <QuantMode.weight_int4: 'weight-int4'>
    """

    mode: QuantMode = QuantMode.dynamic_int8
    group_size: int = Field(32, ge=2, le=4096, multiple_of=2, description="weight-int4: input features per "
                            "scale/zero point (the CPU kernel runs for 32, 64, 128, 256)")
    mse_clip: bool = Field(False, description="weight-int4: clip each group's range to minimize its squared error")
    include: tuple[str, ...] | None = Field(None, description="Linear layer name patterns; None: every Linear")
    exclude: tuple[str, ...] = Field((), description="layer name patterns left in float, e.g. the last layer")
    embeddings: bool = Field(False, description="also quantize nn.Embedding tables the patterns select: int8 rows "
                             "(int8 modes) or int4 groups of group_size (weight-int4)")
    embedding_bits: int | None = Field(None, description="4 or 8: width of the embedding tables; None: 4 in "
                                       "weight-int4, else 8")
    method: QuantMethod = Field(QuantMethod.rtn, description="weight-int4 rounding: rtn or gptq (needs a task)")
    gptq: GPTQOptions = GPTQOptions()
    bias_correction: bool = Field(False, description="subtract (W_q - W) E[x] from each Linear's bias (needs a task)")
    calibration_batches: int = Field(8, ge=1, le=10000, description="gptq / bias_correction: training batches seen")
    batch_size: int = Field(64, ge=1, le=65536)

    @model_validator(mode="after")
    def _check_method(self) -> QuantizeConfig:
        if self.method is QuantMethod.gptq and self.mode is not QuantMode.weight_int4:
            raise PydanticCustomError("quantize_method", "expected mode weight-int4 with method gptq (GPTQ rounds "
                                      f"int4 groups; mode {self.mode.value} takes method rtn)")
        if self.embedding_bits not in (None, 4, 8):
            raise PydanticCustomError("quantize_embedding_bits", "expected embedding_bits 4 (int4 groups) or 8 "
                                      f"(int8 rows), not {self.embedding_bits}")
        return self

    @property
    def table_bits(self) -> int:
        """Bits of quantized embedding tables: ``embedding_bits`` if set, else 4 in weight-int4 and 8 otherwise."""
        if self.embedding_bits is not None:
            return self.embedding_bits
        return 4 if self.mode is QuantMode.weight_int4 else 8


def _tied(model: nn.Module) -> set[int]:
    """Ids of the parameters reachable under more than one name (tied weights)."""
    seen: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen[id(param)] = seen.get(id(param), 0) + 1
    return {key for key, count in seen.items() if count > 1}


def _why_not(module: nn.Module, config: QuantizeConfig, tied: set[int]) -> str | None:
    """Why a selected Linear/Embedding cannot be quantized (None: it can)."""
    if isinstance(module, _QUANTIZED):
        return f"already quantized ({type(module).__name__})"
    if type(module) not in (nn.Linear, nn.Embedding):
        return (f"{type(module).__name__} is a subclass whose parent may use its weight directly (quantize "
                "replaces plain nn.Linear and nn.Embedding)")
    if module.weight.numel() == 0:
        return "its weight is empty"
    if id(module.weight) in tied:
        return "its weight is tied to another layer's (quantizing it would untie them)"
    width = module.in_features if isinstance(module, nn.Linear) else module.embedding_dim
    if isinstance(module, nn.Embedding) and (module.max_norm is not None or module.sparse):
        return "an Embedding with max_norm or sparse gradients (renormalizes its weight in the forward)"
    if config.mode is QuantMode.weight_int4 and width % config.group_size:
        return f"group_size {config.group_size} does not divide its {width} input features"
    return None


def select_linear_targets(model: nn.Module, config: QuantizeConfig) -> tuple[list[tuple[str, nn.Module]], list[Skip]]:
    """The plain ``nn.Linear`` layers (and, with ``embeddings``, ``nn.Embedding`` tables) ``config`` selects, and
    the skipped ones with reasons; a :class:`ConfigError` if the patterns select no Linear layer at all.

    Example:
        >>> from modelpress.zoo.models import LeNet300
        >>> targets, skipped = select_linear_targets(LeNet300(), QuantizeConfig(include=["fc1", "fc2"]))
        >>> [name for name, _ in targets], skipped
        (['fc1', 'fc2'], [])
    """
    kinds: tuple[type, ...] = (nn.Linear, nn.Embedding) if config.embeddings else (nn.Linear,)
    kinds += _QUANTIZED
    tied = _tied(model)
    targets: list[tuple[str, nn.Module]] = []
    skipped: list[Skip] = []
    layers: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, kinds):
            continue
        shown = name or "<root>"
        layers.append(shown)
        if config.include is not None and not any(matches(name, p) for p in config.include):
            continue
        reason = _EXCLUDED if any(matches(name, p) for p in config.exclude) else _why_not(module, config, tied)
        if reason is None:
            targets.append((name, module))
        else:
            skipped.append(Skip(shown, reason))
    if not targets and not skipped:
        raise ConfigError("quantize.include", "patterns matching at least one Linear layer", list(config.include or []),
                          f"use names among: {', '.join(layers[:20]) or '<the model has no Linear layer>'}")
    return targets, skipped


def _build(mode: QuantMode, layer: dict[str, Any], group_size: int) -> nn.Module:
    """An empty integer module for one transform record entry (the values load later)."""
    if layer.get("kind") == "embedding":
        bits = layer.get("bits", 4 if mode is QuantMode.weight_int4 else 8)
        if bits not in (4, 8):
            raise FormatError(f"quantize transform: layer {layer.get('name')!r}: bits", "4 or 8", bits,
                              "the file is corrupted")
        return QuantizedEmbedding(layer["num_embeddings"], layer["embedding_dim"], bits, group_size)
    in_features, out_features, bias = layer["in_features"], layer["out_features"], bool(layer.get("bias", True))
    if mode is QuantMode.dynamic_int8:
        return Int8DynamicLinear(in_features, out_features, bias)
    if mode is QuantMode.weight_int8:
        return Int8WeightOnlyLinear(in_features, out_features, bias)
    return Int4WeightOnlyLinear(in_features, out_features, group_size, bias)


def _convert(module: nn.Module, config: QuantizeConfig, hessian: torch.Tensor | None = None) -> tuple[nn.Module,
                                                                                                  dict[str, Any]]:
    """The integer module replacing ``module`` and its transform record entry (without the name); ``hessian``
    ``[in, in]``: GPTQ rounding."""
    if isinstance(module, nn.Embedding):
        new: nn.Module = QuantizedEmbedding.from_embedding(module, config.table_bits, config.group_size)
        entry = {"kind": "embedding", "num_embeddings": module.num_embeddings, "embedding_dim": module.embedding_dim}
        if config.embedding_bits is not None:
            entry["bits"] = config.table_bits
        return new, entry
    assert isinstance(module, nn.Linear)
    if config.mode is QuantMode.dynamic_int8:
        new = Int8DynamicLinear.from_linear(module)
    elif config.mode is QuantMode.weight_int8:
        new = Int8WeightOnlyLinear.from_linear(module)
    elif hessian is not None:
        g = config.gptq
        r = gptq_quantize(module.weight, hessian, 4, config.group_size, g.damp, g.block_size, g.act_order,
                          config.mse_clip)
        new = grouped_module(module, r.u, r.scale, r.zero, config.group_size)
    else:
        new = Int4WeightOnlyLinear.from_linear(module, config.group_size, config.mse_clip)
    return new, {"kind": "linear", "in_features": module.in_features, "out_features": module.out_features,
                 "bias": module.bias is not None}


def _calibrate(model: nn.Module, targets: list[tuple[str, nn.Module]], config: QuantizeConfig,
               ctx: StageContext) -> dict[str, Any]:
    """Input statistics of the target Linear layers on the training split, when GPTQ or bias correction need them
    (one pass, the float model's activations)."""
    if config.method is not QuantMethod.gptq and not config.bias_correction:
        return {}
    task = ctx.require_task(f"quantize: {'gptq' if config.method is QuantMethod.gptq else 'bias_correction'}")
    names = [name for name, module in targets if isinstance(module, nn.Linear)]
    batches = task.calibration_batches(config.calibration_batches, config.batch_size, seed=ctx.seed)
    return collect_input_stats(model, names, batches, hessian=config.method is QuantMethod.gptq)


@torch.no_grad()
def _correct_bias(new: nn.Module, old: nn.Module, mean: torch.Tensor) -> bool:
    """Subtract the expected output shift ``(W_q - W) E[x]`` ``[out]`` from ``new``'s bias; False if it has none."""
    bias = getattr(new, "bias", None)
    if not isinstance(old, nn.Linear) or bias is None:
        return False
    bias.sub_((new.dequantized_weight() - old.weight.detach().float()) @ mean)
    return True


@stage(QuantizeConfig)
def apply_quantize(model: nn.Module, config: QuantizeConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``quantize``: replace the selected layers, record the structure change, notes and skips."""
    targets, skipped = select_linear_targets(model, config)
    ctx.skipped.extend(skipped)
    layers: list[dict[str, Any]] = []
    no_kernel: list[str] = []
    stats = _calibrate(model, targets, config, ctx)
    corrected: list[str] = []
    with progress_bar(f"quantize ({config.method.value})", total=len(targets), quiet=ctx.quiet) as advance:
        for name, module in targets:
            use_gptq = config.method is QuantMethod.gptq and isinstance(module, nn.Linear) and name in stats
            new, entry = _convert(module, config, stats[name].hessian() if use_gptq else None)
            if config.bias_correction and name in stats and _correct_bias(new, module, stats[name].mean()):
                corrected.append(name or "<root>")
            layers.append({"name": name, **entry})
            if isinstance(new, Int4WeightOnlyLinear) and not kernel_supported(new.out_features, config.group_size):
                no_kernel.append(name or "<root>")
            model = replace_module(model, name, new.eval())
            advance()
    if layers:
        record = {"type": "quantize", "mode": config.mode.value, "layers": layers}
        if config.mode is QuantMode.weight_int4:
            record["group_size"] = config.group_size
        record_transform(model, record)
    ctx.notes["mode"] = config.mode.value
    if config.method is QuantMethod.gptq or config.bias_correction:
        ctx.notes["method"] = config.method.value
        ctx.notes["calibration_rows"] = max((acc.count for acc in stats.values()), default=0)
    if config.bias_correction:
        ctx.notes["bias_corrected"] = corrected
    ctx.notes["layers"] = [layer["name"] or "<root>" for layer in layers]
    if config.mode is QuantMode.weight_int4:
        ctx.notes["group_size"] = config.group_size
        ctx.notes["dequantize_only"] = no_kernel  # stored as int4, but the CPU kernel cannot run these shapes
    return model


@REBUILDERS.register("quantize")
def _rebuild_quantize(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded Linear by an (empty) integer module of the recorded mode; the integers load later."""
    try:
        mode = QuantMode(record.get("mode"))
    except ValueError:
        raise FormatError("quantize transform: mode", f"one of {[m.value for m in QuantMode]}", record.get("mode"),
                          "this file needs a newer modelpress") from None
    group_size = record.get("group_size", 32)
    for layer in record.get("layers", []):
        name = str(layer.get("name", ""))
        try:
            module = model.get_submodule(name)
        except AttributeError:
            module = None
        embedding = layer.get("kind") == "embedding"
        keys = ("num_embeddings", "embedding_dim") if embedding else ("out_features", "in_features")
        shape = tuple(layer.get(k) for k in keys)
        if type(module) is not (nn.Embedding if embedding else nn.Linear) or tuple(module.weight.shape) != shape:
            raise FormatError(f"quantize transform: layer {name!r}",
                              f"{'an Embedding' if embedding else 'a Linear'} of shape {list(shape)}",
                              f"<{type(module).__name__}>", "the file and this modelpress version disagree on the "
                              "architecture")
        width = shape[1]
        if (mode is QuantMode.weight_int4) and (not isinstance(group_size, int) or group_size < 2
                                                or group_size % 2 or width % group_size):
            raise FormatError(f"quantize transform: layer {name!r}: group_size", f"an even divisor of {width}",
                              group_size, "the file is corrupted")
        new = _build(mode, layer, group_size)
        model = replace_module(model, name, new.eval())
    return model


# Stages whose output layers hold integer weights (no trainable float weights, float32 scales and biases).
INTEGER_STAGE_TAGS = ("quantize", "quantize-mixed")


@rule
def _quantize_rules(stages: Sequence[StageConfig]) -> list[str]:
    problems = []
    for i, s in enumerate(stages):
        if s.tag in INTEGER_STAGE_TAGS and s.finetune is not None:
            problems.append(f"stages[{i}].finetune: expected no fine-tuning of integer layers (they hold no trainable "
                            "weights), got a finetune section. Fix: fine-tune in an earlier stage")
        if s.tag == "cast" and any(q.tag in INTEGER_STAGE_TAGS for q in stages[:i]):
            problems.append(f"stages[{i}]: expected no cast after an integer quantize stage (its layers keep float32 "
                            "scales and biases), got a cast stage. Fix: drop the cast, or quantize the remaining "
                            "layers too")
    return problems
