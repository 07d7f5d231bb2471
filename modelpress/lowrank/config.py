"""The ``low-rank`` stage config: which factorization, how its ranks are chosen, which layers.

* ``method: svd`` — a Linear ``[out, in]`` (or a 1x1 Conv2d) becomes two layers ``in -> r -> out`` from the truncated
  SVD ``W ~= (U_r S_r^1/2)(S_r^1/2 V_r^T)``.
* ``method: tucker`` — a k x k Conv2d becomes Tucker-2 (output and input channel modes): 1x1 ``in -> r_in``,
  k x k ``r_in -> r_out`` (the original stride, padding, dilation), 1x1 ``r_out -> out`` (the original bias).
* ``method: cp`` — a k x k Conv2d becomes CP: pointwise ``in -> R``, depthwise (``spatial: separable``: k x 1 then
  1 x k; ``full``: k x k), pointwise ``R -> out``.

Exactly one rank rule is given: ``rank`` (the same rank per layer), ``ratio`` (a fraction of each mode's full rank),
``energy`` (the smallest ranks keeping that fraction of the squared singular values; SVD and Tucker only) or
``param_budget`` (a global budget: the factorized layers keep at most that fraction of the selected layers'
parameters; SVD/Tucker pick one energy threshold for all layers by bisection, CP gives each layer the same fraction).
``rank_multiple`` rounds the ranks for the CPU's conv kernels, ``channels_last`` makes the factorized model run in
that memory format (recorded, so the unpacked model does too) and ``activation_aware`` (SVD) whitens by the layer's
calibration inputs before truncating.

Example:
    >>> LowRankConfig(method="svd", rank=32, include=["fc1"]).method.value
    'svd'
    >>> LowRankConfig(rank=0)
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: rank: expected a number in [1, inf], got 0
    >>> LowRankConfig(rank=4, energy=0.9)
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: : expected exactly one rank rule of rank, ratio, energy, param_budget (given: \
rank, energy), got {'rank': 4, 'energy': 0.9}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from modelpress.config import StageConfig

__all__ = ["LowRankConfig", "Method", "Spatial"]

_RULES = ("rank", "ratio", "energy", "param_budget")


class Method(StrEnum):
    """The factorization of the selected layers."""

    svd = "svd"  # Linear and 1x1 Conv2d: two layers from the truncated SVD
    tucker = "tucker"  # k x k Conv2d: Tucker-2 over the output and input channel modes
    cp = "cp"  # k x k Conv2d: CP (alternating least squares in torch), pointwise -> depthwise -> pointwise


class Spatial(StrEnum):
    """How CP's depthwise part is laid out."""

    separable = "separable"  # 4-way CP: a k x 1 then a 1 x k depthwise conv (fewest parameters)
    full = "full"  # 3-way CP with the kernel's positions as one mode: one k x k depthwise conv


class LowRankConfig(StageConfig, tag="low-rank"):
    """Factorize the selected layers at low rank; the ``finetune`` section (optional) recovers the accuracy.

    Example:
        >>> LowRankConfig(method="tucker", param_budget=0.3).param_budget
        0.3
    """

    method: Method = Method.svd
    rank: int | None = Field(None, ge=1, description="the rank of every factorized layer (each mode for Tucker)")
    ratio: float | None = Field(None, gt=0, le=1, description="rank as a fraction of each mode's full rank")
    energy: float | None = Field(None, gt=0, le=1, description="keep this fraction of the squared singular values")
    param_budget: float | None = Field(None, gt=0, lt=1, description="global: the factorized layers keep at most "
                                       "this fraction of the selected layers' parameters")
    spatial: Spatial = Field(Spatial.separable, description="CP only: separable (k x 1, 1 x k) or full (k x k)")
    include: tuple[str, ...] | None = Field(None, description="layer name patterns; None: every layer the method "
                                            "handles")
    exclude: tuple[str, ...] = ()
    cp_iterations: int = Field(200, ge=1, le=10_000, description="CP only: ALS iterations at most")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="CP only: seed of the ALS initialization")
    rank_multiple: int | None = Field(None, ge=2, le=1024, description="round every rank to a multiple of this "
                                      "(oneDNN's AVX-512 conv kernels work on blocks of 16 channels, so a rank of "
                                      "18 costs about what 32 does); param_budget still holds at the rounded ranks")
    channels_last: bool = Field(False, description="store the model's 4-D weights channels_last after factorizing "
                                "(recorded in the file, so unpack does the same): oneDNN then runs the chain of "
                                "small convs without a layout reorder around each one")
    activation_aware: bool = Field(False, description="svd only: whiten each layer by the second moment of its "
                                   "inputs on the task's calibration batches (SVD-LLM), so the truncation (and the "
                                   "energy/param_budget ranks) minimize the output error, not the weight error")
    calibration_batches: int = Field(8, ge=1, le=10_000, description="activation_aware: calibration batches used")
    calibration_mask_input: int | None = Field(None, ge=0, le=64, description="activation_aware: index of the model "
                                               "input that is a [B, T] token mask (1 for the sentences task's "
                                               "attention mask); only those tokens' rows enter the statistics")
    keep_if_faster: bool = Field(False, description="time each factorized layer against the original on the task's "
                                 "held-out batch and keep it only if faster (needs a task; timings vary)")
    latency_batch: int = Field(32, ge=1, le=4096, description="keep_if_faster: batch size of the timed input")

    @model_validator(mode="after")
    def _one_rule(self) -> Any:
        given = [rule for rule in _RULES if getattr(self, rule) is not None]
        if len(given) != 1:
            raise PydanticCustomError("low_rank_rule", f"expected exactly one rank rule of {', '.join(_RULES)} "
                                      f"(given: {', '.join(given) or 'none'})")
        if self.method is Method.cp and self.energy is not None:
            raise PydanticCustomError("low_rank_rule", "expected rank, ratio or param_budget for method cp (cp has no "
                                      "singular values to measure energy)")
        if self.activation_aware and self.method is not Method.svd:
            raise PydanticCustomError("low_rank_rule", "expected activation_aware only with method svd (it whitens "
                                      "a weight matrix by its inputs before the truncated SVD)")
        return self
