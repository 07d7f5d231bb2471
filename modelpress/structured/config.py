"""The ``prune-channels`` stage config: how many channels (and attention heads) to remove, chosen how.

``ratio`` is the fraction of each group's units removed (``scope: uniform``) or of all prunable units together,
ranked by group-normalized importance (``scope: global``, each group losing at most ``max_ratio``). Instead of a
ratio, ``target`` asks for a fraction of the model's FLOPs or measured latency; the ratio is then found by
bisection. ``overrides`` fix the ratio of the groups produced by some layers; ``exclude`` leaves them whole;
``round_to`` rounds every group's kept channel count to a multiple (fast kernels like multiples of 8);
``channels_last`` makes the pruned model run in that memory format (recorded, so the unpacked model does too).

Example:
    >>> config = PruneChannelsConfig(ratio=0.5, round_to=8, exclude=["stem.*"])
    >>> config.scope.value, config.criterion.value, config.channels_last
    ('uniform', 'l2', False)
    >>> PruneChannelsConfig(ratio=0.5, target={"fraction": 0.3})
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: target: expected no target when a ratio is given (drop one), got {'fraction': 0.3}
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from modelpress.config import Frozen, StageConfig
from modelpress.prune.config import Calibration
from modelpress.structured.importance import ChannelCriterion

__all__ = ["AttentionUnits", "ChannelOverride", "ChannelScope", "PruneChannelsConfig", "TargetConfig",
           "TargetMetric"]


class ChannelScope(StrEnum):
    """How the removed units are spread over the groups."""

    uniform = "uniform"  # every group loses the same fraction
    global_ = "global"  # one ranking across groups (scores normalized by each group's mean)


class AttentionUnits(StrEnum):
    """What an attention layer's internal group is made of."""

    heads = "heads"  # whole heads
    head_dim = "head-dim"  # the same positions of every head's query/key/value
    off = "off"  # attention layers keep their heads (their input and output channels may still be pruned)


class TargetMetric(StrEnum):
    """What a ``target`` fraction is measured in."""

    flops = "flops"  # torch's FLOP counter on one example
    latency = "latency"  # median latency at ``batch`` with the current thread count


class TargetConfig(Frozen):
    """Keep ``fraction`` of the original model's FLOPs or latency (the ratio is solved for)."""

    metric: TargetMetric = TargetMetric.flops
    fraction: float = Field(gt=0, lt=1, description="what the pruned model keeps of the metric, e.g. 0.3")
    batch: int = Field(32, ge=1, le=4096, description="batch size of latency measurements")


class ChannelOverride(Frozen):
    """A ratio for the groups produced by the layers matching ``layers`` (exact, glob or ``re:`` patterns)."""

    layers: tuple[str, ...] = Field(min_length=1)
    ratio: float = Field(ge=0, lt=1)


class PruneChannelsConfig(StageConfig, tag="prune-channels"):
    """Structured pruning of channels and attention heads with a dependency graph; layers become smaller."""

    ratio: float | None = Field(None, ge=0, lt=1, description="fraction of units removed; None: use target")
    target: TargetConfig | None = None
    scope: ChannelScope = ChannelScope.uniform
    criterion: ChannelCriterion = ChannelCriterion.l2
    max_ratio: float = Field(0.9, gt=0, lt=1, description="most a group may lose under scope: global or a target")
    round_to: int | None = Field(None, ge=1, le=1024, description="kept channels per group: a multiple of this")
    overrides: tuple[ChannelOverride, ...] = ()
    exclude: tuple[str, ...] = Field((), description="layers whose groups are left whole, e.g. the stem")
    attention: AttentionUnits = AttentionUnits.heads
    calibration: Calibration = Calibration(batches=8)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the random criterion")
    channels_last: bool = Field(False, description="store the model's 4-D weights channels_last after pruning "
                                "(before the stage's finetune; recorded in the file, so unpack does the same): "
                                "oneDNN then runs the chain of small convs without a layout reorder around each "
                                "one. A latency target is then measured with the original in channels_last too")

    @field_validator("target")
    @classmethod
    def _ratio_or_target(cls, target: TargetConfig | None, info: ValidationInfo) -> TargetConfig | None:
        if "ratio" not in info.data:  # the ratio itself was invalid: that error is reported
            return target
        if info.data["ratio"] is not None and target is not None:
            raise PydanticCustomError("prune_channels", "expected no target when a ratio is given (drop one)")
        if info.data["ratio"] is None and target is None:
            raise PydanticCustomError("prune_channels", "expected a target (fraction of flops or latency kept) "
                                      "when no ratio is given (add ratio: 0.5, say)")
        return target

    @field_validator("max_ratio")
    @classmethod
    def _ratio_within_cap(cls, max_ratio: float, info: ValidationInfo) -> float:
        ratio = info.data.get("ratio")
        if ratio is not None and ratio > max_ratio and info.data.get("scope") is ChannelScope.global_:
            raise PydanticCustomError("prune_channels", f"expected max_ratio >= ratio ({ratio:g}) with scope global")
        return max_ratio
