"""Per-layer quantization sensitivity: quantize one layer at a time at each candidate width (the others intact) and
measure what it does to the weight and to the model's outputs on training inputs.

Rows (one per layer and width): ``weight_sqnr_db`` = ``10 log10(|W|^2 / |W - W_q|^2)``; ``output_sqnr_db`` and
``output_noise`` = ``|f_q(x) - f(x)|^2 / |f(x)|^2`` over the inputs (the quantity the allocation sums);
``output_cosine``: mean cosine of each example's output to the float model's (for an embedding model this is the
fidelity metric itself, on training sentences); ``top1_agreement``: share of examples whose argmax is unchanged (the
accuracy proxy of a classifier).

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0) and None
    >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> fake = lambda module, bits: torch.round(module.weight * 2**bits) / 2**bits
    >>> rows = sensitivity_sweep(model, [("0", model[0])], (2, 8), fake, [(torch.randn(16, 8),)])
    >>> [r["bits"] for r in rows], rows[0]["output_noise"] > rows[1]["output_noise"]
    ([2, 8], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelpress.eval_mode import evaluating
from modelpress.progress import progress_bar

__all__ = ["sensitivity_sweep", "sqnr_db"]


def sqnr_db(signal: Tensor, noisy: Tensor) -> float:
    """``10 log10(|signal|^2 / |signal - noisy|^2)`` in dB (``inf`` when equal).

    Example:
        >>> round(sqnr_db(torch.tensor([1.0, 1.0]), torch.tensor([1.1, 0.9])), 2)
        20.0
    """
    noise = float(((signal.float() - noisy.float()) ** 2).sum())
    power = float((signal.float() ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(max(power, 1e-30) / noise)


def _outputs(model: nn.Module, inputs: Sequence[tuple[Tensor, ...]]) -> Tensor:
    """The model's outputs on every input tuple, rows flattened: ``[examples, features]``."""
    return torch.cat([model(*batch).reshape(batch[0].shape[0], -1).float() for batch in inputs])


@torch.no_grad()
def sensitivity_sweep(model: nn.Module, layers: Sequence[tuple[str, nn.Module]], bits: Sequence[int],
                      fake_weight: Callable[[nn.Module, int], Tensor],
                      inputs: Sequence[tuple[Tensor, ...]], quiet: bool = False) -> list[dict[str, Any]]:
    """One row per (layer, width): the layer's weight temporarily replaced by ``fake_weight(module, bits)``, the
    outputs on ``inputs`` compared with the float model's (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    with evaluating(model):
        reference = _outputs(model, inputs)  # [E, F]
        power = float((reference**2).sum())
        with progress_bar("sensitivity sweep", total=len(layers) * len(bits), quiet=quiet) as advance:
            rows.extend(_sweep(model, layers, bits, fake_weight, inputs, reference, power, advance))
    return rows


def _sweep(model: nn.Module, layers: Sequence[tuple[str, nn.Module]], bits: Sequence[int],
           fake_weight: Callable[[nn.Module, int], Tensor], inputs: Sequence[tuple[Tensor, ...]], reference: Tensor,
           power: float, advance: Callable[..., None]) -> list[dict[str, Any]]:
    """The rows of :func:`sensitivity_sweep` (``reference`` ``[E, F]``: the float model's outputs, ``power`` their
    summed squares)."""
    rows: list[dict[str, Any]] = []
    for name, module in layers:
        original = module.weight.data
        for b in sorted(bits):
            fake = fake_weight(module, b).to(original.dtype)
            module.weight.data = fake
            try:
                out = _outputs(model, inputs)  # [E, F]
            finally:
                module.weight.data = original
            noise = float(((out - reference) ** 2).sum()) / max(power, 1e-30)
            cosine = float(F.cosine_similarity(out, reference, dim=1).mean())
            agree = float((out.argmax(1) == reference.argmax(1)).float().mean())
            rows.append({"layer": name, "bits": b, "weights": original.numel(),
                         "weight_sqnr_db": round(sqnr_db(original, fake), 3),
                         "output_sqnr_db": round(sqnr_db(reference, out), 3), "output_noise": noise,
                         "output_cosine": round(cosine, 6), "top1_agreement": round(agree, 6)})
            advance()
    return rows
