"""How each prunable layer joins the channel graph while the model is traced (one function per layer kind).

A layer *consumes* the channels of its input (its weight's input dim, a BN's vectors) and *produces* new ones (its
weight's output dim and bias). Depthwise convs pass their input channels through (output ``c`` is input ``c``);
grouped convs join the same position of every group, so each group keeps the same count; attention layers add an
internal group of heads (or of head dims) next to their input and output channels.

Example:
    >>> import torch
    >>> from modelpress.structured.trace import trace_channels
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3, groups=8),
    ...                             torch.nn.Conv2d(8, 4, 1))
    >>> [(g.layers, g.size) for g in trace_channels(model, (torch.randn(1, 3, 8, 8),)).groups if not g.blocked]
    [(('0', '1'), 8)]
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from modelpress.structured.trace import Layout

__all__ = ["record_layer"]


def _outputs(tracer: Any, name: str, module: nn.Module, out: Tensor, dim: int, weight_dim: int) -> list[int]:
    slots = [(name, "weight", weight_dim)] + ([(name, "bias", 0)] if getattr(module, "bias", None) is not None else [])
    feats = tracer.graph.new(out.shape[dim], slots)
    tracer.set(out, Layout(dim, feats))
    return feats


def _conv(tracer: Any, name: str, module: nn.Conv1d | nn.Conv2d, x: Tensor, out: Tensor) -> None:
    layout = tracer.get(x)
    if x.dim() != module.weight.dim():
        tracer.block_all(x, f"{name} runs on an unbatched input")
        tracer.graph.new(out.shape[0], blocked=f"{name} runs on an unbatched input")
        return
    if layout is not None and layout.dim != 1:
        tracer.graph.block(layout.feats, f"{name} reads channels from dim {layout.dim}")
        layout = None
    groups, cin, cout = module.groups, module.in_channels, module.out_channels
    if groups == 1:
        if layout is not None:
            tracer.graph.consume(layout.feats, name, "weight", 1)
        _outputs(tracer, name, module, out, 1, 0)
        return
    per_in, per_out = cin // groups, cout // groups
    if per_in == 1 and cin == cout:  # depthwise: output channel c is input channel c
        if layout is None:
            layout = Layout(1, tracer.graph.new(cin, blocked=f"depthwise {name} reads untracked channels"))
        for c, e in enumerate(layout.feats):
            tracer.graph.own(e, (name, "weight", 0, c))
            if module.bias is not None:
                tracer.graph.own(e, (name, "bias", 0, c))
            tracer.graph.producers[e].add(name)
        tracer.set(out, layout)
        return
    if per_in == 1:  # a channel multiplier: one input channel feeds several outputs
        reason = f"{name} is a depthwise conv with a channel multiplier ({cout // cin})"
        tracer.block_all(x, reason)
        tracer.set(out, Layout(1, tracer.graph.new(cout, blocked=reason)))
        return
    # grouped: position j of every group is pruned together (weight dims stay [out, in/groups, ...])
    if layout is not None:
        tracer.graph.consume(layout.feats, name, "weight", 1, [c % per_in for c in range(cin)])
        for j in range(per_in):
            tracer.graph.union([layout.feats[j]] * (groups - 1), layout.feats[j + per_in::per_in])
    feats = _outputs(tracer, name, module, out, 1, 0)
    for j in range(per_out):
        tracer.graph.union([feats[j]] * (groups - 1), feats[j + per_out::per_out])


def _attention(tracer: Any, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
               out: Any) -> None:
    q, k, v = (kwargs.get(key, args[i] if len(args) > i else None) for i, key in enumerate(("query", "key", "value")))
    result = out[0]
    layouts = [tracer.get(t) for t in (q, k, v)]
    supported = (getattr(module, "_qkv_same_embed_dim", True) and getattr(module, "bias_k", None) is None
                 and not getattr(module, "add_zero_attn", False) and module.in_proj_weight is not None)
    if not supported:
        reason = f"{name}: attention with separate key/value sizes, bias_k/bias_v or add_zero_attn"
        tracer.block_all((q, k, v), reason)
        tracer.set(result, Layout(result.dim() - 1, tracer.graph.new(result.shape[-1], blocked=reason)))
        return
    known = [lay for lay in layouts if lay is not None]
    if any(lay.dim != q.dim() - 1 for lay in known):
        tracer.block_all((q, k, v), f"{name} reads channels from a dim other than the last")
        known = []
    if known:  # in_proj's columns serve query, key and value alike: their channels are joined
        if len(known) < 3 and any(lay is None for lay in layouts):
            tracer.graph.block(known[0].feats, f"{name}: query, key and value are not all tracked")
        for lay in known[1:]:
            tracer.graph.union(known[0].feats, lay.feats)
        tracer.graph.consume(known[0].feats, name, "in_proj_weight", 1)
    slots = [(f"{name}.out_proj", "weight", 0)] + ([(f"{name}.out_proj", "bias", 0)]
                                                   if module.out_proj.bias is not None else [])
    tracer.set(result, Layout(result.dim() - 1, tracer.graph.new(result.shape[-1], slots, producer=name)))
    heads, head_dim = module.num_heads, module.head_dim
    inner = heads * head_dim
    tracer.attention[name] = (heads, head_dim)
    if tracer.attention_mode == "off":
        return
    by_head = tracer.attention_mode == "heads"
    units = tracer.graph.new(heads if by_head else head_dim, kind=tracer.attention_mode, producer=name)
    for h in range(heads):
        for j in range(head_dim):
            e, row = units[h if by_head else j], h * head_dim + j
            for part in range(3):  # q, k, v rows of in_proj
                tracer.graph.own(e, (name, "in_proj_weight", 0, part * inner + row))
                if module.in_proj_bias is not None:
                    tracer.graph.own(e, (name, "in_proj_bias", 0, part * inner + row))
            tracer.graph.own(e, (f"{name}.out_proj", "weight", 1, row))


def record_layer(tracer: Any, name: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 out: Any) -> None:
    """Add one call of a prunable layer to the tracer's graph (see the module docstring)."""
    x = args[0] if args else next(iter(kwargs.values()), None)
    if type(module) in (nn.Conv1d, nn.Conv2d):
        return _conv(tracer, name, module, x, out)
    if type(module) is nn.ConvTranspose2d:
        layout = tracer.get(x)
        if module.groups != 1 or x.dim() != 4:
            reason = f"{name}: grouped or unbatched transposed conv"
            tracer.block_all(x, reason)
            tracer.set(out, Layout(1, tracer.graph.new(out.shape[1], blocked=reason)))
            return None
        if layout is not None:
            if layout.dim == 1:
                tracer.graph.consume(layout.feats, name, "weight", 0)
            else:
                tracer.graph.block(layout.feats, f"{name} reads channels from dim {layout.dim}")
        slots = [(name, "weight", 1)] + ([(name, "bias", 0)] if module.bias is not None else [])
        tracer.set(out, Layout(1, tracer.graph.new(out.shape[1], slots)))
        return None
    if type(module) is nn.Linear:
        layout = tracer.get(x)
        if layout is not None:
            if layout.dim == x.dim() - 1:
                tracer.graph.consume(layout.feats, name, "weight", 1)
            else:
                tracer.graph.block(layout.feats, f"{name} is applied along dim {x.dim() - 1}, not the channels")
        _outputs(tracer, name, module, out, out.dim() - 1, 0)
        return None
    if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm):
        layout = tracer.get(x)
        if layout is None:
            return None
        norm = type(module) is nn.LayerNorm
        along = x.dim() - len(module.normalized_shape) if norm else 1  # type: ignore[arg-type]
        if norm and layout.dim < along:  # normalized over other dims: channels pass through untouched
            tracer.set(out, layout)
            return None
        if layout.dim != along or (norm and len(module.normalized_shape) != 1):  # type: ignore[arg-type]
            tracer.graph.block(layout.feats, f"{name} normalizes over several dims including the channels")
            return None
        for attr in ("weight", "bias", "running_mean", "running_var"):
            if getattr(module, attr, None) is not None:
                tracer.graph.consume(layout.feats, name, attr, 0)
        tracer.set(out, layout)
        return None
    if type(module) is nn.Embedding:
        tracer.set(out, Layout(out.dim() - 1, tracer.graph.new(out.shape[-1], [(name, "weight", 1)])))
        return None
    return _attention(tracer, name, module, args, kwargs, out)
