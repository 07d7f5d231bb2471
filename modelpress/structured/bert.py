"""Surgery on Hugging Face BERT-style encoder layers: remove attention heads and FFN neurons, physically.

A BERT layer (``transformers``' ``BertLayer`` and its look-alikes) is found by its parts: ``attention.self`` with
``query``/``key``/``value`` Linear layers ``[heads * d, H]`` and an ``attention_head_size`` d,
``attention.output.dense`` ``[H, heads * d]``, ``intermediate.dense`` ``[F, H]`` and ``output.dense`` ``[H, F]``.

* Removing heads keeps the kept heads' rows of query/key/value (rows ``h*d .. (h+1)*d`` are head h) and the same
  columns of ``attention.output.dense``; the self-attention module's ``num_attention_heads`` and ``all_head_size``
  are updated. Its forward reshapes to ``(-1, attention_head_size)`` heads and keeps its ``scaling``
  (``1 / sqrt(d)``), both unchanged, so the kept heads compute exactly what they computed before.
* Removing FFN neurons keeps rows of ``intermediate.dense`` and the same columns of ``output.dense``.

Keeping every head and neuron gives the same layer (same values, same output). The residual width H is never
touched, so a pruned layer still fits its neighbours and the model's output keeps its shape.

Example:
    >>> import torch
    >>> from transformers import BertConfig, BertModel
    >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
    ...                             intermediate_size=32)).eval()
    >>> layer = bert.encoder.layer[0]
    >>> prune_heads_(layer, [0, 2]); prune_ffn_(layer, list(range(8)))
    >>> layer.attention.self.query.weight.shape, layer.output.dense.weight.shape
    (torch.Size([8, 16]), torch.Size([16, 8]))
    >>> bert(torch.tensor([[1, 2, 3]])).last_hidden_state.shape
    torch.Size([1, 3, 16])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from modelpress.errors import ConfigError

__all__ = ["BertLayerShape", "bert_layers", "layer_shape", "prune_ffn_", "prune_heads_", "why_not_bert_layer"]


class BertLayerShape(tuple):
    """``(heads, head_size, ffn)`` of one BERT layer: heads of its self-attention, their width d, FFN neurons."""

    __slots__ = ()

    def __new__(cls, heads: int, head_size: int, ffn: int) -> BertLayerShape:
        """Example:
        >>> BertLayerShape(12, 32, 1536).heads
        12
        """
        return super().__new__(cls, (heads, head_size, ffn))

    @property
    def heads(self) -> int:
        """Number of attention heads."""
        return self[0]

    @property
    def head_size(self) -> int:
        """Width d of one head."""
        return self[1]

    @property
    def ffn(self) -> int:
        """Number of FFN (intermediate) neurons."""
        return self[2]


def _linear(module: nn.Module, path: str) -> nn.Linear | None:
    try:
        found = module.get_submodule(path)
    except AttributeError:
        return None
    return found if type(found) is nn.Linear else None


def why_not_bert_layer(module: nn.Module) -> str | None:
    """Why ``module`` is not a BERT layer this surgery handles (None: it is one).

    Example:
        >>> why_not_bert_layer(torch.nn.Linear(2, 2))[:45]
        'not a BERT-style layer (no attention.self.que'
    """
    parts = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
             "intermediate.dense", "output.dense")
    linears = [_linear(module, p) for p in parts]
    if any(x is None for x in linears):
        if all(hasattr(module, a) for a in ("attention", "intermediate", "output")):
            return "a BERT-style layer whose projections are not plain nn.Linear (e.g. quantized or factorized)"
        return ("not a BERT-style layer (no attention.self.query/key/value, attention.output.dense, "
                "intermediate.dense, output.dense)")
    if getattr(module, "crossattention", None) is not None:
        return "has cross-attention (decoder layer); only encoder self-attention is handled"
    attn = module.attention.self
    d, heads = getattr(attn, "attention_head_size", None), getattr(attn, "num_attention_heads", None)
    if not isinstance(d, int) or not isinstance(heads, int):
        return "its self-attention has no integer attention_head_size / num_attention_heads"
    q, k, v, o, up, down = linears
    if not (q.out_features == k.out_features == v.out_features == o.in_features == heads * d):  # type: ignore[union-attr]
        return f"query/key/value/output widths disagree with {heads} heads x {d}"
    if up.out_features != down.in_features:  # type: ignore[union-attr]
        return "intermediate.dense and output.dense widths disagree"
    if getattr(attn, "position_embedding_type", "absolute") not in ("absolute", None):
        return "relative position embeddings (per-head distance embeddings are not handled)"
    return None


def bert_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every BERT-style layer of ``model``, in model order.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        ...                             intermediate_size=16))
        >>> [name for name, _ in bert_layers(bert)]
        ['encoder.layer.0', 'encoder.layer.1']
    """
    return [(name, m) for name, m in model.named_modules() if why_not_bert_layer(m) is None]


def layer_shape(layer: nn.Module) -> BertLayerShape:
    """The heads, head size and FFN width of a BERT layer as it stands.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                             intermediate_size=16))
        >>> tuple(layer_shape(bert.encoder.layer[0]))
        (2, 4, 16)
    """
    attn = layer.attention.self
    return BertLayerShape(attn.num_attention_heads, attn.attention_head_size, layer.intermediate.dense.out_features)


def _sliced(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear holding the given rows (outputs) and columns (inputs) of ``linear``'s weight (and bias rows)."""
    weight = linear.weight.detach()  # [out, in]
    weight = weight if rows is None else weight.index_select(0, rows)
    weight = weight if cols is None else weight.index_select(1, cols)
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None, device=weight.device,
                    dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            bias = linear.bias.detach()
            new.bias.copy_(bias if rows is None else bias.index_select(0, rows))
    new.weight.requires_grad_(linear.weight.requires_grad)
    if new.bias is not None:
        new.bias.requires_grad_(linear.bias.requires_grad)
    return new.train(linear.training)


def _checked(keep: Sequence[int], total: int, what: str, where: str) -> torch.Tensor:
    """Sorted, distinct kept indices as an int64 tensor; a ConfigError for an empty or out-of-range set."""
    kept = sorted({int(i) for i in keep})
    if not kept:
        raise ConfigError(f"{where}: {what} kept", f"at least 1 of the {total} {what}", 0,
                          f"keep at least one {what[:-1]} per layer (lower the ratio or remove fewer)")
    if kept[0] < 0 or kept[-1] >= total:
        raise ConfigError(f"{where}: {what} indices", f"indices in [0, {total - 1}]", kept,
                          f"this layer has {total} {what}")
    return torch.tensor(kept, dtype=torch.long)


def prune_heads_(layer: nn.Module, keep: Sequence[int], where: str = "layer") -> None:
    """Keep only the heads ``keep`` (indices among the layer's current heads) of a BERT layer, in place.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=4,
        ...                             intermediate_size=16))
        >>> prune_heads_(bert.encoder.layer[0], [3]); tuple(layer_shape(bert.encoder.layer[0]))
        (1, 2, 16)
        >>> prune_heads_(bert.encoder.layer[0], [])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: layer: heads kept: expected at least 1 of the 1 heads, got 0. Fix: keep at ...
    """
    attn = layer.attention.self
    heads, d = attn.num_attention_heads, attn.attention_head_size
    kept = _checked(keep, heads, "heads", where)
    # head h owns rows h*d .. h*d + d - 1 of query/key/value and the same columns of the output projection
    rows = (kept[:, None] * d + torch.arange(d)[None, :]).reshape(-1)  # [kept * d]
    for part in ("query", "key", "value"):
        setattr(attn, part, _sliced(getattr(attn, part), rows=rows))
    layer.attention.output.dense = _sliced(layer.attention.output.dense, cols=rows)
    # the forward reshapes to (-1, attention_head_size) and scales by 1/sqrt(d): both stay as they are
    attn.num_attention_heads = len(kept)
    attn.all_head_size = len(kept) * d


def prune_ffn_(layer: nn.Module, keep: Sequence[int], where: str = "layer") -> None:
    """Keep only the FFN neurons ``keep`` of a BERT layer (rows of ``intermediate.dense``, columns of
    ``output.dense``), in place.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                             intermediate_size=16))
        >>> prune_ffn_(bert.encoder.layer[0], [0, 5, 9]); bert.encoder.layer[0].output.dense.in_features
        3
    """
    kept = _checked(keep, layer.intermediate.dense.out_features, "neurons", where)
    layer.intermediate.dense = _sliced(layer.intermediate.dense, rows=kept)
    layer.output.dense = _sliced(layer.output.dense, cols=kept)
