"""Tracing a model into a :class:`~modelpress.structured.graph.ChannelGraph` by running it once.

The model runs on real example inputs under a :class:`torch.overrides.TorchFunctionMode` that sees every torch
function and tensor method called at the top level of the model's Python code, while forward hooks treat the layers
that can be pruned (Conv1d/2d, ConvTranspose2d, Linear, BatchNorm, LayerNorm, Embedding, MultiheadAttention) as
single ops. Every tensor that carries pruned channels is tagged with a *layout*: which dim holds them and which
element owns each position along it. Ops propagate layouts: elementwise ops keep them, ``+``/``*`` join them,
``cat`` concatenates them, ``split``/``chunk``/slicing cut them, ``flatten``/``view`` repeat each channel over the
positions it spreads to, ``permute``/``transpose`` move them, reductions over other dims keep them. Anything else a
tagged tensor reaches (an unknown function, a constant of the channel's size, the model's output) blocks its
elements, so the channels stay as they are: an unknown op can cost pruning, never correctness.

Why not torch.fx or torch.export: fx cannot trace Python control flow on tensor values (``TransformerEncoderLayer``
checks ``src.dim()``), and export decomposes modules into aten ops, which loses the layer boundaries surgery needs;
running the model sees what it really does, for any ``forward``.

Example:
    >>> import torch
    >>> from modelpress.zoo.models import ResNetSmall
    >>> trace = trace_channels(ResNetSmall(widths=(8, 16, 32)), (torch.randn(1, 1, 28, 28),))
    >>> [g.size for g in trace.groups if not g.blocked][:4]
    [8, 8, 8, 16]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from modelpress.structured.graph import ChannelGraph, Group

__all__ = ["LEAVES", "Layout", "Trace", "trace_channels"]

LEAVES = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm,
          nn.Embedding, nn.MultiheadAttention)

_UNARY = {"relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh", "leaky_relu",
          "elu", "selu", "mish", "softplus", "dropout", "dropout1d", "dropout2d", "alpha_dropout", "contiguous",
          "clone", "detach", "abs", "neg", "exp", "float", "half", "to", "type_as", "clamp", "clamp_min", "clamp_max",
          "sqrt", "rsqrt", "square", "erf", "pow", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
          "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate",
          "upsample", "max_pool2d_with_indices", "adaptive_max_pool2d_with_indices", "requires_grad_"}
_BINARY = {"add", "sub", "mul", "div", "true_divide", "rsub", "radd", "rmul", "rtruediv", "iadd", "isub", "imul",
           "itruediv", "truediv", "maximum", "minimum"}
_RESHAPE = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
_REDUCE = {"mean", "sum", "amax", "amin", "std", "var"}
_SPLIT = {"split", "chunk", "tensor_split", "split_with_sizes"}
_IGNORE = {"__get__", "size", "dim", "numel", "__len__", "ndimension", "nelement", "is_floating_point",
           "is_contiguous", "__format__", "__repr__", "__bool__", "item", "tolist", "data_ptr", "stride",
           "get_device", "__hash__", "__eq__"}


@dataclass
class Layout:
    """Channel tagging of one tensor: ``feats[i]`` is the element owning position ``i`` of dim ``dim``."""

    dim: int
    feats: list[int]


@dataclass
class Trace:
    """What tracing found: the graph, its groups, the attention layers (name -> (heads, head dim)) and the identity
    of every (module, tensor) slot (for tied weights)."""

    graph: ChannelGraph
    groups: list[Group]
    attention: dict[str, tuple[int, int]] = field(default_factory=dict)
    tensor_ids: dict[tuple[str, str], int] = field(default_factory=dict)


class _Tracer(TorchFunctionMode):
    def __init__(self, model: nn.Module, attention: str) -> None:
        super().__init__()
        self.graph = ChannelGraph()
        self.layouts: dict[int, tuple[Tensor, Layout]] = {}  # id(tensor) -> (tensor kept alive, its layout)
        self.depth = 0
        self.attention_mode = attention
        self.attention: dict[str, tuple[int, int]] = {}
        self.names = {m: n for n, m in model.named_modules(remove_duplicate=False)}

    # --- layouts -------------------------------------------------------------------------------------------------
    def get(self, t: Any) -> Layout | None:
        entry = self.layouts.get(id(t)) if isinstance(t, Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def set(self, t: Any, layout: Layout | None) -> None:
        if not isinstance(t, Tensor) or layout is None:
            return
        dim = layout.dim % t.dim() if t.dim() else 0
        if t.dim() == 0 or t.shape[dim] != len(layout.feats):
            self.graph.block(layout.feats, f"a tensor of shape {list(t.shape)} lost track of its channels")
            return
        self.layouts[id(t)] = (t, Layout(dim, layout.feats))

    def block_all(self, values: Any, reason: str) -> None:
        for t in tree_flatten(values)[0]:
            layout = self.get(t)
            if layout is not None:
                self.graph.block(layout.feats, reason)

    # --- torch functions -----------------------------------------------------------------------------------------
    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0:
            name = getattr(func, "__name__", "")
            tagged = [t for t in tree_flatten((args, kwargs))[0] if self.get(t) is not None]
            if tagged and name not in _IGNORE:
                try:
                    self.op(name.strip("_").removesuffix("_"), args, kwargs, out, name)
                except Exception as error:  # an argument form the handler does not know: keep those channels
                    self.block_all((args, kwargs, out), f"modelpress could not follow {name} ({error})")
        return out

    def op(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, raw: str) -> None:
        x, layout = args[0], self.get(args[0])
        if name in _BINARY:
            return self.binary(args, out)
        if name in ("cat", "concat", "concatenate"):
            return self.cat(list(args[0]), kwargs.get("dim", args[1] if len(args) > 1 else 0), out)
        if layout is None or not isinstance(out, Tensor | tuple | list):
            return self.block_all((args, kwargs), f"it reaches {raw}, which modelpress does not prune through")
        if name in _UNARY or (name in ("softmax", "log_softmax") and _arg(args, kwargs, 1, "dim") % x.dim()
                              != layout.dim):
            return self.set(out, layout)
        if name in _RESHAPE:
            return self.reshape(x, layout, out)
        if name in ("permute", "transpose", "swapaxes", "swapdims", "t"):
            perm = list(range(x.dim()))
            if name == "permute":
                perm = [d % x.dim() for d in (args[1:] if not isinstance(args[1], list | tuple) else args[1])]
            else:
                a, b = (0, 1) if name == "t" else (args[1] % x.dim(), args[2] % x.dim())
                perm[a], perm[b] = perm[b], perm[a]
            return self.set(out, Layout(perm.index(layout.dim), layout.feats))
        if name in _REDUCE and isinstance(out, Tensor):
            dims = _arg(args, kwargs, 1, "dim")
            if dims is not None:
                dims = {d % x.dim() for d in (dims if isinstance(dims, list | tuple) else [dims])}
                if layout.dim not in dims:
                    keep = bool(_arg(args, kwargs, 2, "keepdim"))
                    return self.set(out, Layout(layout.dim - (0 if keep else sum(d < layout.dim for d in dims)),
                                                layout.feats))
        if name in _SPLIT and isinstance(out, tuple | list):
            dim = _arg(args, kwargs, 2, "dim") or 0
            dim %= x.dim()
            offset = 0
            for piece in out:
                width = piece.shape[dim]
                feats = layout.feats[offset:offset + width] if dim == layout.dim else layout.feats
                offset += width
                self.set(piece, Layout(layout.dim, feats))
            return None
        if name == "getitem" and isinstance(out, Tensor):
            return self.getitem(x, layout, args[1], out)
        return self.block_all((args, kwargs), f"it reaches {raw}, which modelpress does not prune through")

    def binary(self, args: tuple[Any, ...], out: Any) -> None:
        if not isinstance(out, Tensor):
            return None
        operands = [a for a in args[:2] if isinstance(a, Tensor)]
        placed = [(a, self.get(a)) for a in operands]
        dims = {lay.dim + out.dim() - a.dim() for a, lay in placed if lay is not None}
        if len(dims) != 1:
            return self.block_all(args, "an elementwise op mixes channels of two different dims")
        dim = dims.pop()
        first: Layout | None = None
        for a, lay in placed:
            own = dim - (out.dim() - a.dim())
            if lay is None:
                if own >= 0 and a.shape[own] > 1:
                    return self.block_all(args, f"an elementwise op with a constant of {a.shape[own]} channels")
            elif first is None:
                first = lay
            elif len(lay.feats) != len(first.feats):
                return self.block_all(args, "an elementwise op broadcasts one channel over many")
            else:
                self.graph.union(first.feats, lay.feats)
        return self.set(out, Layout(dim, first.feats)) if first else None

    def cat(self, tensors: list[Tensor], dim: int, out: Tensor) -> None:
        dim %= out.dim()
        layouts = [self.get(t) for t in tensors]
        if any(lay is not None and lay.dim == dim for lay in layouts):
            feats: list[int] = []
            for t, lay in zip(tensors, layouts, strict=True):
                if lay is not None and lay.dim == dim:
                    feats += lay.feats
                else:
                    if lay is not None:
                        self.graph.block(lay.feats, "cat with a tensor whose channels lie along another dim")
                    feats += self.graph.new(t.shape[dim], blocked="concatenated with untracked channels")
            return self.set(out, Layout(dim, feats))
        known = [lay for lay in layouts if lay is not None]
        for lay in known[1:]:
            self.graph.union(known[0].feats, lay.feats)
        if any(lay is None and t.shape[known[0].dim] > 1 for t, lay in zip(tensors, layouts, strict=True)):
            return self.block_all(tensors, "cat with an untracked tensor of the same channels")
        return self.set(out, known[0])

    def reshape(self, x: Tensor, layout: Layout, out: Tensor) -> None:
        shape, channels = list(x.shape), x.shape[layout.dim]
        outer, inner = math.prod(shape[:layout.dim]), math.prod(shape[layout.dim + 1:])
        for d, size in enumerate(out.shape):
            rest = math.prod(out.shape[d + 1:])
            if (math.prod(out.shape[:d]) == outer and size % channels == 0 and size * rest == channels * inner
                    and (size > 1 or channels == 1)):
                k = size // channels  # each channel spreads over k consecutive positions (flatten into features)
                return self.set(out, Layout(d, [f for f in layout.feats for _ in range(k)]))
        self.graph.block(layout.feats, f"a reshape from {shape} to {list(out.shape)} splits the channels")
        return None

    def getitem(self, x: Tensor, layout: Layout, index: Any, out: Tensor) -> None:
        items = list(index) if isinstance(index, tuple) else [index]
        if Ellipsis in items:
            at = items.index(Ellipsis)
            fill = x.dim() - sum(i is not None for i in items if i is not Ellipsis)
            items = items[:at] + [slice(None)] * fill + items[at + 1:]
        in_dim = out_dim = 0
        new_dim, feats = None, layout.feats
        for item in items:
            if item is None:
                out_dim += 1
                continue
            if in_dim == layout.dim:
                if not isinstance(item, slice):
                    return self.graph.block(layout.feats, "indexing picks single channels")
                new_dim, feats = out_dim, layout.feats[item]
            elif not isinstance(item, slice | int):
                return self.graph.block(layout.feats, "advanced indexing of a channel-carrying tensor")
            out_dim += isinstance(item, slice)
            in_dim += 1
        if new_dim is None:  # the channel dim was not indexed: it sits after the indexed ones
            new_dim = layout.dim - in_dim + out_dim
        return self.set(out, Layout(new_dim, feats))

    # --- layers --------------------------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        self.depth += 1

    def hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        self.depth -= 1
        if self.depth == 0:
            from modelpress.structured.layers import record_layer

            record_layer(self, self.names[module], module, args, kwargs, out)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else None)


def trace_channels(model: nn.Module, inputs: tuple[Tensor, ...], attention: str = "heads") -> Trace:
    """Run ``model(*inputs)`` once (eval mode, no gradients; modes restored) and return the channel groups.

    ``attention``: what the attention layers' internal groups are made of: ``heads``, ``head-dim`` (the same
    positions of every head) or ``off``.
    """
    tracer = _Tracer(model, attention)
    handles = []
    for module in model.modules():
        if type(module) in LEAVES or type(module).__name__ == "PrunedMultiheadAttention":
            handles.append(module.register_forward_pre_hook(tracer.pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(tracer.hook, with_kwargs=True))
    was_training = model.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    model.eval()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder kernel would hide the layers
    try:
        with torch.no_grad(), tracer:
            out = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        torch.backends.mha.set_fastpath_enabled(fastpath)
    tracer.block_all(out, "it reaches the model's output")
    tensor_ids = {}
    for name, module in model.named_modules(remove_duplicate=False):
        for attr, value in [*module._parameters.items(), *module._buffers.items()]:
            if value is not None:
                tensor_ids[(name, attr)] = id(value)
    tracer.graph.tie(tensor_ids)
    return Trace(tracer.graph, tracer.graph.groups(), tracer.attention, tensor_ids)
