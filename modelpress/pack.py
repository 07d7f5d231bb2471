"""``pack(model, path)`` and ``unpack(path)``: a model to a compressed file and back, exactly.

The file (see docs/FORMAT.md) holds every tensor of the state dict through its smallest lossless codec chain, and
the model's provenance: where the base architecture comes from and the structure changes made since. ``unpack``
rebuilds the architecture from that record — no pickle, no code from the file — and loads the tensors, so the
outputs of the unpacked model equal those of the packed one bit for bit.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from modelpress.zoo.models import LeNet300
    >>> model = LeNet300()
    >>> path = Path(tempfile.mkdtemp()) / "m.mpz"
    >>> nbytes = pack(model, path, source="modelpress.zoo.models:LeNet300")
    >>> restored = unpack(path)
    >>> x = torch.randn(2, 1, 28, 28)
    >>> torch.equal(model(x), restored(x))
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelpress.errors import ConfigError, FormatError
from modelpress.format import read_file, write_file
from modelpress.provenance import Provenance, get_provenance, replay_transforms, set_provenance
from modelpress.sources import build_from_source

__all__ = ["pack", "unpack"]

FILE_KIND = "modelpress.model"


def _tensors_and_aliases(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict with tied tensors stored once: aliases map a key to the key holding the same storage."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...], tuple[int, ...], torch.dtype], str] = {}
    for key, value in model.state_dict(keep_vars=False).items():
        value = value.detach()
        identity = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape),
                    tuple(value.stride()), value.dtype)
        if value.numel() and identity in seen:
            aliases[key] = seen[identity]
            continue
        seen[identity] = key
        tensors[key] = value.contiguous().cpu()
    return tensors, aliases


def pack(model: nn.Module, path: str | Path, source: str | None = None) -> int:
    """Write ``model`` to a compressed file at ``path`` atomically; returns the file's size in bytes.

    ``source`` (``package.module:factory``) is needed only for a model modelpress did not load itself.
    """
    provenance = get_provenance(model)
    if provenance is None:
        if source is None:
            raise ConfigError("pack: model", "a model loaded by modelpress (zoo:, a factory, a checkpoint) or a "
                              "source= argument", f"<{type(model).__name__} with no provenance>",
                              "pass source='package.module:factory' that builds the architecture")
        provenance = Provenance(source={"kind": "factory", "ref": source})
        _check_source_rebuilds(model, source)
    tensors, aliases = _tensors_and_aliases(model)
    metadata: dict[str, Any] = {"kind": FILE_KIND, "provenance": provenance.to_dict(), "aliases": aliases}
    return write_file(path, tensors, metadata)


def _check_source_rebuilds(model: nn.Module, source: str) -> None:
    """Refuse, before writing, a ``source=`` factory whose architecture is not the model's (e.g. the model was changed
    by a structure-changing stage after it was built by hand, so no provenance recorded the change): such a file
    would be written but could never be unpacked."""
    built = build_from_source({"kind": "factory", "ref": source}).state_dict()
    actual = model.state_dict()
    differ = sorted(set(built) ^ set(actual)) or [k for k in actual if built[k].shape != actual[k].shape
                                                  or built[k].dtype != actual[k].dtype]
    if differ:
        raise ConfigError("pack: source", f"a factory that builds this model's architecture ({len(actual)} tensors)",
                          f"<{source}: differs at {', '.join(differ[:3])}>",
                          "load the model through modelpress (zoo:, a factory, a checkpoint) before applying stages "
                          "that change its structure, so the changes are recorded, or pass the factory of the "
                          "changed architecture")


def unpack(path: str | Path) -> nn.Module:
    """Rebuild the model stored at ``path`` (eval mode), with exactly the stored weights."""
    tensors, metadata = read_file(path)
    if metadata.get("kind") != FILE_KIND or "provenance" not in metadata:
        raise FormatError(f"file {str(path)!r}", f"metadata kind {FILE_KIND!r} with a provenance record",
                          metadata.get("kind"), "this file holds tensors but no model; use modelpress.format")
    provenance = Provenance.from_dict(metadata["provenance"])
    model = replay_transforms(build_from_source(provenance.source), provenance.transforms)
    for key, target in dict(metadata.get("aliases", {})).items():
        if target not in tensors:
            raise FormatError(f"file {str(path)!r}: alias {key!r}", "a stored tensor name", target,
                              "the file is corrupted")
        tensors[key] = tensors[target]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise FormatError(f"file {str(path)!r}", "the tensors of the recorded architecture",
                          f"<missing {missing[:3]}, unexpected {extra[:3]}>",
                          "the file and this modelpress version disagree on the architecture")
    for key, value in expected.items():
        if tensors[key].shape != value.shape or tensors[key].dtype != value.dtype:
            raise FormatError(f"file {str(path)!r}: tensor {key!r}",
                              f"shape {list(value.shape)} {value.dtype}",
                              f"<shape {list(tensors[key].shape)} {tensors[key].dtype}>",
                              "the file and this modelpress version disagree on the architecture")
    model.load_state_dict(tensors, strict=True)
    set_provenance(model, provenance)
    return model.eval()
