"""Observers: watch tensors during calibration and choose the range ``(min, max)`` a quantizer should cover.

- :class:`MinMaxObserver`: the running min and max (per tensor, or per channel along ``axis``);
- :class:`MovingAverageMinMaxObserver`: an exponential moving average of each batch's min and max;
- :class:`PercentileObserver`: symmetric range ``±a`` with ``a`` the ``percentile`` of ``|x|``;
- :class:`KLObserver`: TensorRT's entropy calibration: the threshold minimizing KL(P || Q) between the histogram
  of ``|x|`` and its quantized version;
- :class:`MSEObserver`: per-channel grid search over a clip ratio ``r`` of the min-max range minimizing the
  squared quantization error (e.g. for int4 weights, where clipping outliers pays).

The histogram observers (percentile, KL) keep a fixed number of bins over ``[0, R]`` and double ``R`` when a batch
exceeds it, merging adjacent bin pairs, so the histogram stays exact without storing the data. An observer that has
seen nothing raises a :class:`ConfigError` instead of inventing a range.

Example:
    >>> import torch
    >>> obs = MinMaxObserver(axis=0)
    >>> obs.update(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    >>> obs.min_max()
    (tensor([-2.0000,  0.5000]), tensor([1., 3.]))
    >>> obs.qparams(bits=8, symmetric=True).scale
    tensor([0.0157, 0.0236])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

from modelpress.errors import ConfigError
from modelpress.quantize.primitives import QParams, check_bits, fake_quantize, qparams_from_min_max

_SMOOTH = 1e-4  # probability given to bins that Q leaves empty while P does not (otherwise KL is infinite)

__all__ = ["KLObserver", "MSEObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "Observer",
           "PercentileObserver", "calibrate"]


class Observer(ABC):
    """Base: ``update(x)`` with each calibration tensor, then ``min_max()`` or ``qparams(bits, symmetric)``.

    ``axis`` (per-channel observers): the channel dimension; statistics reduce over every other dimension.

    Example:
        >>> MinMaxObserver().min_max()
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: MinMaxObserver: expected at least one calibration tensor, got <none>. \
Fix: call update(x) with calibration data (a task's calibration batches) before asking for the range
    """

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis
        self.count = 0  # tensors seen

    def _channels(self, x: Tensor) -> Tensor:
        """``x`` as ``[C, rest]`` (per channel) or ``[1, numel]`` (per tensor), float32."""
        x = x.detach().float()
        if self.axis is None:
            return x.reshape(1, -1)
        if not -x.dim() <= self.axis < x.dim():
            raise ConfigError(f"{type(self).__name__}.axis", f"a dimension of a {x.dim()}-d tensor", self.axis,
                              "use the channel dimension")
        return x.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)

    def update(self, x: Tensor) -> None:
        """Observe one tensor."""
        if x.numel() == 0:
            return
        self._observe(self._channels(x))
        self.count += 1

    @abstractmethod
    def _observe(self, x: Tensor) -> None:  # x: [C, n]
        """Fold one batch of per-channel values into the statistics."""

    @abstractmethod
    def _range(self) -> tuple[Tensor, Tensor]:  # ([C], [C])
        """The (min, max) range per channel the statistics give."""

    def min_max(self) -> tuple[Tensor, Tensor]:
        """The chosen range: ``[]`` tensors (per tensor) or ``[C]`` (per channel)."""
        if self.count == 0:
            raise ConfigError(type(self).__name__, "at least one calibration tensor", "<none>",
                              "call update(x) with calibration data (a task's calibration batches) before asking "
                              "for the range")
        lo, hi = self._range()
        return (lo[0], hi[0]) if self.axis is None else (lo, hi)

    def qparams(self, bits: int, symmetric: bool) -> QParams:
        """Quantization parameters covering :meth:`min_max`."""
        lo, hi = self.min_max()
        return qparams_from_min_max(lo, hi, bits, symmetric, axis=self.axis)


class MinMaxObserver(Observer):
    """The running minimum and maximum.

    Example:
        >>> obs = MinMaxObserver()
        >>> for x in (torch.tensor([1.0, 2.0]), torch.tensor([-3.0])):
        ...     obs.update(x)
        >>> obs.min_max()
        (tensor(-3.), tensor(2.))
    """

    def __init__(self, axis: int | None = None) -> None:
        super().__init__(axis)
        self.lo: Tensor | None = None
        self.hi: Tensor | None = None

    def _observe(self, x: Tensor) -> None:
        lo, hi = x.amin(1), x.amax(1)  # [C]
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)

    def _range(self) -> tuple[Tensor, Tensor]:
        assert self.lo is not None and self.hi is not None
        return self.lo, self.hi


class MovingAverageMinMaxObserver(MinMaxObserver):
    """``range <- (1 - momentum) * range + momentum * batch range`` (the first batch sets it).

    Example:
        >>> obs = MovingAverageMinMaxObserver(momentum=0.5)
        >>> for x in (torch.tensor([0.0, 2.0]), torch.tensor([0.0, 4.0])):
        ...     obs.update(x)
        >>> obs.min_max()[1]
        tensor(3.)
    """

    def __init__(self, momentum: float = 0.01, axis: int | None = None) -> None:
        if not 0 < momentum <= 1:
            raise ConfigError("momentum", "a number in (0, 1]", momentum, "use e.g. 0.01")
        super().__init__(axis)
        self.momentum = momentum

    def _observe(self, x: Tensor) -> None:
        lo, hi = x.amin(1), x.amax(1)
        if self.lo is None or self.hi is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = torch.lerp(self.lo, lo, self.momentum)
            self.hi = torch.lerp(self.hi, hi, self.momentum)


class _AbsHistogramObserver(Observer):
    """A histogram of ``|x|`` with ``bins`` bins over ``[0, R]``; ``R`` doubles (merging bin pairs) as needed."""

    def __init__(self, bins: int = 2048) -> None:
        if bins < 16 or bins % 2:
            raise ConfigError("bins", "an even number >= 16", bins, "use e.g. 2048")
        super().__init__(axis=None)
        self.bins = bins
        self.hist = np.zeros(bins, dtype=np.float64)
        self.upper = 0.0  # R

    def _observe(self, x: Tensor) -> None:
        a = x.abs().reshape(-1)
        top = float(a.max())
        if self.upper == 0.0:
            self.upper = top if top > 0 else 1.0
        while top > self.upper:  # double the range: bins 2i and 2i+1 become bin i, the top half starts empty
            merged = self.hist.reshape(-1, 2).sum(1)
            self.hist = np.concatenate([merged, np.zeros(self.bins // 2)])
            self.upper *= 2
        self.hist += torch.histc(a, bins=self.bins, min=0.0, max=self.upper).double().numpy()

    @property
    def width(self) -> float:
        """Width of one bin."""
        return self.upper / self.bins

    @abstractmethod
    def _threshold(self) -> float:
        """The clipping threshold on |x| the histogram gives."""

    def _range(self) -> tuple[Tensor, Tensor]:
        t = self._threshold()
        return torch.tensor([-t]), torch.tensor([t])


class PercentileObserver(_AbsHistogramObserver):
    """Symmetric range ``±a``, ``a`` the upper edge of the bin where the CDF of ``|x|`` reaches ``percentile``.

    Example:
        >>> obs = PercentileObserver(percentile=99.0)
        >>> obs.update(torch.cat([torch.linspace(-1, 1, 999), torch.tensor([100.0])]))
        >>> round(float(obs.min_max()[1]), 1)
        1.0
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048) -> None:
        if not 0 < percentile <= 100:
            raise ConfigError("percentile", "a number in (0, 100]", percentile, "use e.g. 99.99")
        super().__init__(bins)
        self.percentile = percentile

    def _threshold(self) -> float:
        cdf = np.cumsum(self.hist) / self.hist.sum()
        index = int(np.searchsorted(cdf, self.percentile / 100.0 - 1e-12))
        return (min(index, self.bins - 1) + 1) * self.width


class KLObserver(_AbsHistogramObserver):
    """TensorRT entropy calibration: for each candidate threshold ``i`` bins, P is the histogram up to ``i`` with
    the clipped tail added to its last bin, Q is P merged into ``levels`` equal chunks and spread back over the
    nonzero bins; the threshold minimizes KL(P || Q). ``levels`` defaults to 128 (the positive half of int8).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> obs = KLObserver(bins=256, levels=16)
        >>> obs.update(torch.cat([torch.randn(10000, generator=g), torch.tensor([50.0])]))
        >>> 1.0 < float(obs.min_max()[1]) < 10.0
        True
    """

    def __init__(self, levels: int = 128, bins: int = 2048) -> None:
        super().__init__(bins)
        if not 2 <= levels <= bins:
            raise ConfigError("levels", f"an integer in [2, {bins}]", levels, "use 2^(bits-1), e.g. 128 for int8")
        self.levels = levels

    def _threshold(self) -> float:
        hist = self.hist
        best_i, best_kl = self.bins, float("inf")
        for i in range(self.levels, self.bins + 1):
            p = hist[:i].copy()
            p[-1] += hist[i:].sum()  # clipped outliers saturate into the last level
            # Q: the first i bins merged into `levels` near-equal chunks, each chunk's mass spread over its nonzero bins
            starts = np.linspace(0, i, self.levels + 1).astype(np.int64)[:-1]  # [levels] chunk starts
            chunk_of = np.repeat(np.arange(self.levels), np.diff(np.append(starts, i)))  # [i] chunk of each bin
            nonzero = hist[:i] > 0
            mass = np.add.reduceat(hist[:i], starts)  # [levels]
            count = np.add.reduceat(nonzero.astype(np.float64), starts)
            q = np.where(nonzero, mass[chunk_of] / np.maximum(count[chunk_of], 1), 0.0)
            mask = p > 0
            if not mask.any():
                continue
            ps, qs = p / p.sum(), q / max(q.sum(), 1e-300)
            qs = np.where(mask & (qs == 0), _SMOOTH, qs)  # as MXNet/TVM: a small mass where Q has none and P has some
            kl = float(np.sum(ps[mask] * np.log(ps[mask] / qs[mask])))
            if kl < best_kl:
                best_i, best_kl = i, kl
        return (best_i + 0.5) * self.width if best_i < self.bins else self.upper


class MSEObserver(Observer):
    """Per-channel clip ratio ``r`` in a grid over ``[min_ratio, 1]`` of the min-max range minimizing the mean
    squared error of ``bits``-bit fake quantization. Keeps the observed data (meant for weights and small
    calibration sets), at most ``max_columns`` values per channel.

    Example:
        >>> x = torch.cat([torch.linspace(-1, 1, 200), torch.tensor([8.0])])
        >>> obs = MSEObserver(bits=3, symmetric=True)
        >>> obs.update(x)
        >>> float(obs.min_max()[1]) < 8.0
        True
    """

    def __init__(self, bits: int = 8, symmetric: bool = True, axis: int | None = None, grid: int = 50,
                 min_ratio: float = 0.3, max_columns: int = 65536) -> None:
        check_bits(bits, symmetric)
        if grid < 1 or not 0 < min_ratio <= 1:
            raise ConfigError("grid, min_ratio", "grid >= 1 and min_ratio in (0, 1]", f"<{grid}, {min_ratio}>",
                              "use e.g. grid=50, min_ratio=0.3")
        super().__init__(axis)
        self.bits, self.symmetric, self.grid, self.min_ratio = bits, symmetric, grid, min_ratio
        self.max_columns = max_columns
        self.data: list[Tensor] = []

    def _observe(self, x: Tensor) -> None:
        kept = sum(d.shape[1] for d in self.data)
        if kept < self.max_columns:
            self.data.append(x[:, : self.max_columns - kept])

    def _range(self) -> tuple[Tensor, Tensor]:
        x = torch.cat(self.data, 1)  # [C, n]
        lo, hi = x.amin(1), x.amax(1)  # [C]
        best_err = torch.full(lo.shape, float("inf"))
        best = torch.ones(lo.shape)
        for r in torch.linspace(1.0, self.min_ratio, self.grid).tolist():
            qp = qparams_from_min_max(lo * r, hi * r, self.bits, self.symmetric, axis=0)
            err = (fake_quantize(x, qp) - x).pow(2).mean(1)  # [C]
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, torch.full_like(best, r), best)
        return lo * best, hi * best


def calibrate(observer: Observer, tensors: Iterable[Tensor]) -> Observer:
    """Feed every tensor to ``observer``; a :class:`ConfigError` if there was none. Returns the observer.

    Example:
        >>> calibrate(MinMaxObserver(), [torch.tensor([2.0, -1.0])]).min_max()
        (tensor(-1.), tensor(2.))
        >>> calibrate(MinMaxObserver(), [])
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: calibrate: expected at least one non-empty calibration tensor, got <none>. \
Fix: give the task calibration data (its calibration_batches yielded nothing)
    """
    for x in tensors:
        observer.update(x)
    if observer.count == 0:
        raise ConfigError("calibrate", "at least one non-empty calibration tensor", "<none>",
                          "give the task calibration data (its calibration_batches yielded nothing)")
    return observer
