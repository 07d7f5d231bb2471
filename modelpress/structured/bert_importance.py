"""Importance of BERT attention heads and FFN neurons (higher = keep), from calibration inputs or weights alone.

* ``output-norm`` (default): what each unit adds to the residual stream on the task's calibration (training) inputs.
  A head's score is the root-mean-square over real (unpadded) tokens of ``||W_O[:, head] @ context_head||``, its
  exact contribution to the attention block's output; an FFN neuron's is ``rms(activation_j) * ||W_out[:, j]||``
  (Wanda's activation-times-weight product, per neuron). Both are in the units of the residual stream, so heads of
  different layers (and neurons of different layers) can be ranked together (``scope: global``).
* ``magnitude``: data-free; a head's query/key/value/output weight norm, a neuron's ``||W_in[j]|| * ||W_out[:, j]||``.
* ``random``: a seeded baseline.

A gradient (Taylor / head-mask) score is not offered: on a fidelity task the unpruned model *is* the target, so its
loss and every gradient are zero and first-order scores carry no signal.

Example:
    >>> import torch
    >>> from transformers import BertConfig, BertModel
    >>> from modelpress.structured.bert import bert_layers
    >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    ...                             intermediate_size=16)).eval()
    >>> class Wrap(torch.nn.Module):
    ...     def __init__(self): super().__init__(); self.bert = bert
    ...     def forward(self, ids, mask): return self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    >>> model = Wrap(); batch = (torch.tensor([[1, 2, 3]]), torch.tensor([[1, 1, 0]]))
    >>> scores = unit_scores(model, bert_layers(model), [batch], BertCriterion.output_norm)
    >>> scores["bert.encoder.layer.0"][0].shape, scores["bert.encoder.layer.0"][1].shape
    (torch.Size([2]), torch.Size([16]))
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor, nn

from modelpress.structured.bert import layer_shape

__all__ = ["BertCriterion", "unit_scores"]


class BertCriterion(StrEnum):
    """How heads and FFN neurons are scored."""

    output_norm = "output-norm"  # contribution to the residual stream on calibration inputs
    magnitude = "magnitude"  # weight norms only
    random = "random"  # seeded random baseline


Scores = dict[str, tuple[Tensor, Tensor]]  # layer name -> (head scores [heads], neuron scores [ffn])


def _weight_scores(layers: list[tuple[str, nn.Module]], criterion: BertCriterion, seed: int) -> Scores:
    generator = torch.Generator().manual_seed(seed)
    out: Scores = {}
    for name, layer in layers:
        shape = layer_shape(layer)
        if criterion is BertCriterion.random:
            out[name] = (torch.rand(shape.heads, generator=generator), torch.rand(shape.ffn, generator=generator))
            continue
        attn = layer.attention.self
        with torch.no_grad():
            heads = sum(getattr(attn, p).weight.float().reshape(shape.heads, -1).pow(2).sum(1)  # [heads]
                        for p in ("query", "key", "value"))
            w_o = layer.attention.output.dense.weight.float()  # [H, heads * d]
            heads = heads + w_o.reshape(w_o.shape[0], shape.heads, shape.head_size).pow(2).sum((0, 2))
            ffn = layer.intermediate.dense.weight.float().norm(dim=1) * layer.output.dense.weight.float().norm(dim=0)
        out[name] = (heads.sqrt(), ffn)
    return out


def unit_scores(model: nn.Module, layers: list[tuple[str, nn.Module]], batches: Iterable[tuple[Tensor, ...]],
                criterion: BertCriterion = BertCriterion.output_norm, seed: int = 0) -> Scores:
    """``{layer name: (head scores [heads], neuron scores [ffn])}`` for BERT ``layers`` of ``model``.

    ``batches`` (model inputs; the second, when ``[B, T]`` like the first, is the attention mask) are used by
    ``output-norm`` only; model called as ``model(*inputs)`` in eval mode without gradients. See the module docstring.
    """
    if criterion is not BertCriterion.output_norm:
        return _weight_scores(layers, criterion, seed)
    state: dict[str, Any] = {"mask": None}
    sums = {name: [torch.zeros(layer_shape(layer).heads, dtype=torch.float64),
                   torch.zeros(layer_shape(layer).ffn, dtype=torch.float64)] for name, layer in layers}
    tokens = torch.zeros((), dtype=torch.float64)

    def heads_hook(name: str, layer: nn.Module) -> Any:
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            shape = layer_shape(layer)
            x = args[0].float()  # [B, T, heads * d]: the concatenated head outputs (context)
            w = module.weight.float().reshape(-1, shape.heads, shape.head_size)  # [H, heads, d]
            per_head = torch.einsum("btnd,hnd->btnh", x.reshape(*x.shape[:2], shape.heads, shape.head_size), w)
            energy = per_head.pow(2).sum(-1)  # [B, T, heads]: squared norm of each head's contribution
            sums[name][0] += (energy * state["mask"][..., None]).sum((0, 1)).double()
        return hook

    def ffn_hook(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            a = args[0].float()  # [B, T, F]: the FFN activations (after GELU)
            sums[name][1] += (a.pow(2) * state["mask"][..., None]).sum((0, 1)).double()
        return hook

    handles = []
    for name, layer in layers:
        handles.append(layer.attention.output.dense.register_forward_pre_hook(heads_hook(name, layer)))
        handles.append(layer.output.dense.register_forward_pre_hook(ffn_hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for inputs in batches:
                ids = inputs[0]
                has_mask = len(inputs) > 1 and inputs[1].shape == ids.shape[:2] and ids.dim() == 2
                mask = inputs[1].float() if has_mask else torch.ones(ids.shape[:2])  # [B, T]: 1 = real token
                state["mask"] = mask
                tokens += mask.sum().double()
                model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    out: Scores = {}
    count = tokens.clamp(min=1)
    for name, layer in layers:
        heads = (sums[name][0] / count).sqrt().float()  # [heads] rms contribution norm
        w_out = layer.output.dense.weight.detach().float()  # [H, F]
        ffn = (sums[name][1] / count).sqrt().float() * w_out.norm(dim=0)  # [F]
        out[name] = (heads, ffn)
    return out
