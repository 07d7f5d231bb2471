"""GPTQ (Frantar et al. 2023): quantize a Linear weight column by column, compensating each column's rounding error
on the columns not yet quantized through the inverse Hessian of the layer's squared output error.

For a layer ``y = x W^T`` and calibration inputs ``X`` ``[n, K]`` (the task's *training* inputs), the output error
of a weight change ``dW`` is ``tr(dW H dW^T)`` with ``H = X^T X / n`` ``[K, K]``. Quantizing column ``j`` to
``q_j`` and updating the remaining columns by ``-(w_j - q_j) / [H^-1]_jj * [H^-1]_j,j+1:`` minimizes that error
given the rounding (the OBS update); the inverse is taken once, as the upper Cholesky factor of ``H^-1``.

Details, as in the reference implementation:

- **damping**: ``H += damp * mean(diag(H)) * I`` (inputs that never vary make ``H`` singular); dead inputs
  (``H_jj = 0``) get weight 0 and ``H_jj = 1``;
- **lazy batch updates**: columns are processed in blocks of ``block_size``; inside a block the updates touch only
  the block, the rest of the matrix is updated once per block (one GEMM);
- **groups**: with ``group_size`` the scale and zero point of a group are computed when its first column is
  reached, from the *updated* weights (so earlier errors are already folded in);
- **act-order**: columns in decreasing ``H_jj`` (most active inputs first). Groups stay contiguous in the original
  column order (the file's layout), so their parameters are then computed up front from the original weight
  ("static groups").

The result is the integers, scales and zero points of the same storage format as round-to-nearest
(:mod:`modelpress.quantize.lowbit`): packing and unpacking are exact.

Example:
    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> x = torch.randn(512, 16) @ torch.randn(16, 64) + 0.1 * torch.randn(512, 64)  # correlated inputs [n, K]
    >>> w = torch.randn(16, 64)
    >>> h = hessian_from_inputs(x)
    >>> gptq, rtn = gptq_quantize(w, h, bits=3, group_size=32), gptq_quantize(w, None, bits=3, group_size=32)
    >>> err = lambda r: float(((x @ (r.dequantized() - w).T) ** 2).mean())
    >>> err(gptq) < 0.5 * err(rtn)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from pydantic import Field
from torch import Tensor, nn

from modelpress.config import Frozen
from modelpress.errors import ConfigError
from modelpress.eval_mode import evaluating
from modelpress.quantize.lowbit import check_group_size, group_qparams
from modelpress.quantize.primitives import check_bits

__all__ = ["GPTQOptions", "GPTQResult", "HessianAccumulator", "collect_input_stats", "gptq_quantize",
           "hessian_from_inputs"]


@dataclass(frozen=True)
class GPTQResult:
    """Integers ``u`` uint8 ``[N, K]`` in ``[0, 2^bits - 1]``, ``scale`` float32 (bf16-exact) ``[N, K / G]`` and
    ``zero`` int32 ``[N, K / G]``: ``w ~ scale * (u - zero)`` per group of ``group_size`` columns.

    Example:
        >>> r = gptq_quantize(torch.tensor([[0.0, 1.0, 2.0, 3.0]]), None, bits=2, group_size=4)
        >>> r.u, r.dequantized()
        (tensor([[0, 1, 2, 3]], dtype=torch.uint8), tensor([[0., 1., 2., 3.]]))
    """

    u: Tensor
    scale: Tensor
    zero: Tensor
    bits: int
    group_size: int

    def dequantized(self) -> Tensor:
        """``scale * (u - zero)`` float32 ``[N, K]``."""
        s = self.scale.repeat_interleave(self.group_size, 1)
        z = self.zero.repeat_interleave(self.group_size, 1)
        return (self.u.to(torch.int32) - z).float() * s


def hessian_from_inputs(x: Tensor) -> Tensor:
    """``X^T X / n`` (float32 ``[K, K]``) of inputs ``x`` ``[..., K]``.

    Example:
        >>> hessian_from_inputs(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
        tensor([[5., 1.],
                [1., 2.]])
    """
    acc = HessianAccumulator(x.shape[-1])
    acc.update(x)
    return acc.hessian()


class HessianAccumulator:
    """Running ``X^T X / n`` over batches of layer inputs ``[..., K]`` (float64 sums, so many batches lose nothing),
    with the running input mean ``[K]`` (for bias correction).

    Example:
        >>> acc = HessianAccumulator(2)
        >>> acc.update(torch.tensor([[1.0, 2.0]])); acc.update(torch.tensor([[3.0, 0.0]]))
        >>> acc.hessian()[0, 0], acc.mean()
        (tensor(5.), tensor([2., 1.]))
    """

    def __init__(self, features: int, hessian: bool = True) -> None:
        self.sum_xx = torch.zeros(features, features, dtype=torch.float64) if hessian else None  # [K, K]
        self.sum_x = torch.zeros(features, dtype=torch.float64)  # [K]
        self.count = 0

    def update(self, x: Tensor) -> None:
        """Add the rows of ``x`` ``[..., K]``."""
        rows = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)  # [n, K]
        if self.sum_xx is not None:
            self.sum_xx += rows.T @ rows
        self.sum_x += rows.sum(0)
        self.count += rows.shape[0]

    def hessian(self) -> Tensor:
        """``X^T X / n`` float32 ``[K, K]``."""
        if self.sum_xx is None:
            raise ConfigError("HessianAccumulator", "hessian=True", False, "collect the Hessian for GPTQ layers")
        return (self.sum_xx / max(self.count, 1)).float()

    def mean(self) -> Tensor:
        """Mean input float32 ``[K]``."""
        return (self.sum_x / max(self.count, 1)).float()


def _inverse_cholesky(h: Tensor, damp: float) -> Tensor:
    """Upper Cholesky factor of ``(H + damp * mean(diag H) * I)^-1`` ``[K, K]``, raising the damping tenfold up to
    three times if ``H`` is not positive definite in float32."""
    k = h.shape[0]
    level = damp * float(torch.diag(h).mean()) or damp
    for _ in range(4):
        damped = h + level * torch.eye(k, dtype=h.dtype)
        factor, info = torch.linalg.cholesky_ex(damped.double())
        if int(info) == 0:
            inverse = torch.cholesky_inverse(factor)
            return torch.linalg.cholesky(inverse, upper=True).float()
        level *= 10.0
    raise ConfigError("gptq.damp", "a damping that makes the calibration Hessian positive definite", damp,
                      "raise damp (e.g. 0.1) or calibrate on more batches")


def gptq_quantize(weight: Tensor, hessian: Tensor | None, bits: int = 4, group_size: int = 32, damp: float = 0.01,
                  block_size: int = 128, act_order: bool = False, mse_clip: bool = False) -> GPTQResult:
    """Asymmetric ``bits``-bit group quantization of ``weight`` ``[N, K]`` by GPTQ with ``hessian`` ``[K, K]``
    (``None``: round to nearest, no error compensation). See the module docstring.

    Example:
        >>> gptq_quantize(torch.ones(2, 6), torch.eye(6), bits=4, group_size=4)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: group_size: expected an even divisor of the 6 input features, got 4. \
Fix: pick a group size that divides the input features, e.g. 6 here
    """
    check_bits(bits)
    n, k = weight.shape
    check_group_size(k, group_size)
    if not 0 <= damp < 1:
        raise ConfigError("gptq.damp", "a number in [0, 1) (a fraction of the mean Hessian diagonal)", damp,
                          "use 0.01")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ConfigError("gptq.block_size", "a positive integer", block_size, "use 128")
    qmax = 2**bits - 1
    w = weight.detach().float().clone()  # [N, K], updated in place as errors are compensated
    groups = k // group_size
    scale = torch.zeros(n, groups)
    zero = torch.zeros(n, groups, dtype=torch.int32)
    if hessian is None:  # round to nearest: every group from the original weight, no compensation
        s, z = group_qparams(w.reshape(-1, group_size), bits, mse_clip)
        scale, zero = s.reshape(n, groups), z.reshape(n, groups)
        u = (torch.round(w / scale.repeat_interleave(group_size, 1)) + zero.repeat_interleave(group_size, 1))
        return GPTQResult(u.clamp_(0, qmax).to(torch.uint8), scale, zero, bits, group_size)
    if tuple(hessian.shape) != (k, k):
        raise ConfigError("gptq hessian", f"a [{k}, {k}] matrix (the layer's input features)", list(hessian.shape),
                          "collect the Hessian of this layer's inputs")
    h = hessian.detach().float().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(k)
    if act_order:  # static groups: parameters from the original weight, groups contiguous in the original order
        s, z = group_qparams(w.reshape(-1, group_size), bits, mse_clip)
        scale, zero = s.reshape(n, groups), z.reshape(n, groups)
        w, h = w[:, perm], h[perm][:, perm]
    hinv = _inverse_cholesky(h, damp)  # [K, K] upper
    u = torch.zeros(n, k, dtype=torch.uint8)  # in permuted column order until the end
    block = max(group_size, block_size // group_size * group_size)  # groups never straddle a block
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        w1 = w[:, i1:i2].clone()  # [N, B]
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = int(perm[i1 + i])
            g = col // group_size
            if not act_order and col % group_size == 0:  # first column of a group: parameters from updated weights
                s, z = group_qparams(w1[:, i:i + group_size], bits, mse_clip)
                scale[:, g], zero[:, g] = s, z
            column = w1[:, i]  # [N]
            q = (torch.round(column / scale[:, g]) + zero[:, g]).clamp_(0, qmax)
            u[:, i1 + i] = q.to(torch.uint8)
            dq = (q - zero[:, g]) * scale[:, g]
            e = (column - dq) / hinv1[i, i]  # [N]
            w1[:, i:] -= e[:, None] * hinv1[i, i:][None, :]  # compensate inside the block
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]  # lazy update of the remaining columns: [N, B] @ [B, K - i2]
    if act_order:
        u = u[:, torch.argsort(perm)]
    return GPTQResult(u, scale, zero, bits, group_size)


class GPTQOptions(Frozen):
    """GPTQ's knobs (see :func:`gptq_quantize`).

    Example:
        >>> GPTQOptions(act_order=True).damp
        0.01
    """

    damp: float = Field(0.01, ge=0, lt=1, description="added to H's diagonal, as a fraction of its mean")
    block_size: int = Field(128, ge=1, le=65536, description="columns per lazy batch update")
    act_order: bool = Field(False, description="quantize the most active input columns first (static groups)")


@torch.no_grad()
def collect_input_stats(model: nn.Module, names: Sequence[str], batches: Iterable[tuple[Tensor, ...]],
                        hessian: bool = True) -> dict[str, HessianAccumulator]:
    """One pass over ``batches`` (input tuples of the task's training split) recording, per layer in ``names``, the
    statistics of its input: ``X^T X / n`` and the mean over rows (Linear: the last dimension is the feature;
    Conv2d: the channel dimension, every position a row). ``hessian=False`` keeps only the mean (big layers).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> stats = collect_input_stats(model, ["0"], [(torch.ones(4, 2),)])
        >>> stats["0"].hessian(), stats["0"].count
        (tensor([[1., 1.],
                [1., 1.]]), 4)
    """
    stats: dict[str, HessianAccumulator] = {}
    handles = []
    for name in names:
        module = model.get_submodule(name)

        def hook(mod: nn.Module, args: tuple[Tensor, ...], out: Tensor, name: str = name) -> None:
            x = args[0].movedim(1, -1) if isinstance(mod, nn.Conv2d) else args[0]  # [..., features]
            acc = stats.setdefault(name, HessianAccumulator(x.shape[-1], hessian))
            acc.update(x)

        handles.append(module.register_forward_hook(hook))
    with evaluating(model, handles):
        for inputs in batches:
            model(*inputs)
    return stats
