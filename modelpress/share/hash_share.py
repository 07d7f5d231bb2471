"""The ``hash-share`` stage: HashedNets (Chen et al. 2015) as a model transform with its own compact encoding.

Each selected ``nn.Linear`` (``[out, in]`` weight) is replaced by a :class:`HashedLinear` holding
``K = max(1, round(fraction * out * in))`` shared values; a seeded position hash picks the value (and, with
``sign``, a +-1 factor) of every virtual weight. The values start as the least-squares fit of the dense weight
(``init: project``) or fresh (``init: random``, for training from scratch); the stage's ``finetune`` section then
trains them (each value moved by the sign-corrected sum of its positions' gradients).

The hash is never stored: the stage records ``{"type": "hash-share", "hash": HASH_NAME, "layers": [...]}`` (name,
shape, buckets, seed, sign, bias, dtype of each replaced layer) in the model's provenance, so a packed file holds only
the values and biases, and ``unpack`` rebuilds the same HashedLinear layers (and so bit-identical outputs) from the
record. Layers it cannot handle (not a plain Linear, a weight tied to another layer, already hashed, empty) go to
``ctx.skipped`` with the reason; per-layer figures go to ``ctx.notes["layers"]``.

Example:
    >>> import torch
    >>> from modelpress.recipe.registry import StageContext
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    >>> ctx = StageContext()
    >>> model = apply_hash_share(model, HashShareConfig(fraction=0.25, exclude=["2"]), ctx)
    >>> type(model[0]).__name__, model[0].values.numel(), ctx.notes["layers"]["0"]["buckets"]
    ('HashedLinear', 512, 512)
    >>> [(s.layer, s.reason) for s in ctx.skipped]
    [('2', "excluded by the stage's exclude patterns")]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from modelpress.errors import ConfigError, FormatError
from modelpress.history import Skip
from modelpress.provenance import REBUILDERS, record_transform, replace_module
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches
from modelpress.share.config import HashInit, HashShareConfig
from modelpress.share.hashed_linear import HashedLinear
from modelpress.share.hashing import HASH_NAME, layer_seed

__all__ = ["HashedLayer", "apply_hash_share", "bucket_count", "select_hash_targets"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
           "bfloat16": torch.bfloat16}
_EXCLUDED = "excluded by the stage's exclude patterns"


@dataclass(frozen=True)
class HashedLayer:
    """One replaced layer: what the provenance record needs to rebuild it, and the fit of the projected values.

    Example:
        >>> HashedLayer("fc1", 784, 300, 29400, True, True, 12, "float32", 0.9).record()["buckets"]
        29400
    """

    name: str
    in_features: int
    out_features: int
    buckets: int
    bias: bool
    sign: bool
    seed: int
    dtype: str
    relative_error: float | None  # ||W - V|| / ||W|| after a projection; None for a random init

    def record(self) -> dict[str, Any]:
        """The JSON record of this layer in the provenance (everything :func:`_rebuild_hash_share` needs).

        Example:
            >>> sorted(HashedLayer("fc", 4, 2, 3, True, True, 0, "float32", None).record())
            ['bias', 'buckets', 'dtype', 'in_features', 'name', 'out_features', 'seed', 'sign']
        """
        return {"name": self.name, "in_features": self.in_features, "out_features": self.out_features,
                "buckets": self.buckets, "bias": self.bias, "sign": self.sign, "seed": self.seed,
                "dtype": self.dtype}

    def notes(self, fraction: float) -> dict[str, Any]:
        """JSON-able figures for the report.

        Example:
            >>> HashedLayer("fc", 4, 2, 3, True, True, 0, "float32", 0.5).notes(0.375)["relative_error"]
            0.5
        """
        notes: dict[str, Any] = {"buckets": self.buckets, "weights": self.in_features * self.out_features,
                                 "fraction": fraction, "seed": self.seed}
        if self.relative_error is not None:
            notes["relative_error"] = round(self.relative_error, 6)
        return notes


def bucket_count(fraction: float, out_features: int, in_features: int) -> int:
    """Shared values of a hashed ``[out, in]`` layer: ``round(fraction * out * in)``, at least 1.

    Example:
        >>> bucket_count(0.125, 300, 784), bucket_count(1e-9, 10, 10)
        (29400, 1)
    """
    return max(1, round(fraction * out_features * in_features))


def _tied_parameters(model: nn.Module) -> set[int]:
    """Ids of the parameters reachable under more than one name (tied weights)."""
    seen: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        seen[id(param)] = seen.get(id(param), 0) + 1
    return {key for key, count in seen.items() if count > 1}


def select_hash_targets(model: nn.Module, config: HashShareConfig) -> tuple[list[tuple[str, nn.Linear]], list[Skip]]:
    """The plain Linear layers ``config`` selects, and the skipped layers with reasons; a :class:`ConfigError` if
    the patterns select no Linear layer or an override's patterns match none of the selected layers.

    Example:
        >>> from modelpress.zoo.models import LeNet300
        >>> [name for name, _ in select_hash_targets(LeNet300(), HashShareConfig(include=["fc1", "fc2"]))[0]]
        ['fc1', 'fc2']
    """
    tied = _tied_parameters(model)
    targets: list[tuple[str, nn.Linear]] = []
    skipped: list[Skip] = []
    linears: list[str] = []  # every Linear layer of the model (for the error message)
    chosen = 0  # Linear layers the include patterns select (excluded or not)
    for name, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        shown = name or "<root>"
        is_linear = isinstance(module, nn.Linear | HashedLinear)
        linears += [shown] if is_linear else []
        if config.include is not None and not any(matches(name, p) for p in config.include):
            continue
        chosen += is_linear
        if any(matches(name, p) for p in config.exclude):
            skipped.append(Skip(shown, _EXCLUDED))
        elif isinstance(module, HashedLinear):
            skipped.append(Skip(shown, "already hashed"))
        elif type(module) is not nn.Linear:
            why = "a Linear subclass with its own forward" if isinstance(module, nn.Linear) else "not a Linear layer"
            skipped.append(Skip(shown, f"{type(module).__name__} is {why} (hash-share replaces plain nn.Linear)"))
        elif id(module.weight) in tied:
            skipped.append(Skip(shown, "its weight is tied to another layer's (hashing it would untie them)"))
        elif module.weight.numel() == 0:
            skipped.append(Skip(shown, "its weight is empty"))
        else:
            targets.append((name, module))
    excluded = sum(s.reason == _EXCLUDED for s in skipped)
    if not linears:
        raise ConfigError(f"{config.tag}: model", "a model with at least one Linear layer",
                          f"<{type(model).__name__} without one>", "hash-share applies to Linear weights")
    if chosen == 0 or (not targets and excluded == len(skipped)):
        key, patterns = ("include", config.include) if chosen == 0 and config.include is not None else \
            ("exclude", config.exclude)
        raise ConfigError(f"{config.tag}: {key}", "patterns that select at least one Linear layer", list(patterns),
                          f"use names of this model's Linear layers: {', '.join(linears)}")
    names = [name for name, _ in targets]
    for i, override in enumerate(config.overrides):
        if not any(matches(name, pattern) for name in names for pattern in override.layers):
            raise ConfigError(f"{config.tag}: overrides[{i}].layers", "patterns matching a selected layer",
                              list(override.layers), f"use names among the selected layers: {', '.join(names)}")
    return targets, skipped


@torch.no_grad()
def _relative_error(linear: nn.Linear, hashed: HashedLinear) -> float:
    weight = linear.weight.detach().float()  # (out, in)
    error = torch.linalg.vector_norm(weight - hashed.virtual_weight().float())
    return float(error / torch.linalg.vector_norm(weight).clamp_min(1e-30))


@stage(HashShareConfig)
def apply_hash_share(model: nn.Module, config: HashShareConfig, ctx: StageContext) -> nn.Module:
    """Stage handler of ``hash-share``: replace the selected Linear layers, record the structure change, the notes
    and the skips. Returns the model (a new object only when the model itself is a Linear).

    Example:
        >>> hashed = apply_hash_share(torch.nn.Linear(8, 4), HashShareConfig(fraction=0.5), StageContext())
        >>> type(hashed).__name__, hashed.buckets
        ('HashedLinear', 16)
    """
    targets, skipped = select_hash_targets(model, config)
    ctx.skipped.extend(skipped)
    done: list[HashedLayer] = []
    for name, linear in targets:
        buckets = bucket_count(config.fraction_for(name), linear.out_features, linear.in_features)
        seed = layer_seed(config.seed, name)
        hashed = HashedLinear.from_linear(linear, buckets, config.sign, seed, config.init)
        hashed.train(linear.training)
        error = _relative_error(linear, hashed) if config.init is HashInit.project else None
        dtype = str(linear.weight.dtype).removeprefix("torch.")
        done.append(HashedLayer(name, linear.in_features, linear.out_features, buckets, linear.bias is not None,
                                config.sign, seed, dtype, error))
        model = replace_module(model, name, hashed)
    if done:
        record_transform(model, {"type": "hash-share", "hash": HASH_NAME,
                                 "layers": [layer.record() for layer in done]})
    stored = sum(layer.buckets for layer in done)
    weights = sum(layer.in_features * layer.out_features for layer in done)
    ctx.notes["hash"] = HASH_NAME
    ctx.notes["init"] = config.init.value
    ctx.notes["sign"] = config.sign
    ctx.notes["layers"] = {layer.name or "<root>": layer.notes(config.fraction_for(layer.name)) for layer in done}
    ctx.notes["stored_values"] = stored
    ctx.notes["fraction"] = round(stored / weights, 6) if weights else 0.0
    return model


@REBUILDERS.register("hash-share")
def _rebuild_hash_share(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded Linear by an (untrained) HashedLinear of the recorded hash; the values load later."""
    if record.get("hash") != HASH_NAME:
        raise FormatError("hash-share transform: hash", f"{HASH_NAME!r}", record.get("hash"),
                          "this file needs a newer modelpress")
    for layer in record.get("layers", []):
        name = str(layer.get("name", ""))
        try:
            module = model.get_submodule(name)
        except AttributeError:
            module = None
        shape = (layer.get("out_features"), layer.get("in_features"))
        if type(module) is not nn.Linear or tuple(module.weight.shape) != shape:
            raise FormatError(f"hash-share transform: layer {name!r}", f"a Linear of shape {list(shape)}",
                              f"<{type(module).__name__}>", "the file and this modelpress version disagree on the "
                              "architecture")
        buckets, seed, dtype = layer.get("buckets"), layer.get("seed"), _DTYPES.get(layer.get("dtype"))
        if not isinstance(buckets, int) or not isinstance(seed, int) or buckets < 1 or seed < 0 or dtype is None:
            raise FormatError(f"hash-share transform: layer {name!r}", "buckets >= 1, seed >= 0 and a float dtype",
                              f"<buckets {buckets}, seed {seed}, dtype {layer.get('dtype')}>", "the file is corrupted")
        hashed = HashedLinear(module.in_features, module.out_features, buckets, bool(layer.get("bias", True)),
                              bool(layer.get("sign", True)), seed, dtype=dtype)
        model = replace_module(model, name, hashed)
    return model
