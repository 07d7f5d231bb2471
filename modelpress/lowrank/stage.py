"""The ``low-rank`` stage: factorize the selected layers (SVD, Tucker-2 or CP), record the structure change.

Each selected layer is replaced by an ``nn.Sequential`` of standard layers (see :mod:`modelpress.lowrank.layout`) at
the ranks the config's rule gives. A layer is factorized only when that saves parameters (SVD: ``r < m n / (m + n)``);
otherwise, and for layers the method cannot handle (grouped or string-padded convs, non-zero padding modes, tied
weights, another layer type), it goes to ``ctx.skipped`` with the reason. An explicit ``rank`` above a layer's full
rank is a :class:`ConfigError` naming the layer. The stage records ``{"type": "low-rank", "layers": [...]}`` in the
provenance and registers a rebuilder, so ``unpack`` rebuilds the factorized layers and the outputs match bit for bit.
Per-layer figures (form, ranks, parameters before and after) go to ``ctx.notes["layers"]``. With ``channels_last``
the model's 4-D weights are stored channels_last afterwards and the record says so, so the unpacked model runs in the
same memory format (the speed of a chain of small convs on oneDNN depends on it).

Example:
    >>> from modelpress.zoo.models import LeNet300
    >>> ctx = StageContext()
    >>> model = apply_low_rank(LeNet300(), LowRankConfig(rank=32, include=["fc*"], exclude=["fc3"]), ctx)
    >>> ctx.notes["layers"]["fc1"]["params_after"], [(s.layer, s.reason) for s in ctx.skipped]
    (34988, [('fc3', "excluded by the stage's exclude patterns")])
"""

from __future__ import annotations

from typing import Any

from torch import nn

from modelpress.errors import ConfigError, FormatError
from modelpress.history import Skip
from modelpress.lowrank.config import LowRankConfig, Method
from modelpress.lowrank.cp import factorize_cp, max_cp_rank
from modelpress.lowrank.faster import compare_latency, layer_inputs
from modelpress.lowrank.layout import Factorized, build
from modelpress.lowrank.svd import energy_rank, factorize_svd, singular_values, svd_spec
from modelpress.lowrank.tucker import conv_spec, factorize_tucker2, mode_singular_values
from modelpress.lowrank.whiten import input_grams
from modelpress.memory_format import restore_memory_format, store_channels_last
from modelpress.provenance import REBUILDERS, record_transform, replace_module
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches

__all__ = ["apply_low_rank", "choose_ranks", "select_low_rank_targets"]

_EXCLUDED = "excluded by the stage's exclude patterns"
Layer = nn.Linear | nn.Conv2d


def _why_not(module: nn.Module, method: Method, tied: set[int]) -> str | None:
    """Why ``method`` cannot factorize ``module`` (None: it can)."""
    kind = type(module).__name__
    if type(module) not in (nn.Linear, nn.Conv2d):
        return f"{kind} is not a plain Linear or Conv2d layer"
    if id(module.weight) in tied:
        return "its weight is tied to another layer's (factorizing it would untie them)"
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            return f"a grouped conv (groups={module.groups}); low-rank handles groups=1 only"
        if isinstance(module.padding, str) or module.padding_mode != "zeros":
            return "padding given as a string or a non-zero padding mode; only explicit zero padding is handled"
        pointwise = tuple(module.kernel_size) == (1, 1)
        if method is Method.svd and not pointwise:
            return f"a {module.kernel_size[0]}x{module.kernel_size[1]} conv: use method tucker or cp"
        if method is not Method.svd and pointwise:
            return f"a 1x1 conv: use method svd ({method.value} factorizes k x k convs)"
    elif method is not Method.svd:
        return f"a Linear layer: use method svd ({method.value} factorizes k x k convs)"
    return None


def select_low_rank_targets(model: nn.Module, config: LowRankConfig) -> tuple[list[tuple[str, Layer]], list[Skip]]:
    """The layers ``config`` factorizes and the skipped ones with reasons; a :class:`ConfigError` if the include
    patterns select no Linear or Conv2d layer.

    Example:
        >>> from modelpress.zoo.models import LeNet5
        >>> targets, skipped = select_low_rank_targets(LeNet5(), LowRankConfig(method="tucker", ratio=0.5))
        >>> [name for name, _ in targets], skipped[-1].reason
        (['conv1', 'conv2'], 'a Linear layer: use method svd (tucker factorizes k x k convs)')
    """
    seen: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen[id(param)] = seen.get(id(param), 0) + 1
    tied = {key for key, count in seen.items() if count > 1}
    targets: list[tuple[str, Layer]] = []
    skipped: list[Skip] = []
    layers: list[str] = []
    for name, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        shown = name or "<root>"
        layers += [shown] if isinstance(module, nn.Linear | nn.Conv2d) else []
        if config.include is not None and not any(matches(name, p) for p in config.include):
            continue
        reason = _EXCLUDED if any(matches(name, p) for p in config.exclude) else _why_not(module, config.method, tied)
        if reason is None:
            targets.append((name, module))  # type: ignore[arg-type]
        elif config.include is not None or isinstance(module, nn.Linear | nn.Conv2d):
            skipped.append(Skip(shown, reason))
    if not targets and config.include is not None and not any(s.reason != _EXCLUDED for s in skipped):
        raise ConfigError(f"{config.tag}: include", "patterns that select at least one Linear or Conv2d layer",
                          list(config.include), f"use names of this model's layers: {', '.join(layers)}")
    return targets, skipped


def _full_ranks(module: Layer, method: Method, spatial: str) -> tuple[int, ...]:
    """The largest rank of each factor: SVD ``min(out, in)``, Tucker ``(O, I)``, CP the tensor's rank bound."""
    if method is Method.svd:
        return (min(module.weight.shape[0], module.weight.shape[1]),)
    if method is Method.tucker:
        return (module.weight.shape[0], module.weight.shape[1])
    return (max_cp_rank(module, spatial),)  # type: ignore[arg-type]


def _spec(name: str, module: Layer, config: LowRankConfig, ranks: tuple[int, ...]) -> Factorized:
    if config.method is Method.svd:
        return svd_spec(name, module, ranks[0])
    if config.method is Method.tucker:
        return conv_spec(name, module, "tucker2", ranks)  # type: ignore[arg-type]
    return conv_spec(name, module, f"cp-{config.spatial.value}", ranks)  # type: ignore[arg-type]


def _params(module: Layer) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _round(ranks: tuple[int, ...], full: tuple[int, ...], multiple: int | None, down: bool = False) -> tuple[int, ...]:
    """``ranks`` rounded to the nearest (``down``: the next lower) multiple of ``multiple``, at least ``multiple`` and
    at most the full rank (a mode smaller than ``multiple`` keeps its full rank)."""
    if multiple is None:
        return ranks
    steps = [r // multiple if down else int(r / multiple + 0.5) for r in ranks]
    return tuple(min(f, multiple * max(1, k)) for k, f in zip(steps, full, strict=True))


def choose_ranks(targets: list[tuple[str, Layer]], config: LowRankConfig,
                 grams: dict[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """The ranks of each target under the config's rule (before the saves-parameters check), rounded to
    ``rank_multiple`` if set; ``grams`` (activation-aware SVD) makes energy and budget use the whitened spectra.

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(300, 100)
        >>> choose_ranks([("fc2", layer)], LowRankConfig(ratio=0.25)), choose_ranks([("fc2", layer)],
        ...                                                                          LowRankConfig(energy=1.0))
        ({'fc2': (25,)}, {'fc2': (100,)})
        >>> choose_ranks([("fc2", layer)], LowRankConfig(ratio=0.25, rank_multiple=16))
        {'fc2': (32,)}
    """
    full = {name: _full_ranks(module, config.method, config.spatial.value) for name, module in targets}
    multiple = config.rank_multiple
    if config.rank is not None:
        for name, _ in targets:
            if config.rank > min(full[name]):
                raise ConfigError(f"{config.tag}: rank", f"a rank in [1, {min(full[name])}] for layer {name!r} "
                                  f"(its full rank{'s' if len(full[name]) > 1 else ''}: {list(full[name])})",
                                  config.rank, "lower the rank or exclude the layer")
        return {name: _round((config.rank,) * len(full[name]), full[name], multiple) for name, _ in targets}
    if config.ratio is not None:
        if config.method is Method.cp:  # a fraction of the smaller channel count
            return {name: _round((max(1, round(config.ratio * min(m.weight.shape[:2]))),), full[name], multiple)
                    for name, m in targets}
        return {name: _round(tuple(max(1, round(config.ratio * f)) for f in full[name]), full[name], multiple)
                for name, _ in targets}
    if config.method is Method.cp:  # param_budget: every layer keeps the same fraction of its parameters
        budget = config.param_budget or 0.0
        ranks = {}
        for name, module in targets:
            per_rank = _spec(name, module, config, (2,)).params() - _spec(name, module, config, (1,)).params()
            rank = max(1, int(budget * _params(module) - (module.bias is not None) * module.out_channels) // per_rank)
            ranks[name] = _round((rank,), full[name], multiple, down=True)  # down: the budget still holds
        return ranks
    grams = grams or {}
    values = {name: ((singular_values(m.weight, grams.get(name)),) if config.method is Method.svd
                     else mode_singular_values(m.weight)) for name, m in targets}

    def at(energy: float) -> dict[str, tuple[int, ...]]:
        return {name: _round(tuple(energy_rank(v, energy) for v in values[name]), full[name], multiple)
                for name, _ in targets}

    if config.energy is not None:
        return at(config.energy)
    allowed = (config.param_budget or 0.0) * sum(_params(m) for _, m in targets)

    def total(energy: float) -> int:  # parameters after factorizing every layer that saves some at these ranks
        ranks = at(energy)
        return sum(min(_spec(n, m, config, ranks[n]).params(), _params(m)) for n, m in targets)

    low, high = 0.0, 1.0  # bisection for the largest common energy within the budget
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if total(middle) <= allowed else (low, middle)
    return at(low)


def _factorize(name: str, module: Layer, config: LowRankConfig, ranks: tuple[int, ...],
               gram: Any = None) -> nn.Sequential:
    if config.method is Method.svd:
        return factorize_svd(module, ranks[0], name, gram)
    if config.method is Method.tucker:
        return factorize_tucker2(module, ranks, name)  # type: ignore[arg-type]
    return factorize_cp(module, ranks[0], config.spatial.value, name, config.cp_iterations, config.seed)  # type: ignore[arg-type]


@stage(LowRankConfig)
def apply_low_rank(model: nn.Module, config: LowRankConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``low-rank``: factorize, record the transform, the notes and the skips. Returns the model
    (a new object only when the model itself is the one factorized layer).

    Example:
        >>> import torch
        >>> pair = apply_low_rank(torch.nn.Linear(64, 64), LowRankConfig(energy=0.5), StageContext())
        >>> type(pair).__name__, pair[0].out_features < 32
        ('Sequential', True)
    """
    targets, skipped = select_low_rank_targets(model, config)
    grams: dict[str, Any] = {}
    if config.activation_aware and targets:  # one calibration pass for every target's input Gram matrix
        task = ctx.require_task(f"{config.tag}: activation_aware")
        grams = input_grams(model, [name for name, _ in targets],
                            task.calibration_batches(config.calibration_batches, seed=config.seed),
                            config.calibration_mask_input)
    ranks = choose_ranks(targets, config, grams)
    done: list[Factorized] = []
    notes: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    if config.keep_if_faster and targets:  # each layer's real input, captured before anything is replaced
        task = ctx.require_task(f"{config.tag}: keep_if_faster")
        inputs = layer_inputs(model, [name for name, _ in targets], task.example_inputs(config.latency_batch))
    for name, module in targets:
        shown, before = name or "<root>", _params(module)
        spec = _spec(name, module, config, ranks[name])
        if spec.params() >= before:
            limit = ""
            if spec.form.startswith("svd"):
                m, n = module.weight.shape[:2]
                limit = f"; SVD saves parameters only below m n / (m + n) = {m * n / (m + n):.1f}"
            skipped.append(Skip(shown, f"ranks {list(spec.ranks)} give {spec.params()} parameters, not fewer than "
                                f"the layer's {before}{limit}"))
            continue
        factorized = _factorize(name, module, config, spec.ranks, grams.get(name))
        notes[shown] = {"form": spec.form, "ranks": list(spec.ranks), "params_before": before,
                        "params_after": spec.params()}
        if config.keep_if_faster:
            dense_ms, factorized_ms = compare_latency(module, factorized, inputs[name],
                                                      channels_last=config.channels_last)
            notes[shown].update(dense_ms=round(dense_ms, 4), factorized_ms=round(factorized_ms, 4))
            if factorized_ms >= dense_ms:
                del notes[shown]
                skipped.append(Skip(shown, f"factorized at ranks {list(spec.ranks)} it is not faster "
                                    f"({factorized_ms:.3f} ms vs {dense_ms:.3f} ms at batch {config.latency_batch}; "
                                    "keep_if_faster)"))
                continue
        model = replace_module(model, name, factorized)
        done.append(spec)
    ctx.skipped.extend(skipped)
    record = {"type": "low-rank", "layers": [spec.record() for spec in done]}
    if config.channels_last:
        model = store_channels_last(model, record)
    if done or config.channels_last:
        record_transform(model, record)
    ctx.notes["channels_last"] = config.channels_last
    ctx.notes["method"] = config.method.value
    ctx.notes["layers"] = notes
    ctx.notes["params_before"] = sum(n["params_before"] for n in notes.values())
    ctx.notes["params_after"] = sum(n["params_after"] for n in notes.values())
    return model


@REBUILDERS.register("low-rank")
def _rebuild_low_rank(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded layer by its (untrained) factorized layers; the values load later."""
    for layer in record.get("layers", []):
        spec = Factorized.from_record(layer)
        try:
            module = model.get_submodule(spec.name)
        except AttributeError:
            module = None
        linear = spec.form == "svd-linear"
        expected = (spec.out_channels, spec.in_channels) + (() if linear else spec.kernel)
        if type(module) is not (nn.Linear if linear else nn.Conv2d) or tuple(module.weight.shape) != expected:
            raise FormatError(f"low-rank transform: layer {spec.name!r}", f"a {'Linear' if linear else 'Conv2d'} of "
                              f"shape {list(expected)}", f"<{type(module).__name__}>",
                              "the file and this modelpress version disagree on the architecture")
        model = replace_module(model, spec.name, build(spec).train(module.training))
    return restore_memory_format(model, record)
