"""Turn a model reference into an ``nn.Module``: ``zoo:NAME``, ``package.module:factory``, a checkpoint file, a
Hugging Face model directory, or a modelpress compressed file.

Checkpoints are loaded with ``torch.load(weights_only=True)`` (no code runs) and must be a dict
``{"arch": "<zoo:NAME | package.module:factory>", "state_dict": {...}}`` so the architecture is known.

Example:
    >>> model = load_model("torch.nn:Identity")
    >>> type(model).__name__
    'Identity'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelpress.errors import ConfigError, FormatError, ModelpressError
from modelpress.imports import import_object
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.task import Task

__all__ = ["build_from_source", "load_model", "save_checkpoint"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


def build_from_source(source: dict[str, Any]) -> nn.Module:
    """Build the base architecture a provenance ``source`` record names (weights as the builder leaves them)."""
    kind = source.get("kind")
    if kind == "zoo":
        from modelpress.zoo import build_architecture

        return build_architecture(source)
    if kind == "factory":
        model = import_object(source["ref"], what="model factory")(**source.get("kwargs", {}))
    elif kind == "hf":
        from modelpress.zoo.minilm import load_hf_directory

        model = load_hf_directory(source["path"])
    else:
        raise FormatError("model source", "kind zoo, factory or hf", kind, "the file was written by another tool")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model factory {source.get('ref')!r}", "a function returning a torch.nn.Module",
                          f"<{type(model).__name__}>", "return the model from the factory")
    return model


def _from_factory(ref: str) -> nn.Module:
    source = {"kind": "factory", "ref": ref}
    model = build_from_source(source)
    if get_provenance(model) is None:
        set_provenance(model, Provenance(source=source))
    return model


def _from_checkpoint(path: Path, task: Task | None) -> nn.Module:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses pickled code; any unreadable file lands here too
        raise ConfigError(f"checkpoint {str(path)!r}", "a file torch.load(weights_only=True) can read",
                          f"<{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}>",
                          "save it with torch.save({'arch': ..., 'state_dict': model.state_dict()}, path)") from None
    if not isinstance(data, dict) or "arch" not in data or "state_dict" not in data:
        keys = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"checkpoint {str(path)!r}", "a dict with keys 'arch' and 'state_dict'", f"<{keys}>",
                          "save it with torch.save({'arch': 'zoo:lenet5', 'state_dict': model.state_dict()}, path)")
    model = load_model(str(data["arch"]), task)
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as e:
        raise ConfigError(f"checkpoint {str(path)!r}", f"weights that fit architecture {data['arch']}",
                          f"<{str(e).splitlines()[0]}>", "save the checkpoint from the same architecture") from None
    return model


def load_model(spec: str | Path, task: Task | None = None) -> nn.Module:
    """Resolve a model reference (see module docstring); ``task`` picks the zoo weights' task."""
    text = str(spec)
    if text.startswith("zoo:"):
        from modelpress.zoo import load

        return load(text[4:], task)
    path = Path(text)
    if path.is_dir():
        from modelpress.zoo.minilm import load_hf_directory

        model = load_hf_directory(path)
        set_provenance(model, Provenance(source={"kind": "hf", "path": str(path.resolve())}))
        return model
    if path.is_file():
        if path.suffix in CHECKPOINT_SUFFIXES:
            return _from_checkpoint(path, task)
        from modelpress.pack import unpack

        return unpack(path)
    if ":" in text and not text.startswith((".", "/")) and "/" not in text.split(":")[0]:
        return _from_factory(text)
    raise ModelpressError(f"model {text!r}", "zoo:NAME, package.module:factory, a checkpoint, a Hugging Face "
                          "directory or a .mpz file", "<no such file or directory>",
                          "check the path, or run `modelpress analyze zoo:lenet300` to try the zoo")


def save_checkpoint(model: nn.Module, arch: str, path: str | Path) -> None:
    """Save ``{"arch": arch, "state_dict": ...}`` so :func:`load_model` can read it back without pickle.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "m.pt"
        >>> save_checkpoint(torch.nn.Linear(2, 2), "torch.nn:Identity", p)
        >>> sorted(torch.load(p, weights_only=True))
        ['arch', 'state_dict']
    """
    torch.save({"arch": arch, "state_dict": model.state_dict()}, path)
