"""The ``qat`` stage: quantization-aware training of the selected Linear/Conv2d weights, then a real integer model.

The handler wraps the selected layers in fake-quant modules (:mod:`modelpress.quantize.fake`: LSQ steps per output
channel, or ternary/binary weights, optionally LSQ-quantized inputs), and the stage's ``finetune`` section trains the
model with them (the one loop; the STE passes gradients through the rounding, LSQ's steps are trained too). When
that training ends (``on_train_end`` of the :class:`QATConverter` callback the handler leaves in the context; at
once if the stage has no ``finetune``) every wrapper is replaced by an integer runtime module holding exactly the
integers and per-channel scales the fake quantizer computed:

- ``nn.Linear``, 8-bit LSQ -> :class:`~modelpress.kernels.Int8DynamicLinear` (int8 GEMM; its inputs are quantized
  per token at run time, so learned input steps, if any, are dropped);
- ``nn.Linear``, fewer bits / ternary / binary -> :class:`~modelpress.kernels.Int8WeightOnlyLinear` holding the
  levels (float activations);
- ``nn.Conv2d`` -> :class:`~modelpress.kernels.quantized_conv.QuantizedConv2d`, which stores the levels but
  **computes in float32** (dequantized once on load; no integer conv in eager torch on CPU).

The integer tensors hold only the trained levels (e.g. -7..7 for 4 bits, -1..1 ternary), which the file's codecs
entropy-code to about that many bits per weight. The structure change goes to the provenance (``{"type": "qat"}``),
so ``unpack`` rebuilds the same modules and the file reproduces the model's outputs exactly.

Example:
    >>> import torch
    >>> from modelpress.recipe.registry import StageContext
    >>> from modelpress.zoo.models import LeNet5
    >>> model = apply_qat(LeNet5(), QATConfig(bits=4), StageContext())  # no finetune: converted at once
    >>> type(model.conv1).__name__, type(model.fc1).__name__, int(model.fc1.weight_int8.abs().max()) <= 7
    ('QuantizedConv2d', 'Int8WeightOnlyLinear', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field
from torch import nn

from modelpress.config import StageConfig
from modelpress.errors import ConfigError
from modelpress.history import Skip
from modelpress.kernels.int8_dynamic import Int8DynamicLinear
from modelpress.kernels.int8_weight import Int8WeightOnlyLinear
from modelpress.kernels.quantized_conv import QuantizedConv2d, conv_from_record
from modelpress.provenance import REBUILDERS, LayerBuilder, rebuild_layers, record_transform, replace_module
from modelpress.quantize.fake import WeightScheme, apply_fake_quant
from modelpress.recipe.registry import StageContext, rule, stage
from modelpress.select import matches
from modelpress.train.callbacks import Callback, TrainState

__all__ = ["QATConfig", "QATConverter", "apply_qat", "convert_fake_quant", "select_qat_targets"]


class QATConfig(StageConfig, tag="qat"):
    """Quantization-aware training of the selected Linear/Conv2d weights; an integer model at the end.

    Example:
        >>> QATConfig(scheme="ternary").weight_bits, QATConfig(bits=4).weight_bits
        (2, 4)
    """

    scheme: WeightScheme = WeightScheme.lsq
    bits: int | None = Field(None, ge=2, le=8, description="lsq: bits per weight (default 4); not allowed with "
                             "ternary/binary, whose levels are fixed")
    activation_bits: int | None = Field(None, ge=2, le=8, description="also fake-quantize the layers' inputs while "
                                        "training (LSQ, per tensor); the integer model does not keep them (see docs)")
    include: tuple[str, ...] | None = Field(None, description="layer name patterns; None: every Linear and Conv2d")
    exclude: tuple[str, ...] = Field((), description="layer name patterns left in float")

    @property
    def weight_bits(self) -> int:
        """Bits of information per weight: ``bits`` (lsq, default 4), 2 (ternary) or 1 (binary)."""
        if self.scheme is WeightScheme.ternary:
            return 2
        if self.scheme is WeightScheme.binary:
            return 1
        return self.bits if self.bits is not None else 4


def _why_not(name: str, module: nn.Module, tied: set[int]) -> str | None:
    """Why a selected layer cannot be trained with fake quantization (None: it can)."""
    if not name:
        return "the model itself is the layer (a wrapper cannot replace the root in place)"
    if module.weight.numel() == 0:
        return "its weight is empty"
    if id(module.weight) in tied:
        return "its weight is tied to another layer's (quantizing it would untie them)"
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        return f"padding_mode {module.padding_mode!r} (the integer conv module pads with zeros)"
    return None


def select_qat_targets(model: nn.Module, config: QATConfig) -> tuple[list[str], list[Skip]]:
    """Names of the plain ``nn.Linear``/``nn.Conv2d`` layers ``config`` selects, and the skipped ones with reasons;
    a :class:`ConfigError` if the patterns select none.

    Example:
        >>> from modelpress.zoo.models import LeNet5
        >>> select_qat_targets(LeNet5(), QATConfig(exclude=["fc2"]))
        (['conv1', 'conv2', 'fc1'], [Skip(layer='fc2', reason="excluded by the stage's exclude patterns")])
    """
    seen: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen[id(param)] = seen.get(id(param), 0) + 1
    tied = {key for key, count in seen.items() if count > 1}
    names: list[str] = []
    skipped: list[Skip] = []
    layers: list[str] = []
    for name, module in model.named_modules():
        if type(module) not in (nn.Linear, nn.Conv2d):
            continue
        layers.append(name or "<root>")
        if config.include is not None and not any(matches(name, p) for p in config.include):
            continue
        excluded = any(matches(name, p) for p in config.exclude)
        reason = "excluded by the stage's exclude patterns" if excluded else _why_not(name, module, tied)
        if reason is None:
            names.append(name)
        else:
            skipped.append(Skip(name or "<root>", reason))
    if not names and not skipped:
        raise ConfigError("qat.include", "patterns matching at least one Linear or Conv2d layer",
                          list(config.include or []),
                          f"use names among: {', '.join(layers[:20]) or '<the model has no Linear or Conv2d>'}")
    return names, skipped


def _runtime(wrapper: nn.Module, dynamic: bool) -> tuple[nn.Module, dict[str, Any]]:
    """The integer module replacing one fake-quant wrapper, and its provenance entry (without the name)."""
    layer = wrapper.layer
    q, scale = wrapper.weight_quant.integers(layer.weight)  # int8 levels (weight's shape), float32 [out]
    if isinstance(layer, nn.Conv2d):
        conv = QuantizedConv2d.from_integers(layer, q, scale)
        return conv, {"kind": "conv2d", **conv.config()}
    cls = Int8DynamicLinear if dynamic else Int8WeightOnlyLinear
    module = cls(layer.in_features, layer.out_features, layer.bias is not None)
    module.weight_int8.copy_(q)
    module.weight_scale.copy_(scale)
    if layer.bias is not None:
        module.bias.copy_(layer.bias.detach().float())
    kind = "linear-int8-dynamic" if dynamic else "linear-int8-weight"
    return module, {"kind": kind, "in_features": layer.in_features, "out_features": layer.out_features,
                    "bias": layer.bias is not None}


def convert_fake_quant(model: nn.Module, names: Sequence[str], config: QATConfig) -> dict[str, str]:
    """Replace the fake-quant wrappers at ``names`` by integer runtime modules (in place), record the structure
    change in the provenance; returns ``{name: runtime module class}``.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 2))
        >>> apply_fake_quant(model, ["0"], "lsq", bits=8)
        ['0']
        >>> convert_fake_quant(model, ["0"], QATConfig(bits=8))
        {'0': 'Int8DynamicLinear'}
    """
    dynamic = config.scheme is WeightScheme.lsq and config.weight_bits == 8
    layers: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for name in names:
        new, entry = _runtime(model.get_submodule(name), dynamic)
        replace_module(model, name, new.eval())
        layers.append({"name": name, **entry})
        kinds[name] = type(new).__name__
    if layers:
        record_transform(model, {"type": "qat", "scheme": config.scheme.value, "bits": config.weight_bits,
                                 "layers": layers})
    return kinds


class QATConverter(Callback):
    """Turns the stage's fake-quant model into the integer model when its fine-tuning ends (once).

    Example:
        >>> QATConverter(QATConfig(), ["fc1"], {}).done
        False
    """

    def __init__(self, config: QATConfig, names: Sequence[str], notes: dict[str, Any]) -> None:
        self.config, self.names, self.notes, self.done = config, list(names), notes, False

    def convert(self, model: nn.Module) -> None:
        """Convert ``model``'s wrappers (no-op after the first call)."""
        if not self.done:
            self.notes["runtime"] = convert_fake_quant(model, self.names, self.config)
            self.done = True

    def on_train_end(self, state: TrainState) -> None:
        """After the stage's fine-tuning: convert (later stages' fine-tunings find it done)."""
        self.convert(state.model)


@stage(QATConfig)
def apply_qat(model: nn.Module, config: QATConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``qat``: wrap the selected layers; the stage's fine-tuning trains them and converts them."""
    names, skipped = select_qat_targets(model, config)
    ctx.skipped.extend(skipped)
    wrapped = apply_fake_quant(model, names, config.scheme, config.weight_bits, config.activation_bits)
    ctx.notes.update(scheme=config.scheme.value, bits=config.weight_bits, layers=wrapped)
    if config.activation_bits is not None:
        ctx.notes["activations"] = (f"{config.activation_bits}-bit LSQ fake quant while training only; the integer "
                                    "model quantizes Linear inputs per token (8-bit) or keeps them float")
    converter = QATConverter(config, wrapped, ctx.notes)
    if config.finetune is None:
        converter.convert(model)
    else:
        ctx.callbacks.append(converter)
    return model


_LINEAR_KINDS = {"linear-int8-dynamic": Int8DynamicLinear, "linear-int8-weight": Int8WeightOnlyLinear}


@REBUILDERS.register("qat")
def _rebuild_qat(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded layer by an empty runtime module of the recorded kind; the integers load later."""
    builders = {"conv2d": conv_from_record, **{kind: _linear_builder(cls) for kind, cls in _LINEAR_KINDS.items()}}
    return rebuild_layers(model, record, builders, "qat")


def _linear_builder(cls: type[nn.Module]) -> LayerBuilder:
    """A record builder of an empty ``cls`` for a plain ``nn.Linear`` of the recorded shape."""

    def build(module: nn.Module | None, layer: dict[str, Any]) -> nn.Module | None:
        shape = [layer.get("out_features"), layer.get("in_features")]
        if type(module) is not nn.Linear or list(module.weight.shape) != shape:
            return None
        return cls(shape[1], shape[0], bool(layer.get("bias", True)))

    return build


@rule
def _qat_rules(stages: Sequence[StageConfig]) -> list[str]:
    problems = []
    for i, s in enumerate(stages):
        if isinstance(s, QATConfig):
            if s.scheme is not WeightScheme.lsq and s.bits is not None:
                problems.append(f"stages[{i}].bits: expected no bits with scheme {s.scheme.value} (its levels are "
                                f"fixed), got {s.bits}. Fix: drop bits, or use scheme: lsq")
            if s.finetune is None:
                problems.append(f"stages[{i}].finetune: expected a finetune section (quantization-aware training "
                                "trains with fake quantization), got none. Fix: add e.g. finetune: {epochs: 2, "
                                "lr: 0.0005}, or use the quantize stage for post-training quantization")
        if s.tag in ("cast", "qat") and any(isinstance(q, QATConfig) for q in stages[:i]):
            problems.append(f"stages[{i}]: expected no {s.tag} stage after a qat stage (its layers are integer "
                            f"modules already), got a {s.tag} stage. Fix: put it before the qat stage")
    return problems
