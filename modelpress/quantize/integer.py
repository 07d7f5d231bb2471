"""The ``quantize`` stage: replace selected ``nn.Linear`` layers by integer runtime modules (modelpress.kernels).

Modes (:class:`QuantMode`):

- ``dynamic-int8``: W8A8, int8 weights per output channel, int8 activations per token computed at run time,
  integer GEMM (:class:`~modelpress.kernels.Int8DynamicLinear`); no calibration data needed;
- ``weight-int8``: int8 weights, float activations (:class:`~modelpress.kernels.Int8WeightOnlyLinear`);
- ``weight-int4``: 4-bit weights in groups of ``group_size`` input features
  (:class:`~modelpress.kernels.Int4WeightOnlyLinear`), optionally with MSE-optimal clipping per group.

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

from pydantic import Field
from torch import nn

from modelpress.config import StageConfig
from modelpress.errors import ConfigError, FormatError
from modelpress.history import Skip
from modelpress.kernels.int4_weight import Int4WeightOnlyLinear, kernel_supported
from modelpress.kernels.int8_dynamic import Int8DynamicLinear
from modelpress.kernels.int8_weight import Int8WeightOnlyLinear
from modelpress.kernels.quantized_embedding import QuantizedEmbedding
from modelpress.provenance import REBUILDERS, record_transform, replace_module
from modelpress.recipe.registry import StageContext, rule, stage
from modelpress.select import matches

__all__ = ["QuantMode", "QuantizeConfig", "apply_quantize", "select_linear_targets"]

_EXCLUDED = "excluded by the stage's exclude patterns"
_QUANTIZED = (Int8DynamicLinear, Int8WeightOnlyLinear, Int4WeightOnlyLinear, QuantizedEmbedding)


class QuantMode(StrEnum):
    """Which integer runtime module replaces a Linear."""

    dynamic_int8 = "dynamic-int8"
    weight_int8 = "weight-int8"
    weight_int4 = "weight-int4"


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

    @property
    def embedding_bits(self) -> int:
        """Bits of quantized embedding tables in this mode."""
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
        bits = 4 if mode is QuantMode.weight_int4 else 8
        return QuantizedEmbedding(layer["num_embeddings"], layer["embedding_dim"], bits, group_size)
    in_features, out_features, bias = layer["in_features"], layer["out_features"], bool(layer.get("bias", True))
    if mode is QuantMode.dynamic_int8:
        return Int8DynamicLinear(in_features, out_features, bias)
    if mode is QuantMode.weight_int8:
        return Int8WeightOnlyLinear(in_features, out_features, bias)
    return Int4WeightOnlyLinear(in_features, out_features, group_size, bias)


def _convert(module: nn.Module, config: QuantizeConfig) -> tuple[nn.Module, dict[str, Any]]:
    """The integer module replacing ``module`` and its transform record entry (without the name)."""
    if isinstance(module, nn.Embedding):
        new: nn.Module = QuantizedEmbedding.from_embedding(module, config.embedding_bits, config.group_size)
        return new, {"kind": "embedding", "num_embeddings": module.num_embeddings,
                     "embedding_dim": module.embedding_dim}
    assert isinstance(module, nn.Linear)
    if config.mode is QuantMode.dynamic_int8:
        new = Int8DynamicLinear.from_linear(module)
    elif config.mode is QuantMode.weight_int8:
        new = Int8WeightOnlyLinear.from_linear(module)
    else:
        new = Int4WeightOnlyLinear.from_linear(module, config.group_size, config.mse_clip)
    return new, {"kind": "linear", "in_features": module.in_features, "out_features": module.out_features,
                 "bias": module.bias is not None}


@stage(QuantizeConfig)
def apply_quantize(model: nn.Module, config: QuantizeConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``quantize``: replace the selected layers, record the structure change, notes and skips."""
    targets, skipped = select_linear_targets(model, config)
    ctx.skipped.extend(skipped)
    layers: list[dict[str, Any]] = []
    no_kernel: list[str] = []
    for name, module in targets:
        new, entry = _convert(module, config)
        layers.append({"name": name, **entry})
        if isinstance(new, Int4WeightOnlyLinear) and not kernel_supported(new.out_features, config.group_size):
            no_kernel.append(name or "<root>")
        model = replace_module(model, name, new.eval())
    if layers:
        record = {"type": "quantize", "mode": config.mode.value, "layers": layers}
        if config.mode is QuantMode.weight_int4:
            record["group_size"] = config.group_size
        record_transform(model, record)
    ctx.notes["mode"] = config.mode.value
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


@rule
def _quantize_rules(stages: Sequence[StageConfig]) -> list[str]:
    problems = []
    for i, s in enumerate(stages):
        if isinstance(s, QuantizeConfig) and s.finetune is not None:
            problems.append(f"stages[{i}].finetune: expected no fine-tuning of integer layers (they hold no trainable "
                            "weights), got a finetune section. Fix: fine-tune in an earlier stage")
        if s.tag == "cast" and any(isinstance(q, QuantizeConfig) for q in stages[:i]):
            problems.append(f"stages[{i}]: expected no cast after an integer quantize stage (its layers keep float32 "
                            "scales and biases), got a cast stage. Fix: drop the cast, or quantize the remaining "
                            "layers too")
    return problems
