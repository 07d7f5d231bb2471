"""The pruning stage configs and their choices: criterion, scope, pattern, schedule, rewinding.

Three recipe stages share one set of "what and how" fields (:class:`PruneSpec`):

* ``prune`` (:class:`PruneConfig`): one-shot. Masks are computed once; the stage's ``finetune`` section (optional)
  then trains the survivors while the mask keeper holds the zeros.
* ``prune-gradual`` (:class:`GradualPruneConfig`): sparsity rises during the stage's own fine-tuning along a
  schedule (Zhu & Gupta's cubic by default); the ``finetune`` section is required and drives it.
* ``lottery-ticket`` (:class:`LotteryTicketConfig`): iterative magnitude pruning with rewinding; each round trains
  with ``train``, prunes, and rewinds the survivors; the ``finetune`` section (required) trains the final ticket.

Sparsity is the fraction of the *selected* weights set to zero (Linear and Conv weights matched by ``include`` and
not by ``exclude``; biases are never pruned). With ``scope: global`` one score threshold runs across all selected
layers and ``sparsity`` holds over them together; per-layer ``overrides`` fix some layers' sparsity and the threshold
of the others moves so the overall figure still holds; ``min_density`` keeps at least that fraction of every layer.

Pattern strings: ``unstructured``, ``N:M`` (keep N of every M consecutive weights along the input dimension, e.g.
``2:4``; the pattern fixes the sparsity at 1 - N/M, so ``sparsity`` is left out) and ``RxC`` blocks (e.g. ``1x4``).

Example:
    >>> config = PruneConfig(sparsity=0.9, exclude=["fc3"], min_density=0.05)
    >>> config.scope.value, config.pattern.describe()
    ('global', 'unstructured')
    >>> PruneConfig(pattern="2:4").target_sparsity()
    0.5
    >>> PruneConfig(pattern="4:4")
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: pattern: expected n < m in an n:m pattern (n kept of every m weights), got '4:4'
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from modelpress.config import FinetuneConfig, Frozen, StageConfig

__all__ = [
    "Calibration",
    "Criterion",
    "GradualPruneConfig",
    "Initialization",
    "LayerOverride",
    "LotteryTicketConfig",
    "Pattern",
    "PatternKind",
    "PruneConfig",
    "PruneSpec",
    "Reinit",
    "ScheduleKind",
    "Scope",
    "SensitivityConfig",
]


class Criterion(StrEnum):
    """How weights are scored (higher score: kept). See :mod:`modelpress.prune.criteria` for the formulas."""

    magnitude = "magnitude"  # |w|
    gradient = "gradient"  # |g|, g averaged over training batches
    taylor = "taylor"  # |w * g|
    second_order = "second-order"  # w^2 * diag Fisher (OBD)
    random = "random"  # seeded uniform scores: the control
    wanda = "wanda"  # |w| * ||x_j||_2, compared within each output row


class Scope(StrEnum):
    """Where scores are compared to pick what to prune."""

    global_ = "global"  # one threshold across all selected layers
    layer = "layer"  # the same sparsity in every layer
    sensitivity = "sensitivity"  # per-layer sparsities from a sensitivity sweep, meeting the overall target


class PatternKind(StrEnum):
    """The shape of what is removed together."""

    unstructured = "unstructured"
    n_m = "n:m"
    block = "block"


class ScheduleKind(StrEnum):
    """How the sparsity rises during gradual pruning (see :mod:`modelpress.prune.schedules`)."""

    polynomial = "polynomial"  # Zhu & Gupta; power 3 is their cubic schedule
    cubic = "cubic"  # polynomial with power 3
    exponential = "exponential"  # density decays geometrically
    linear = "linear"


class Initialization(StrEnum):
    """What the lottery ticket's weights rewind to."""

    fresh = "fresh"  # re-initialize the architecture (seeded) and train from scratch: the original lottery ticket
    given = "given"  # treat the model's current (e.g. pretrained) weights as the initialization


class Reinit(StrEnum):
    """How the final ticket's surviving weights are set before its training."""

    rewind = "rewind"  # back to the initialization (or to the late-rewinding step)
    random = "random"  # the control: the same mask with a new random initialization


class Pattern(Frozen):
    """A sparsity pattern; written in a recipe as ``unstructured``, ``2:4`` or ``1x4``.

    Example:
        >>> Pattern.model_validate("2:4").n, Pattern.model_validate("1x4").cols
        (2, 4)
    """

    kind: PatternKind = PatternKind.unstructured
    n: int | None = Field(None, ge=1, le=1024, description="N of N:M: weights kept per group")
    m: int | None = Field(None, ge=2, le=1024, description="M of N:M: group length along the input dimension")
    rows: int | None = Field(None, ge=1, le=1024, description="block height (output dimension)")
    cols: int | None = Field(None, ge=1, le=1024, description="block width (input dimension)")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().lower()
        if text == PatternKind.unstructured.value:
            return {"kind": PatternKind.unstructured}
        if match := re.fullmatch(r"(\d+)\s*:\s*(\d+)", text):
            return {"kind": PatternKind.n_m, "n": int(match[1]), "m": int(match[2])}
        if match := re.fullmatch(r"(\d+)\s*x\s*(\d+)", text):
            return {"kind": PatternKind.block, "rows": int(match[1]), "cols": int(match[2])}
        raise PydanticCustomError("prune_pattern", "expected 'unstructured', an n:m pattern like '2:4' or a block "
                                  "like '1x4'")

    @model_validator(mode="after")
    def _consistent(self) -> Pattern:
        if self.kind is PatternKind.n_m:
            if self.n is None or self.m is None:
                raise PydanticCustomError("prune_pattern", "expected both n and m for an n:m pattern")
            if self.n >= self.m:
                raise PydanticCustomError("prune_pattern", "expected n < m in an n:m pattern (n kept of every m "
                                          "weights)")
        if self.kind is PatternKind.block and (self.rows is None or self.cols is None):
            raise PydanticCustomError("prune_pattern", "expected rows and cols for a block pattern")
        if self.kind is PatternKind.block and self.rows == self.cols == 1:
            raise PydanticCustomError("prune_pattern", "expected a block larger than 1x1 (1x1 is 'unstructured')")
        return self

    def describe(self) -> str:
        """The pattern as written in a recipe: ``unstructured``, ``2:4`` or ``1x4``."""
        if self.kind is PatternKind.n_m:
            return f"{self.n}:{self.m}"
        if self.kind is PatternKind.block:
            return f"{self.rows}x{self.cols}"
        return "unstructured"


class LayerOverride(Frozen):
    """A sparsity for the layers whose names match ``layers`` (exact, glob or ``re:`` patterns)."""

    layers: tuple[str, ...] = Field(min_length=1)
    sparsity: float = Field(ge=0, lt=1)


class Calibration(Frozen):
    """How much training-split data the data-driven criteria (and sensitivity sweeps) use."""

    batches: int = Field(16, ge=1, le=100000)
    batch_size: int = Field(64, ge=1, le=65536)


class SensitivityConfig(Frozen):
    """The sweep behind ``scope: sensitivity``: each layer pruned alone at each grid sparsity, training-split loss."""

    grid: tuple[float, ...] = Field((0.5, 0.7, 0.8, 0.9, 0.95, 0.98), min_length=1)
    batches: int = Field(8, ge=1, le=100000, description="training batches the loss is measured on")
    batch_size: int = Field(256, ge=1, le=65536)
    report_metrics: bool = Field(False, description="also record the task's held-out metrics at every point, for "
                                 "the report only (sparsities are chosen from the training loss)")

    @field_validator("grid")
    @classmethod
    def _grid_in_range(cls, grid: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < s < 1 for s in grid):
            raise PydanticCustomError("prune_grid", "expected grid sparsities in (0, 1)")
        return tuple(sorted(set(grid)))


class PruneSpec(StageConfig):
    """What to prune and how: the fields shared by every pruning stage (no recipe tag of its own)."""

    sparsity: float | None = Field(None, ge=0, lt=1, description="fraction of the selected weights set to zero; "
                                   "None only with an N:M pattern (which fixes it)")
    criterion: Criterion = Criterion.magnitude
    pattern: Pattern = Pattern()
    scope: Scope = Scope.global_
    include: tuple[str, ...] | None = Field(None, description="layer name patterns to prune; None: every Linear/Conv")
    exclude: tuple[str, ...] = Field((), description="layer name patterns left dense, e.g. the first and last layer")
    overrides: tuple[LayerOverride, ...] = ()
    min_density: float | None = Field(None, gt=0, le=1, description="fraction every layer keeps at least; None: off")
    calibration: Calibration = Calibration()
    sensitivity: SensitivityConfig = SensitivityConfig()
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the random criterion")

    @model_validator(mode="after")
    def _sparsity_matches_pattern(self) -> PruneSpec:
        if self.pattern.kind is PatternKind.n_m:
            if self.sparsity is not None:
                raise PydanticCustomError("prune_sparsity", f"expected no sparsity with the n:m pattern "
                                          f"{self.pattern.describe()} (it fixes the sparsity at "
                                          f"{self.target_sparsity():g})")
            if self.scope is not Scope.layer and self.scope is not Scope.global_:
                raise PydanticCustomError("prune_scope", "expected scope 'layer' or 'global' with an n:m pattern")
            if self.overrides or self.min_density is not None:
                raise PydanticCustomError("prune_sparsity", "expected no overrides or min_density with an n:m "
                                          "pattern (every layer has sparsity 1 - n/m)")
        elif self.sparsity is None:
            raise PydanticCustomError("prune_sparsity", "expected a sparsity in [0, 1) (fraction of weights set to "
                                      "zero) for the pattern " + self.pattern.describe())
        if self.min_density is not None:
            # every layer keeps >= min_density, so the overall density cannot fall below it (and in layer scope no
            # override can ask for less)
            worst = max([self.target_sparsity(), *(o.sparsity for o in self.overrides if self.scope is Scope.layer)])
            if worst > 1 - self.min_density + 1e-12:
                raise PydanticCustomError("prune_sparsity", f"expected min_density <= 1 - sparsity "
                                          f"({1 - worst:g}), since every layer keeps at least min_density")
        return self

    def target_sparsity(self) -> float:
        """The overall sparsity this spec aims at (1 - N/M for an N:M pattern)."""
        if self.pattern.kind is PatternKind.n_m:
            assert self.pattern.n is not None and self.pattern.m is not None  # checked by the validator
            return 1.0 - self.pattern.n / self.pattern.m
        return float(self.sparsity or 0.0)


class PruneConfig(PruneSpec, tag="prune"):
    """One-shot pruning (then the optional ``finetune`` section trains the survivors, zeros held).

    Example:
        >>> PruneConfig(sparsity=0.5, criterion="wanda").criterion.value
        'wanda'
    """


class GradualPruneConfig(PruneSpec, tag="prune-gradual"):
    """Sparsity rises from ``initial_sparsity`` to ``sparsity`` between fractions ``start`` and ``end`` of the
    stage's fine-tuning, recomputing masks every ``frequency`` optimizer steps.

    Example:
        >>> GradualPruneConfig(sparsity=0.95, finetune={"epochs": 10}).schedule.value
        'cubic'
    """

    schedule: ScheduleKind = ScheduleKind.cubic
    power: float = Field(3.0, gt=0, le=20, description="exponent of the polynomial schedule")
    initial_sparsity: float = Field(0.0, ge=0, lt=1)
    start: float = Field(0.0, ge=0, lt=1, description="fraction of the fine-tuning run where pruning starts")
    end: float = Field(0.7, gt=0, le=1, description="fraction of the run where the final sparsity is reached")
    frequency: int = Field(10, ge=1, le=1_000_000, description="optimizer steps between mask updates")

    @model_validator(mode="after")
    def _window(self) -> GradualPruneConfig:
        if self.end <= self.start:
            raise PydanticCustomError("prune_schedule", f"expected end > start ({self.start:g})")
        if self.initial_sparsity > self.target_sparsity():
            raise PydanticCustomError("prune_schedule", f"expected initial_sparsity <= sparsity "
                                      f"({self.target_sparsity():g})")
        return self


class LotteryTicketConfig(PruneSpec, tag="lottery-ticket"):
    """Iterative magnitude pruning over ``rounds`` rounds to ``sparsity``, rewinding the survivors after each.

    Each round trains with ``train``, prunes ``1 - (1 - sparsity) ** (1 / rounds)`` of the remaining weights, and
    rewinds the survivors to the initialization (``rewind_step`` None) or to their values after ``rewind_step``
    optimizer steps of the first round ("late rewinding"). ``reinit: random`` is the control experiment.

    Example:
        >>> round(LotteryTicketConfig(sparsity=0.86, rounds=5).per_round_keep() ** 5, 6)
        0.14
    """

    rounds: int = Field(5, ge=1, le=100)
    train: FinetuneConfig = FinetuneConfig()
    initialization: Initialization = Initialization.fresh
    rewind_step: int | None = Field(None, ge=1, le=10_000_000, description="None: rewind to the initialization")
    reinit: Reinit = Reinit.rewind
    init_seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of fresh and random initializations")

    @model_validator(mode="after")
    def _lottery_needs(self) -> LotteryTicketConfig:
        if self.criterion is not Criterion.magnitude:
            raise PydanticCustomError("prune_criterion", "expected criterion 'magnitude' for a lottery ticket "
                                      "(iterative magnitude pruning)")
        return self

    def per_round_keep(self) -> float:
        """The fraction of the remaining weights each round keeps."""
        return (1.0 - self.target_sparsity()) ** (1.0 / self.rounds)
