"""Per-layer surgery: cut the removed units' slices out of every tensor, make the layers physically smaller, and
record each changed layer's constructor arguments so ``unpack`` rebuilds the smaller layers on the original
architecture (provenance record ``{"type": "prune-channels", "layers": [...], "ties": [...]}``, plus
``"channels_last": true`` when the stage stored the 4-D weights in that memory format: the rebuilder does the same).

Each tensor is cut once, whatever number of layers use it, so tied weights stay tied. Conv1d/2d (plain, grouped,
depthwise), ConvTranspose2d, Linear, BatchNorm1d/2d, LayerNorm and Embedding keep their class with new sizes;
``nn.MultiheadAttention`` becomes a :class:`~modelpress.structured.attention.PrunedMultiheadAttention`.

Example:
    >>> import torch
    >>> from modelpress.structured.trace import trace_channels
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    >>> trace = trace_channels(model, (torch.randn(1, 4),))
    >>> hidden = next(i for i, g in enumerate(trace.groups) if not g.blocked)
    >>> model, record = remove_units(model, trace, {hidden: [0, 5]})
    >>> model[0].weight.shape, model[2].in_features, record["layers"][0]["args"]
    (torch.Size([4, 4]), 4, {'in_features': 4, 'out_features': 4, 'bias': True})
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from modelpress.errors import FormatError
from modelpress.memory_format import restore_memory_format
from modelpress.provenance import REBUILDERS, rebuild_layers, replace_module
from modelpress.structured.attention import PrunedMultiheadAttention, from_attention
from modelpress.structured.trace import Trace

__all__ = ["layer_record", "remove_units"]

_CLASSES: dict[str, tuple[type[nn.Module], ...]] = {
    "conv1d": (nn.Conv1d,), "conv2d": (nn.Conv2d,), "conv-transpose2d": (nn.ConvTranspose2d,),
    "linear": (nn.Linear,), "batch-norm1d": (nn.BatchNorm1d,), "batch-norm2d": (nn.BatchNorm2d,),
    "layer-norm": (nn.LayerNorm,), "embedding": (nn.Embedding,),
    "attention": (nn.MultiheadAttention, PrunedMultiheadAttention),
}


def layer_record(name: str, module: nn.Module) -> dict[str, Any]:
    """``{"name", "kind", "args"}``: what rebuilds an empty ``module`` of the same sizes.

    Example:
        >>> layer_record("bn", nn.BatchNorm2d(8))["args"]["num_features"]
        8
    """
    if isinstance(module, PrunedMultiheadAttention):
        return {"name": name, "kind": "attention", "args": module.config()}
    kind = next(k for k, classes in _CLASSES.items() if type(module) is classes[0])
    m: Any = module
    if kind in ("conv1d", "conv2d", "conv-transpose2d"):
        args = {"in_channels": m.in_channels, "out_channels": m.out_channels, "kernel_size": list(m.kernel_size),
                "stride": list(m.stride), "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
                "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None,
                "padding_mode": m.padding_mode}
        if kind == "conv-transpose2d":
            args["output_padding"] = list(m.output_padding)
    elif kind == "linear":
        args = {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None}
    elif kind.startswith("batch-norm"):
        args = {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum, "affine": m.affine,
                "track_running_stats": m.track_running_stats}
    elif kind == "layer-norm":
        args = {"normalized_shape": list(m.normalized_shape), "eps": m.eps,
                "elementwise_affine": m.elementwise_affine, "bias": m.bias is not None}
    else:
        args = {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim, "padding_idx": m.padding_idx,
                "max_norm": m.max_norm, "norm_type": m.norm_type, "scale_grad_by_freq": m.scale_grad_by_freq,
                "sparse": m.sparse}
    return {"name": name, "kind": kind, "args": args}


def _fix(module: nn.Module) -> None:
    """Set a layer's size attributes from its (already cut) tensors."""
    m: Any = module
    if isinstance(m, nn.Conv1d | nn.Conv2d):
        depthwise = m.groups > 1 and m.groups == m.in_channels == m.out_channels
        m.out_channels = m.weight.shape[0]
        if depthwise:
            m.groups = m.in_channels = m.out_channels
        else:
            m.in_channels = m.weight.shape[1] * m.groups
    elif isinstance(m, nn.ConvTranspose2d):
        m.in_channels, m.out_channels = m.weight.shape[0], m.weight.shape[1]
    elif isinstance(m, nn.Linear):
        m.out_features, m.in_features = m.weight.shape
    elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        m.num_features = (m.weight if m.affine else m.running_mean).shape[0]
    elif isinstance(m, nn.LayerNorm):
        m.normalized_shape = (m.weight.shape[0],)
    elif isinstance(m, nn.Embedding):
        m.embedding_dim = m.weight.shape[1]


def _attention(model: nn.Module, name: str, trace: Trace, removed_rows: set[int]) -> PrunedMultiheadAttention:
    """The smaller attention layer, from the q rows of in_proj that were removed (whole heads or head dims)."""
    module: Any = model.get_submodule(name)
    heads, head_dim = trace.attention[name]
    gone = sum(all(h * head_dim + j in removed_rows for j in range(head_dim)) for h in range(heads))
    left_heads = heads - gone
    left_dims = (heads * head_dim - len({r for r in removed_rows if r < heads * head_dim})) // max(left_heads, 1)
    scale = module.scale if isinstance(module, PrunedMultiheadAttention) else 1.0 / math.sqrt(head_dim)
    return from_attention(module, left_heads, left_dims, scale)


def remove_units(model: nn.Module, trace: Trace, removals: dict[int, list[int]]) -> tuple[nn.Module, dict[str, Any]]:
    """Cut the units ``removals[group index]`` out of the model in place; returns the model and the provenance
    record of the changed layers (empty ``layers`` when nothing was removed)."""
    cut: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))  # id(tensor) -> dim -> indices
    uses: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for slot, tid in trace.tensor_ids.items():
        uses[tid].append(slot)
    for index, units in removals.items():
        for unit in units:
            for module, attr, dim, i in trace.groups[index].units[unit]:
                cut[trace.tensor_ids[(module, attr)]][dim].add(i)
    touched: set[str] = set()
    attention_rows: dict[str, set[int]] = defaultdict(set)
    for tid, dims in cut.items():
        first_module, first_attr = uses[tid][0]
        owner = model.get_submodule(first_module)
        tensor = getattr(owner, first_attr)
        new = tensor.detach()
        for dim, indices in sorted(dims.items()):
            keep = torch.tensor([i for i in range(new.shape[dim]) if i not in indices], dtype=torch.long)
            new = new.index_select(dim, keep)
        value: Any = nn.Parameter(new.clone(), requires_grad=tensor.requires_grad) if isinstance(
            tensor, nn.Parameter) else new.clone()
        for module_name, attr in uses[tid]:
            module = model.get_submodule(module_name)
            (module._parameters if attr in module._parameters else module._buffers)[attr] = value
            parent = module_name.rpartition(".")[0] if module_name.endswith("out_proj") else None
            if module_name in trace.attention or parent in trace.attention:
                owner_name = module_name if module_name in trace.attention else str(parent)
                touched.add(owner_name)
                if module_name == owner_name and attr == "in_proj_weight":
                    attention_rows[owner_name] |= dims.get(0, set())
            else:
                touched.add(module_name)
    layers = []
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    for name in sorted(touched, key=order.__getitem__):
        module = model.get_submodule(name)
        if name in trace.attention:
            module = _attention(model, name, trace, attention_rows[name])
            model = replace_module(model, name, module)
        else:
            _fix(module)
        layers.append(layer_record(name, module))
    ties = [[f"{m}.{a}" if m else a for m, a in slots] for tid, slots in uses.items() if tid in cut and len(slots) > 1]
    return model, {"type": "prune-channels", "layers": layers, "ties": ties}


def _builder(kind: str) -> Callable[[nn.Module | None, dict[str, Any]], nn.Module | None]:
    def build(module: nn.Module | None, entry: dict[str, Any]) -> nn.Module | None:
        if module is None or type(module) not in _CLASSES[kind]:
            return None
        args = {k: tuple(v) if isinstance(v, list) and k != "normalized_shape" else v
                for k, v in entry["args"].items()}
        if kind == "attention":
            return PrunedMultiheadAttention(**args)
        return _CLASSES[kind][0](**args)

    return build


@REBUILDERS.register("prune-channels")
def _rebuild(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Replace each recorded layer by an empty one of the recorded sizes, then tie the recorded tied tensors (and
    store the 4-D weights channels_last if the record says so)."""
    model = rebuild_layers(model, record, {kind: _builder(kind) for kind in _CLASSES}, "prune-channels")
    for names in record.get("ties", []):
        owner_name, _, attr = names[0].rpartition(".")
        shared = getattr(model.get_submodule(owner_name), attr)
        for other in names[1:]:
            module_name, _, other_attr = other.rpartition(".")
            module = model.get_submodule(module_name)
            if getattr(module, other_attr).shape != shared.shape:
                raise FormatError(f"prune-channels transform: tie {other!r}", f"shape {list(shared.shape)}",
                                  f"<{list(getattr(module, other_attr).shape)}>", "the file is corrupted")
            (module._parameters if other_attr in module._parameters else module._buffers)[other_attr] = shared
    return restore_memory_format(model, record)
