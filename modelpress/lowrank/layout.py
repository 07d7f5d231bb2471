"""The layers a factorized layer becomes, built from a JSON record alone (so ``unpack`` rebuilds them without pickle).

A factorized layer is a plain ``nn.Sequential`` of standard layers (documented choice: no custom module class, so
the model runs, exports and counts FLOPs like any other, and the state-dict keys are ``<name>.0.weight``, ...):

* ``svd-linear``: ``Linear(in, r, bias=False) -> Linear(r, out)``;
* ``svd-conv`` (1x1): ``Conv2d(in, r, 1, stride, padding, dilation, bias=False) -> Conv2d(r, out, 1)``;
* ``tucker2``: ``Conv2d(in, r_in, 1) -> Conv2d(r_in, r_out, k, stride, padding, dilation) -> Conv2d(r_out, out, 1)``;
* ``cp`` (``full``): ``Conv2d(in, R, 1) -> Conv2d(R, R, k, stride, padding, dilation, groups=R) -> Conv2d(R, out, 1)``;
* ``cp`` (``separable``): as ``full`` with the depthwise k x k split into ``(kh, 1)`` and ``(1, kw)`` convs, each
  carrying its axis's stride, padding and dilation.

Only the last layer has a bias (the original's). The first layer has none, so a zero-padded input stays zero after
it and padding the inner conv equals padding the original input.

Example:
    >>> spec = Factorized("fc1", "svd-linear", 784, 300, (32,), bias=True)
    >>> build(spec)
    Sequential(
      (0): Linear(in_features=784, out_features=32, bias=False)
      (1): Linear(in_features=32, out_features=300, bias=True)
    )
    >>> spec.params(), Factorized.from_record(spec.record()) == spec
    (34988, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from modelpress.errors import FormatError

__all__ = ["FORMS", "Factorized", "build"]

FORMS = ("svd-linear", "svd-conv", "tucker2", "cp-full", "cp-separable")
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Factorized:
    """One factorized layer: its name, form, channel counts, ranks and the conv geometry it keeps.

    ``ranks``: ``(r,)`` for SVD and CP, ``(r_out, r_in)`` for Tucker-2. Pairs are ``(height, width)``.

    Example:
        >>> Factorized("c", "tucker2", 64, 64, (16, 8), kernel=(3, 3)).params()
        2688
    """

    name: str
    form: str
    in_channels: int
    out_channels: int
    ranks: tuple[int, ...]
    bias: bool = False
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    dtype: str = "float32"

    def params(self) -> int:
        """Parameters of the factorized layers (weights and the bias).

        Example:
            >>> Factorized("c", "cp-separable", 64, 64, (10,), kernel=(3, 3)).params()
            1340
        """
        (kh, kw), bias = self.kernel, self.out_channels * self.bias
        if self.form in ("svd-linear", "svd-conv"):
            return self.ranks[0] * (self.in_channels + self.out_channels) + bias
        if self.form == "tucker2":
            r_out, r_in = self.ranks
            return self.in_channels * r_in + r_in * r_out * kh * kw + r_out * self.out_channels + bias
        spatial = kh * kw if self.form == "cp-full" else kh + kw
        return self.ranks[0] * (self.in_channels + spatial + self.out_channels) + bias

    def record(self) -> dict[str, Any]:
        """The JSON record stored in the provenance.

        Example:
            >>> Factorized("fc", "svd-linear", 4, 2, (1,)).record()["ranks"]
            [1]
        """
        return {"name": self.name, "form": self.form, "in": self.in_channels, "out": self.out_channels,
                "ranks": list(self.ranks), "bias": self.bias, "kernel": list(self.kernel),
                "stride": list(self.stride), "padding": list(self.padding), "dilation": list(self.dilation),
                "dtype": self.dtype}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Factorized:
        """Inverse of :meth:`record`, checking every field (a corrupted file is a :class:`FormatError`).

        Example:
            >>> Factorized.from_record({"name": "fc", "form": "svd-linear", "in": 4, "out": 2, "ranks": [1],
            ...                         "bias": True, "kernel": [1, 1], "stride": [1, 1], "padding": [0, 0],
            ...                         "dilation": [1, 1], "dtype": "float32"}).ranks
            (1,)
        """
        try:
            spec = cls(str(record["name"]), str(record["form"]), int(record["in"]), int(record["out"]),
                       tuple(int(r) for r in record["ranks"]), bool(record["bias"]),
                       _pair(record["kernel"]), _pair(record["stride"]), _pair(record["padding"]),
                       _pair(record["dilation"]), str(record["dtype"]))
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError("low-rank transform: layer", "a complete layer record", f"<{e}>",
                              "the file is corrupted") from None
        ranks_ok = len(spec.ranks) == (2 if spec.form == "tucker2" else 1) and min(spec.ranks) >= 1
        sizes_ok = min(spec.in_channels, spec.out_channels, *spec.kernel, *spec.stride, *spec.dilation) >= 1
        if spec.form not in FORMS or spec.dtype not in _DTYPES or not ranks_ok or not sizes_ok \
                or min(spec.padding) < 0:
            raise FormatError(f"low-rank transform: layer {spec.name!r}", f"a form among {', '.join(FORMS)}, a "
                              "float dtype, positive sizes and ranks", f"<{record}>", "the file is corrupted")
        return spec


def _pair(value: Any) -> tuple[int, int]:
    first, second = value
    return int(first), int(second)


def build(spec: Factorized) -> nn.Sequential:
    """The (untrained) layers of ``spec``; the factorizers fill their weights, ``unpack`` loads them.

    Example:
        >>> [tuple(m.weight.shape) for m in build(Factorized("c", "cp-full", 8, 16, (4,), kernel=(3, 3)))]
        [(4, 8, 1, 1), (4, 1, 3, 3), (16, 4, 1, 1)]
    """
    dtype = _DTYPES[spec.dtype]
    i, o, geometry = spec.in_channels, spec.out_channels, (spec.stride, spec.padding, spec.dilation)
    if spec.form == "svd-linear":
        (r,) = spec.ranks
        layers: list[nn.Module] = [nn.Linear(i, r, bias=False), nn.Linear(r, o, bias=spec.bias)]
    elif spec.form == "svd-conv":
        (r,) = spec.ranks
        layers = [nn.Conv2d(i, r, 1, *geometry, bias=False), nn.Conv2d(r, o, 1, bias=spec.bias)]
    elif spec.form == "tucker2":
        r_out, r_in = spec.ranks
        layers = [nn.Conv2d(i, r_in, 1, bias=False), nn.Conv2d(r_in, r_out, spec.kernel, *geometry, bias=False),
                  nn.Conv2d(r_out, o, 1, bias=spec.bias)]
    else:
        (r,) = spec.ranks
        if spec.form == "cp-full":
            depthwise: list[nn.Module] = [nn.Conv2d(r, r, spec.kernel, *geometry, groups=r, bias=False)]
        else:  # one axis per conv: (kh, 1) then (1, kw), each with its axis's stride, padding and dilation
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = spec.kernel, *geometry
            depthwise = [nn.Conv2d(r, r, (kh, 1), (sh, 1), (ph, 0), (dh, 1), groups=r, bias=False),
                         nn.Conv2d(r, r, (1, kw), (1, sw), (0, pw), (1, dw), groups=r, bias=False)]
        layers = [nn.Conv2d(i, r, 1, bias=False), *depthwise, nn.Conv2d(r, o, 1, bias=spec.bias)]
    return nn.Sequential(*layers).to(dtype)
