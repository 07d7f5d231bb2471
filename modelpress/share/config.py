"""The weight-sharing stage configs and their choices: ``cluster`` (k-means, trained centroids) and ``hash-share``.

* ``cluster`` (:class:`ClusterConfig`): per-layer 1-D k-means on the nonzero weights of Linear and Conv layers;
  Linear layers get ``linear_bits`` (2^bits shared values), Conv layers ``conv_bits``, and ``overrides`` set the
  bits of the layers whose names match (exact, glob or ``re:`` patterns; the first matching override wins). The
  stage's ``finetune`` section then trains the centroids (each centroid moved by its cluster's summed gradient).
* ``hash-share`` (:class:`HashShareConfig`): HashedNets. Each selected Linear's ``[out, in]`` weight becomes
  ``round(fraction * out * in)`` shared values and a seeded hash of the position picks the value (and, with
  ``sign``, a +-1 factor) of every weight.

Bits are limited to [1, 8]: a layer with 2^8 = 256 shared values is the most the ``codebook`` codec stores.

Example:
    >>> config = ClusterConfig(linear_bits=5, overrides=[{"layers": ["fc3"], "bits": 6}])
    >>> config.conv_bits, config.init.value, config.overrides[0].bits
    (8, 'linear', 6)
    >>> ClusterConfig(linear_bits=9)
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: linear_bits: expected bits in [1, 8] (at most 2^8 = 256 shared values per \
layer, the codebook codec's limit), got 9
    >>> HashShareConfig(fraction=0.125).sign
    True
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from modelpress.config import Frozen, StageConfig

__all__ = ["MAX_BITS", "BitsOverride", "ClusterConfig", "FractionOverride", "HashInit", "HashShareConfig", "Init"]

MAX_BITS = 8  # 2^8 = 256 distinct values: the codebook codec's limit (docs/FORMAT.md, section 5.1)


class Init(StrEnum):
    """Where k-means starts (Han et al. 2016, section 3.2, compared the first two; linear was best for accuracy)."""

    linear = "linear"  # centroids evenly spaced over [min, max] of the layer's weights: keeps the large weights
    density = "density"  # centroids at evenly spaced quantiles (the CDF linearly spaced)
    kmeans_pp = "kmeans++"  # Arthur & Vassilvitskii's D^2 sampling (seeded)


class HashInit(StrEnum):
    """How the shared values of a freshly hashed layer are set."""

    project = "project"  # each value = mean of the (sign-corrected) dense weights hashed to it: least squares fit
    random = "random"  # a fresh uniform init scaled to the layer's fan-in (nn.Linear's), for training from scratch


def _check_bits(value: int) -> int:
    if not 1 <= value <= MAX_BITS:
        raise PydanticCustomError("share_bits", f"expected bits in [1, {MAX_BITS}] (at most 2^{MAX_BITS} = "
                                  f"{2 ** MAX_BITS} shared values per layer, the codebook codec's limit)")
    return value


Bits = Annotated[int, AfterValidator(_check_bits)]

class BitsOverride(Frozen):
    """The bits of the layers whose names match ``layers`` (exact, glob or ``re:`` patterns).

    Example:
        >>> BitsOverride(layers=["conv*"], bits=6).bits
        6
    """

    layers: tuple[str, ...] = Field(min_length=1)
    bits: Bits


class ClusterConfig(StageConfig, tag="cluster"):
    """Per-layer k-means weight sharing; the ``finetune`` section (optional) trains the centroids.

    Example:
        >>> ClusterConfig(include=["fc*"], init="density").init is Init.density
        True
    """

    linear_bits: Bits = Field(5, description="bits per Linear layer: at most 2^bits shared nonzero values")
    conv_bits: Bits = Field(8, description="bits per Conv layer")
    overrides: tuple[BitsOverride, ...] = Field((), description="bits by layer-name pattern; the first match wins")
    include: tuple[str, ...] | None = Field(None, description="layer name patterns to cluster; None: every "
                                            "Linear/Conv")
    exclude: tuple[str, ...] = Field((), description="layer name patterns left unshared")
    init: Init = Init.linear
    max_iter: int = Field(300, ge=1, le=100_000, description="Lloyd iterations at most (stops when assignments "
                          "stop changing)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the k-means++ initialization")

    def bits_for(self, name: str, is_conv: bool) -> int:
        """The bits of layer ``name``: the first matching override, else ``conv_bits`` or ``linear_bits``.

        Example:
            >>> ClusterConfig(overrides=[{"layers": ["fc3"], "bits": 7}]).bits_for("fc3", is_conv=False)
            7
        """
        from modelpress.select import matches

        for override in self.overrides:
            if any(matches(name, pattern) for pattern in override.layers):
                return override.bits
        return self.conv_bits if is_conv else self.linear_bits


class FractionOverride(Frozen):
    """The stored fraction of the layers whose names match ``layers``.

    Example:
        >>> FractionOverride(layers=["fc3"], fraction=0.5).fraction
        0.5
    """

    layers: tuple[str, ...] = Field(min_length=1)
    fraction: float = Field(gt=0, le=1)


class HashShareConfig(StageConfig, tag="hash-share"):
    """HashedNets: every selected Linear stores ``fraction`` of its weights as shared values picked by a hash.

    Example:
        >>> HashShareConfig(fraction=0.125, exclude=["fc3"]).init is HashInit.project
        True
    """

    fraction: float = Field(0.125, gt=0, le=1, description="stored values per weight of a hashed layer")
    overrides: tuple[FractionOverride, ...] = Field((), description="fraction by layer-name pattern; first match "
                                                    "wins")
    include: tuple[str, ...] | None = Field(None, description="Linear layer name patterns; None: every Linear")
    exclude: tuple[str, ...] = ()
    sign: bool = Field(True, description="multiply each weight by a second hash's +-1 (unbiased inner products)")
    init: HashInit = HashInit.project
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the hash functions (and of a random init)")

    def fraction_for(self, name: str) -> float:
        """The stored fraction of layer ``name``: the first matching override, else ``fraction``.

        Example:
            >>> HashShareConfig(overrides=[{"layers": ["fc3"], "fraction": 1.0}]).fraction_for("fc1")
            0.125
        """
        from modelpress.select import matches

        for override in self.overrides:
            if any(matches(name, pattern) for pattern in override.layers):
                return override.fraction
        return self.fraction
