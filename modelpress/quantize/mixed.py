"""The ``quantize-mixed`` stage: a bit width per layer, either from an explicit map or chosen from each layer's
measured sensitivity under an average-bits budget.

1. **Which widths.** ``layer_bits`` maps layer categories or name patterns to widths (``{conv: 8, linear: 4}``; for
   transformers ``{attention: 8, ffn: 4}``); or ``average_bits`` with candidate ``bits`` (e.g. ``[2, 3, 4, 8]``):
   a sensitivity sweep quantizes *one layer at a time* at each candidate width (round to nearest) and measures, on
   ``sensitivity_batches`` of the task's **training** inputs, the weight SQNR, the output SQNR and the mean cosine
   of the model's outputs to the float model's; then :func:`~modelpress.quantize.allocate.allocate_bits` picks the
   widths minimizing the summed output noise with ``sum(weights * bits) <= average_bits * sum(weights)``.
   ``average_bits`` counts the integer levels' bits; scales and zero points come on top (see the notes'
   ``effective_bits``).
2. **Storage** (:mod:`modelpress.quantize.lowbit`): Linear/Embedding at <= 4 bits in int4 groups of ``group_size``
   (values limited to ``2^bits`` levels; the file's entropy coder then spends about ``bits`` per weight), at 5-8
   bits int8 per row; Conv2d per output channel, symmetric. Linear layers at <= 4 bits are rounded by GPTQ with
   ``method: gptq``.
3. ``bias_correction``: subtract ``(W_q - W) E[x]`` from each Linear / Conv2d bias (``E[x]`` on the calibration
   batches; for a convolution the per-channel mean input, ignoring the zero padding at the borders).

Categories: ``conv`` (Conv2d), ``linear`` (Linear), ``embedding`` (Embedding, only with ``embeddings: true``),
``attention`` (a Linear with a name component containing ``attention`` or ``attn``), ``ffn`` (any other Linear
inside a numbered block, e.g. ``encoder.layer.3.intermediate.dense``). A name pattern (exact, glob, ``re:``) beats
``attention``/``ffn``, which beat ``linear``/``conv``/``embedding``. Layers no key covers stay in float (listed as
skipped).

Example:
    >>> import torch
    >>> from modelpress.zoo.models import LeNet5
    >>> model = quantize_mixed_(LeNet5(), MixedPrecisionConfig(layer_bits={"conv": 8, "linear": 4}))
    >>> [type(m).__name__ for m in (model.conv1, model.fc1)]
    ['QuantizedConv2d', 'Int4WeightOnlyLinear']
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from torch import Tensor, nn

from modelpress.config import StageConfig
from modelpress.errors import ConfigError, FormatError
from modelpress.history import Skip
from modelpress.kernels.int4_weight import Int4WeightOnlyLinear
from modelpress.kernels.int8_weight import Int8WeightOnlyLinear
from modelpress.kernels.quantized_conv import conv_from_record
from modelpress.kernels.quantized_embedding import QuantizedEmbedding
from modelpress.provenance import REBUILDERS, rebuild_layers, record_transform, replace_module
from modelpress.quantize.allocate import allocate_bits, average_bits
from modelpress.quantize.gptq import GPTQOptions, collect_input_stats, gptq_quantize
from modelpress.quantize.integer import QuantMethod
from modelpress.quantize.lowbit import grouped_module, row_qparams, symmetric_module
from modelpress.quantize.sensitivity import sensitivity_sweep
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches

__all__ = ["MixedPrecisionConfig", "apply_mixed", "fake_weight", "layer_category", "quantize_mixed_"]

CATEGORIES = ("conv", "linear", "embedding", "attention", "ffn")
_KINDS = (nn.Linear, nn.Conv2d, nn.Embedding)


class MixedPrecisionConfig(StageConfig, tag="quantize-mixed"):
    """Per-layer widths from ``layer_bits`` or from a sensitivity sweep under ``average_bits``.

    Example:
        >>> MixedPrecisionConfig(average_bits=5, bits=[2, 4, 8]).bits
        (2, 4, 8)
    """

    layer_bits: dict[str, int] | None = Field(None, description="category or name pattern -> bits (2-8)")
    average_bits: float | None = Field(None, description="budget: mean level bits per weight over the quantized "
                                       "layers; widths chosen from the sensitivity sweep")
    bits: tuple[int, ...] = Field((2, 3, 4, 8), description="candidate widths for average_bits")
    group_size: int = Field(32, ge=2, le=4096, multiple_of=2, description="Linear/Embedding at <= 4 bits: input "
                            "features per scale (layers it does not divide use whole rows)")
    method: QuantMethod = Field(QuantMethod.rtn, description="rounding of Linear layers at <= 4 bits")
    gptq: GPTQOptions = GPTQOptions()
    bias_correction: bool = Field(False, description="subtract (W_q - W) E[x] from Linear/Conv2d biases")
    embeddings: bool = Field(False, description="also quantize nn.Embedding tables")
    include: tuple[str, ...] | None = Field(None, description="layer name patterns; None: every Linear/Conv2d")
    exclude: tuple[str, ...] = Field((), description="layer name patterns left in float")
    calibration_batches: int = Field(8, ge=1, le=10000, description="gptq / bias_correction: training batches")
    sensitivity_batches: int = Field(2, ge=1, le=1000, description="sweep: training batches the outputs are "
                                     "compared on")
    batch_size: int = Field(64, ge=1, le=65536)

    @model_validator(mode="after")
    def _check(self) -> MixedPrecisionConfig:
        widths = list(self.bits) + list((self.layer_bits or {}).values())
        bad = [b for b in widths if isinstance(b, bool) or not 2 <= b <= 8]
        if bad:
            raise PydanticCustomError("mixed_bits", f"expected widths between 2 and 8 bits, not {bad[0]} (int8 "
                                      "storage holds at most 8; 1 bit has no symmetric level set)")
        if (self.layer_bits is None) == (self.average_bits is None):
            raise PydanticCustomError("mixed_rule", "expected exactly one of layer_bits (an explicit map) and "
                                      "average_bits (a budget for the sensitivity-driven allocation)")
        if self.average_bits is not None and not min(self.bits) <= self.average_bits <= max(self.bits):
            raise PydanticCustomError("mixed_budget", f"expected average_bits between the narrowest and widest "
                                      f"candidate ({min(self.bits)} and {max(self.bits)}), not {self.average_bits} "
                                      "(a budget no allocation can meet)")
        return self


def layer_category(name: str, module: nn.Module) -> list[str]:
    """The categories of a layer, most specific first.

    Example:
        >>> layer_category("encoder.layer.0.attention.self.query", nn.Linear(2, 2))
        ['attention', 'linear']
        >>> layer_category("encoder.layer.0.intermediate.dense", nn.Linear(2, 2))
        ['ffn', 'linear']
        >>> layer_category("fc1", nn.Linear(2, 2))
        ['linear']
    """
    if isinstance(module, nn.Conv2d):
        return ["conv"]
    if isinstance(module, nn.Embedding):
        return ["embedding"]
    parts = name.split(".")
    if any("attention" in p or "attn" in p for p in parts):
        return ["attention", "linear"]
    if any(p.isdigit() for p in parts[:-1]):
        return ["ffn", "linear"]
    return ["linear"]


def _explicit_bits(name: str, module: nn.Module, layer_bits: dict[str, int]) -> int | None:
    """The width ``layer_bits`` gives a layer: name patterns first, then its categories in order."""
    for key, bits in layer_bits.items():
        if key not in CATEGORIES and matches(name, key):
            return bits
    for category in layer_category(name, module):
        if category in layer_bits:
            return layer_bits[category]
    return None


def _targets(model: nn.Module, config: MixedPrecisionConfig) -> tuple[list[tuple[str, nn.Module]], list[Skip]]:
    kinds = _KINDS if config.embeddings else (nn.Linear, nn.Conv2d)
    targets, skipped, seen = [], [], []
    for name, module in model.named_modules():
        if type(module) not in kinds:
            continue
        seen.append(name)
        if config.include is not None and not any(matches(name, p) for p in config.include):
            continue
        if any(matches(name, p) for p in config.exclude):
            skipped.append(Skip(name, "excluded by the stage's exclude patterns"))
        elif isinstance(module, nn.Embedding) and (module.max_norm is not None or module.sparse):
            skipped.append(Skip(name, "an Embedding with max_norm or sparse gradients"))
        else:
            targets.append((name, module))
    if not targets:
        raise ConfigError("quantize-mixed.include", "patterns matching at least one Linear/Conv2d layer",
                          list(config.include or []), f"use names among: {', '.join(seen[:20]) or '<none>'}")
    return targets, skipped


def _group(module: nn.Module, group_size: int) -> int | None:
    """The group size a <= 4-bit Linear/Embedding uses: ``group_size`` if it divides the width, else the whole row
    (if even), else None (cannot be stored in int4 groups)."""
    width = module.embedding_dim if isinstance(module, nn.Embedding) else module.in_features
    if width % group_size == 0:
        return group_size
    return width if width % 2 == 0 else None


def fake_weight(module: nn.Module, bits: int, group_size: int) -> Tensor:
    """The round-to-nearest weight ``module`` would hold at ``bits`` (float32, the weight's shape).

    Example:
        >>> w = fake_weight(nn.Linear(64, 4), 8, 32)
        >>> w.shape
        torch.Size([4, 64])
    """
    w = module.weight.detach().float()
    group = _group(module, group_size) if not isinstance(module, nn.Conv2d) else None
    if bits <= 4 and group is not None:
        return gptq_quantize(w, None, bits, group).dequantized()
    scale = row_qparams(w, bits)
    qmax = 2 ** (bits - 1) - 1
    shape = [-1] + [1] * (w.dim() - 1)
    return torch.round(w / scale.reshape(shape)).clamp(-qmax, qmax) * scale.reshape(shape)


def _convert(name: str, module: nn.Module, bits: int, config: MixedPrecisionConfig,
             stats: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """The integer module of ``module`` at ``bits`` and its record entry."""
    w = module.weight.detach().float()
    group = None if isinstance(module, nn.Conv2d) else _group(module, config.group_size)
    if bits <= 4 and group is not None:
        hessian = stats[name].hessian() if (config.method is QuantMethod.gptq and isinstance(module, nn.Linear)
                                            and name in stats) else None
        g = config.gptq
        r = gptq_quantize(w, hessian, bits, group, g.damp, g.block_size, g.act_order)
        new = grouped_module(module, r.u, r.scale, r.zero, group)
        entry: dict[str, Any] = {"kind": "embedding4" if isinstance(module, nn.Embedding) else "linear4",
                                 "group_size": group}
    else:
        scale = row_qparams(w, bits)
        qmax = 2 ** (bits - 1) - 1
        shape = [-1] + [1] * (w.dim() - 1)
        q = torch.round(w / scale.reshape(shape)).clamp(-qmax, qmax)
        new = symmetric_module(module, q, scale)
        entry = {"kind": {nn.Conv2d: "conv2d", nn.Embedding: "embedding8"}.get(type(module), "linear8")}
    if isinstance(module, nn.Conv2d):
        entry.update(new.config())
    elif isinstance(module, nn.Embedding):
        entry.update(num_embeddings=module.num_embeddings, embedding_dim=module.embedding_dim)
    else:
        entry.update(in_features=module.in_features, out_features=module.out_features, bias=module.bias is not None)
    return new, {"name": name, "bits": bits, **entry}


@torch.no_grad()
def _correct_bias(new: nn.Module, old: nn.Module, mean: Tensor) -> bool:
    """Subtract ``(W_q - W) E[x]`` from ``new``'s bias (conv: summed over the kernel); False without a bias."""
    if getattr(new, "bias", None) is None or isinstance(old, nn.Embedding):
        return False
    delta = new.dequantized_weight() - old.weight.detach().float()  # [out, in(, kh, kw)]
    if delta.dim() == 4:
        delta = delta.sum((2, 3))  # [out, in]: every kernel tap sees the channel mean
    new.bias.sub_(delta @ mean)
    if hasattr(new, "refresh"):
        new.refresh()
    return True


def _choose(model: nn.Module, targets: list[tuple[str, nn.Module]], config: MixedPrecisionConfig,
            ctx: StageContext) -> tuple[dict[str, int], list[Skip]]:
    sizes = {name: module.weight.numel() for name, module in targets}
    if config.layer_bits is not None:
        unused = [k for k in config.layer_bits if k not in CATEGORIES
                  and not any(matches(n, k) for n, _ in targets)]
        if unused:
            raise ConfigError(f"quantize-mixed.layer_bits[{unused[0]!r}]", f"a category ({', '.join(CATEGORIES)}) "
                              "or a pattern matching a selected layer", unused[0],
                              f"use names among: {', '.join(n for n, _ in targets[:12])}")
        chosen = {n: _explicit_bits(n, m, config.layer_bits) for n, m in targets}
        skipped = [Skip(n, "no layer_bits entry covers it") for n, b in chosen.items() if b is None]
        return {n: b for n, b in chosen.items() if b is not None}, skipped
    task = ctx.require_task("quantize-mixed: sensitivity sweep")
    inputs = list(task.calibration_batches(config.sensitivity_batches, config.batch_size, seed=ctx.seed + 1))
    rows = sensitivity_sweep(model, targets, config.bits,
                             lambda module, bits: fake_weight(module, bits, config.group_size), inputs, ctx.quiet)
    ctx.notes["sensitivity_bits"] = rows
    noise = {name: {} for name, _ in targets}
    for row in rows:
        noise[row["layer"]][row["bits"]] = row["output_noise"]
    assert config.average_bits is not None  # the validator guarantees one rule
    return allocate_bits(noise, sizes, config.average_bits), []


@stage(MixedPrecisionConfig)
def apply_mixed(model: nn.Module, config: MixedPrecisionConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``quantize-mixed``: choose widths, quantize, record the structure and the widths."""
    targets, skipped = _targets(model, config)
    chosen, uncovered = _choose(model, targets, config, ctx)
    ctx.skipped.extend(skipped + uncovered)
    modules = dict(targets)
    stats: dict[str, Any] = {}
    if config.method is QuantMethod.gptq or config.bias_correction:
        task = ctx.require_task("quantize-mixed: gptq / bias_correction calibration")
        names = [n for n in chosen if not isinstance(modules[n], nn.Embedding)]
        batches = task.calibration_batches(config.calibration_batches, config.batch_size, seed=ctx.seed)
        stats = collect_input_stats(model, names, batches, hessian=config.method is QuantMethod.gptq)
    layers, corrected = [], []
    for name, bits in chosen.items():
        new, entry = _convert(name, modules[name], bits, config, stats)
        if config.bias_correction and name in stats and _correct_bias(new, modules[name], stats[name].mean()):
            corrected.append(name)
        layers.append(entry)
        model = replace_module(model, name, new.eval())
    if layers:
        record_transform(model, {"type": "quantize-mixed", "layers": layers})
    sizes = {name: modules[name].weight.numel() for name in chosen}
    ctx.notes["layer_bits"] = dict(chosen)
    ctx.notes["average_bits"] = round(average_bits(chosen, sizes), 4)
    ctx.notes["effective_bits"] = round(_effective_bits(model, chosen, sizes), 4)
    if config.bias_correction:
        ctx.notes["bias_corrected"] = corrected
    return model


def _effective_bits(model: nn.Module, chosen: dict[str, int], sizes: dict[str, int]) -> float:
    """Mean bits per weight including scales and zero points (before entropy coding)."""
    total = 0.0
    for name, bits in chosen.items():
        module = model.get_submodule(name)
        extra = sum(t.numel() * t.element_size() * 8 for key, t in module.state_dict().items()
                    if key in ("weight_scale", "weight_zero"))
        total += bits * sizes[name] + extra
    return total / max(sum(sizes.values()), 1)


def quantize_mixed_(model: nn.Module, config: MixedPrecisionConfig, task: Any = None) -> nn.Module:
    """Apply ``config`` to ``model`` outside a recipe (``task`` needed for ``average_bits``/``gptq``).

    Example:
        >>> from modelpress.zoo.models import LeNet300
        >>> m = quantize_mixed_(LeNet300(), MixedPrecisionConfig(layer_bits={"fc3": 8, "linear": 2}))
        >>> type(m.fc3).__name__, m.fc1.weight_uint4().max() <= 3
        ('Int8WeightOnlyLinear', tensor(True))
    """
    return apply_mixed(model, config, StageContext(task=task))


def _linear4(module: nn.Module | None, layer: dict[str, Any]) -> nn.Module | None:
    shape = [layer.get("out_features"), layer.get("in_features")]
    if type(module) is not nn.Linear or list(module.weight.shape) != shape:
        return None
    return Int4WeightOnlyLinear(shape[1], shape[0], int(layer.get("group_size", 0)), bool(layer.get("bias", True)))


def _linear8(module: nn.Module | None, layer: dict[str, Any]) -> nn.Module | None:
    shape = [layer.get("out_features"), layer.get("in_features")]
    if type(module) is not nn.Linear or list(module.weight.shape) != shape:
        return None
    return Int8WeightOnlyLinear(shape[1], shape[0], bool(layer.get("bias", True)))


def _embedding(bits: int) -> Any:
    def build(module: nn.Module | None, layer: dict[str, Any]) -> nn.Module | None:
        shape = [layer.get("num_embeddings"), layer.get("embedding_dim")]
        if type(module) is not nn.Embedding or list(module.weight.shape) != shape:
            return None
        return QuantizedEmbedding(shape[0], shape[1], bits, int(layer.get("group_size", 32)))
    return build


@REBUILDERS.register("quantize-mixed")
def _rebuild_mixed(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded layer by an empty runtime module of its kind; the integers load later."""
    for layer in record.get("layers", []):
        if layer.get("kind") in ("linear4", "embedding4"):
            width = layer.get("in_features", layer.get("embedding_dim"))
            g = layer.get("group_size")
            if not isinstance(g, int) or not isinstance(width, int) or g < 2 or g % 2 or width % g:
                raise FormatError(f"quantize-mixed transform: layer {layer.get('name')!r}: group_size",
                                  "an even divisor of the layer's width", g, "the file is corrupted")
    return rebuild_layers(model, record, {"linear4": _linear4, "linear8": _linear8, "conv2d": conv_from_record,
                                          "embedding4": _embedding(4), "embedding8": _embedding(8)},
                          "quantize-mixed")

