"""The ``prune-bert`` stage config: which fraction of attention heads and FFN neurons of BERT layers to remove.

``heads`` and ``ffn`` are the fractions removed: in every layer (``scope: uniform``) or of all layers together, ranked
by one importance across layers (``scope: global``; each layer keeps at least ``min_heads`` heads and
``ffn_multiple`` neurons). Kept FFN widths are rounded to a multiple of ``ffn_multiple`` (fast GEMM shapes).
``remove_heads`` names heads to remove explicitly (layer name -> head indices), as Hugging Face's ``prune_heads``
does. ``hints`` adds a per-layer hidden-state MSE (teacher layer i ↔ pruned layer i, same width) to the distillation
of ``finetune: {distill: ...}``.

Example:
    >>> config = PruneBertConfig(heads=0.5, ffn=0.75)
    >>> config.scope.value, config.criterion.value, config.ffn_multiple
    ('uniform', 'output-norm', 64)
    >>> PruneBertConfig(ffn=1.0)
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: ffn: expected a number in [0, 1), got 1.0
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modelpress.config import StageConfig
from modelpress.structured.bert_importance import BertCriterion

__all__ = ["BertScope", "PruneBertConfig"]


class BertScope(StrEnum):
    """How the removed heads / neurons are spread over the layers."""

    uniform = "uniform"  # every layer loses the same fraction
    global_ = "global"  # one ranking over all layers


class PruneBertConfig(StageConfig, tag="prune-bert"):
    """Structured pruning of BERT attention heads and FFN neurons; the layers become physically smaller."""

    heads: float = Field(0.0, ge=0, lt=1, description="fraction of attention heads removed")
    ffn: float = Field(0.0, ge=0, lt=1, description="fraction of FFN (intermediate) neurons removed")
    scope: BertScope = BertScope.uniform
    criterion: BertCriterion = BertCriterion.output_norm
    ffn_multiple: int | None = Field(64, ge=1, le=4096, description="kept FFN neurons: a multiple of this")
    min_heads: int = Field(1, ge=1, le=1024, description="fewest heads a layer keeps under scope: global")
    remove_heads: dict[str, tuple[int, ...]] = Field(default_factory=dict,
                                                     description="layer name -> heads removed (overrides heads)")
    include: tuple[str, ...] | None = Field(None, description="BERT layers pruned (exact, glob, re:); None: all")
    exclude: tuple[str, ...] = ()
    calibration_batches: int = Field(8, ge=1, le=10000, description="batches of the task's training inputs")
    calibration_batch_size: int = Field(32, ge=1, le=4096)
    hints: float | None = Field(None, gt=0, le=1e6, description="weight of per-layer hidden-state hints in "
                                "finetune.distill; None: output distillation only")
    seed: int = Field(0, ge=0)
