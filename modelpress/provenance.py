"""How a model can be rebuilt without pickle: where it came from, and the architecture changes applied since.

A compressed file stores tensors and this record (JSON). ``unpack`` builds the base model from ``source``, replays
each architecture transform's *structure* (e.g. replace a Linear by a factorized pair of the recorded rank), then
loads the tensors. Stages that change a model's structure register a rebuilder with :data:`REBUILDERS` and call
:func:`record_transform`; stages that only change values (pruning masks applied, clustering) record nothing.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(2, 2)
    >>> set_provenance(model, Provenance(source={"kind": "factory", "ref": "torch.nn:Identity"}))
    >>> record_transform(model, {"type": "note-only"})
    >>> get_provenance(model).transforms
    [{'type': 'note-only'}]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from modelpress.registry import Registry

__all__ = ["REBUILDERS", "Provenance", "get_provenance", "rebuild_layers", "record_transform", "replace_module",
           "replay_transforms", "set_provenance"]

_ATTR = "_modelpress_provenance"

# type tag of a transform record -> function(model, record) -> model with that structure (values loaded later)
REBUILDERS: Registry[str, Callable[[nn.Module, dict[str, Any]], nn.Module]] = Registry("architecture transform")


@dataclass
class Provenance:
    """``source``: how to build the base model, e.g. ``{"kind": "zoo", "name": "lenet5", "task": "mnist5k"}``,
    ``{"kind": "factory", "ref": "pkg.mod:fn"}`` or ``{"kind": "hf", "path": "/dir"}``.
    ``transforms``: ordered JSON records of structure changes since."""

    source: dict[str, Any]
    transforms: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored in a compressed file's metadata."""
        return {"source": copy.deepcopy(self.source), "transforms": copy.deepcopy(self.transforms)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """Inverse of :meth:`to_dict`."""
        return cls(source=dict(data["source"]), transforms=[dict(t) for t in data.get("transforms", [])])


def set_provenance(model: nn.Module, provenance: Provenance) -> None:
    """Attach a provenance record to a model (kept through ``copy.deepcopy``)."""
    object.__setattr__(model, _ATTR, provenance)


def get_provenance(model: nn.Module) -> Provenance | None:
    """The model's provenance record, or None for a model modelpress did not build."""
    return getattr(model, _ATTR, None)


def record_transform(model: nn.Module, record: dict[str, Any]) -> None:
    """Append a structure change to the model's provenance (no-op for a model without one)."""
    prov = get_provenance(model)
    if prov is not None:
        prov.transforms.append(copy.deepcopy(record))


def replay_transforms(model: nn.Module, transforms: list[dict[str, Any]]) -> nn.Module:
    """Apply each recorded transform's structure change, in order, using the registered rebuilders (the built-in
    technique modules, which register them, are imported first: a file may be unpacked in a fresh process)."""
    from modelpress.recipe.builtin import load_builtin_stages

    load_builtin_stages()
    for record in transforms:
        model = REBUILDERS.get(record["type"], fix="this file needs a newer modelpress")(model, record)
    return model


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` at the submodule path ``name`` of ``model`` and return the model; an empty ``name`` replaces the
    model itself, and ``new`` then takes over its provenance (what structure-changing stages and rebuilders share).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2))
        >>> type(replace_module(model, "0", nn.Identity())[0]).__name__
        'Identity'
        >>> root = nn.Linear(2, 2)
        >>> set_provenance(root, Provenance(source={"kind": "factory", "ref": "torch.nn:Identity"}))
        >>> get_provenance(replace_module(root, "", nn.Identity())).source["ref"]
        'torch.nn:Identity'
    """
    if not name:
        provenance = get_provenance(model)
        if provenance is not None:
            set_provenance(new, provenance)
        return new
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    return model


# kind of a record entry -> function(the model's module at that name or None, the entry) -> an empty runtime module,
# or None when the model's module does not match the entry
LayerBuilder = Callable[[nn.Module | None, dict[str, Any]], nn.Module | None]


def rebuild_layers(model: nn.Module, record: dict[str, Any], builders: Mapping[str, LayerBuilder],
                   transform: str) -> nn.Module:
    """Replace each layer a transform record lists (``record["layers"]``: entries with ``name`` and ``kind``) by the
    empty runtime module its kind's builder makes (the values load later); a kind without a builder, or a model
    whose layer does not match the entry, is a :class:`FormatError` naming the layer.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2))
        >>> builders = {"identity": lambda module, entry: nn.Identity() if module is not None else None}
        >>> type(rebuild_layers(model, {"layers": [{"name": "0", "kind": "identity"}]}, builders, "demo")[0]).__name__
        'Identity'
    """
    from modelpress.errors import FormatError

    for layer in record.get("layers", []):
        name, kind = str(layer.get("name", "")), layer.get("kind")
        try:
            module = model.get_submodule(name) if name else None
        except AttributeError:
            module = None
        if kind not in builders:
            raise FormatError(f"{transform} transform: layer {name!r}: kind", f"one of {sorted(builders)}", kind,
                              "this file needs a newer modelpress")
        new = builders[kind](module, layer)
        if new is None:
            raise FormatError(f"{transform} transform: layer {name!r}", f"a layer matching the record ({kind})",
                              f"<{type(module).__name__}>", "the file and this modelpress version disagree on the "
                              "architecture")
        model = replace_module(model, name, new.eval())
    return model
