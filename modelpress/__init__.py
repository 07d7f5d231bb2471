"""modelpress: model compression for PyTorch with real bytes, real speed and held-out accuracy.

The curated public API: tasks and the zoo, the verbs, recipes and ``run``, ``pack``/``unpack``, analysis and the
report. Importing the package is cheap; heavy parts load on first use.

Example:
    >>> import modelpress as mp
    >>> recipe = mp.parse_recipe({"stages": [{"type": "cast", "dtype": "bfloat16"}]})
    >>> recipe.stages[0].tag
    'cast'
"""

from __future__ import annotations

from modelpress import zoo
from modelpress.analyze import Profile, count_flops, profile_model
from modelpress.config import FinetuneConfig, StageConfig
from modelpress.distill import DistillConfig, distill
from modelpress.errors import (
    ConfigError,
    ExportError,
    FormatError,
    ModelpressError,
    TaskError,
    UnsupportedLayerError,
)
from modelpress.history import History, HistoryRow, LayerRow, Skip
from modelpress.lowrank import LowRankConfig, low_rank_
from modelpress.pack import pack, unpack
from modelpress.prune import GradualPruneConfig, LotteryTicketConfig, PruneConfig, prune_
from modelpress.quantize import (
    CastConfig,
    MixedPrecisionConfig,
    QATConfig,
    QuantizeConfig,
    StaticQuantizeConfig,
    quantize_,
)
from modelpress.recipe import Recipe, Result, apply_stage, load_recipe, parse_recipe, run, run_stage
from modelpress.share import ClusterConfig, HashShareConfig, share_weights_
from modelpress.sources import load_model
from modelpress.structured import PruneChannelsConfig, prune_channels
from modelpress.structured.bert_config import PruneBertConfig
from modelpress.task import ClassificationTask, Task
from modelpress.tasks.registry import resolve_task
from modelpress.train import Callback, fit

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "CastConfig",
    "ClassificationTask",
    "ClusterConfig",
    "ConfigError",
    "DistillConfig",
    "ExportError",
    "FinetuneConfig",
    "FormatError",
    "GradualPruneConfig",
    "HashShareConfig",
    "History",
    "HistoryRow",
    "LayerRow",
    "LotteryTicketConfig",
    "LowRankConfig",
    "MixedPrecisionConfig",
    "ModelpressError",
    "Profile",
    "PruneBertConfig",
    "PruneChannelsConfig",
    "PruneConfig",
    "QATConfig",
    "QuantizeConfig",
    "Recipe",
    "Result",
    "Skip",
    "StageConfig",
    "StaticQuantizeConfig",
    "Task",
    "TaskError",
    "UnsupportedLayerError",
    "apply_stage",
    "count_flops",
    "distill",
    "fit",
    "load_model",
    "load_recipe",
    "low_rank_",
    "pack",
    "parse_recipe",
    "profile_model",
    "prune_",
    "prune_channels",
    "quantize_",
    "resolve_task",
    "run",
    "run_stage",
    "share_weights_",
    "unpack",
    "zoo",
]
