"""Distillation losses: pure functions of tensors (no modules, no state), each with its shapes.

* :func:`soft_kl` / :func:`kd_loss` — Hinton et al.'s logit distillation: ``T^2 * KL(p_t || p_s)`` with
  ``p = softmax(z / T)``, mixed with the hard-label cross-entropy by ``alpha``. The ``T^2`` keeps the soft term's
  gradients at the same scale as the hard term's when ``T`` changes (they shrink as ``1 / T^2`` otherwise).
* :func:`hint_loss` — FitNets: mean squared difference between a (adapted) student feature and a teacher feature.
* :func:`attention_map` / :func:`attention_transfer_loss` — Zagoruyko & Komodakis: a CNN feature ``[B, C, H, W]``
  becomes the spatial map ``mean_c |f_c|^p``, flattened and L2-normalized; the loss is the mean squared difference.
* :func:`attention_probs_loss` — transformers: MSE or KL between attention probabilities ``[B, heads, T, T]``.
* :func:`embedding_loss` — sentence models: MSE or ``1 - cosine`` between embeddings ``[B, D]``.

Example:
    >>> import torch
    >>> s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    >>> round(float(embedding_loss(s, t, "cosine")), 4), round(float(embedding_loss(s, t, "mse")), 4)
    (1.0, 1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError

__all__ = [
    "attention_map",
    "attention_probs_loss",
    "attention_transfer_loss",
    "embedding_loss",
    "hint_loss",
    "kd_loss",
    "soft_kl",
]


def _same_shape(what: str, student: Tensor, teacher: Tensor) -> None:
    if student.shape != teacher.shape:
        raise ConfigError(what, f"student and teacher tensors of the same shape (teacher {list(teacher.shape)})",
                          f"<student {list(student.shape)}>",
                          "pick a teacher and student with matching outputs, or an adapter for features")


def soft_kl(student_logits: Tensor, teacher_probs: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(teacher_probs || softmax(student_logits / T))``, averaged over the batch.

    ``student_logits`` ``[B, C]``; ``teacher_probs`` ``[B, C]`` already softened at ``T`` (rows sum to 1; an
    ensemble passes its averaged probabilities here).

    Example:
        >>> import math, torch
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> z = torch.tensor([[math.log(3.0), 0.0]])  # softmax(z / 1) = [0.75, 0.25]
        >>> round(float(soft_kl(z, p, 1.0)), 6) == round(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25), 6)
        True
    """
    _same_shape("soft_kl: logits", student_logits, teacher_probs)
    log_ps = torch.log_softmax(student_logits.float() / temperature, dim=-1)  # [B, C]
    # kl_div(input=log q, target=p) = sum p (log p - log q); batchmean divides by B
    kl = nn.functional.kl_div(log_ps, teacher_probs.float(), reduction="batchmean")
    return kl * temperature**2


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None, temperature: float,
            alpha: float) -> Tensor:
    """``alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(student_logits, targets)`` (Hinton et al.).

    ``student_logits``, ``teacher_logits`` ``[B, C]``; ``targets`` int64 ``[B]`` (ignored, may be None, when
    ``alpha == 1``).

    Example:
        >>> import torch
        >>> z = torch.tensor([[2.0, 0.0]]); y = torch.tensor([0])
        >>> round(float(kd_loss(z, z, y, 4.0, 0.0)), 4)  # alpha 0: the hard-label loss alone
        0.1269
        >>> round(float(kd_loss(z, z, y, 4.0, 1.0)), 4)  # same logits: nothing to distil
        0.0
    """
    _same_shape("kd_loss: logits", student_logits, teacher_logits)
    teacher_probs = torch.softmax(teacher_logits.detach().float() / temperature, dim=-1)  # [B, C]
    loss = alpha * soft_kl(student_logits, teacher_probs, temperature)
    if alpha < 1:
        if targets is None:
            raise ConfigError("kd_loss: targets", "hard labels when alpha < 1", "<None>", "pass targets or alpha=1")
        loss = loss + (1 - alpha) * nn.functional.cross_entropy(student_logits.float(), targets)
    return loss


def hint_loss(student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
    """FitNets hint loss: mean squared difference of a student feature (after its adapter) and a teacher feature.

    Both of the same shape, e.g. ``[B, C, H, W]`` or ``[B, T, D]``.

    Example:
        >>> import torch
        >>> float(hint_loss(torch.ones(2, 3), torch.zeros(2, 3)))
        1.0
    """
    _same_shape("hint_loss: features", student_feature, teacher_feature)
    return (student_feature.float() - teacher_feature.detach().float()).pow(2).mean()


def attention_map(feature: Tensor, p: float = 2.0) -> Tensor:
    """Zagoruyko & Komodakis' spatial attention: ``[B, C, H, W]`` → ``normalize(mean_c |f|^p)`` ``[B, H*W]``.

    Example:
        >>> import torch
        >>> attention_map(torch.ones(1, 3, 2, 2)).tolist()  # uniform map, unit norm
        [[0.5, 0.5, 0.5, 0.5]]
    """
    if feature.dim() != 4:
        raise ConfigError("attention_map: feature", "a CNN feature map [B, C, H, W]", f"<{list(feature.shape)}>",
                          "pick a convolutional layer's output")
    amap = feature.float().abs().pow(p).mean(dim=1).flatten(1)  # [B, H*W]: channel-mean activation energy
    return nn.functional.normalize(amap, p=2, dim=1)


def attention_transfer_loss(student_feature: Tensor, teacher_feature: Tensor, p: float = 2.0) -> Tensor:
    """Mean squared difference of the two attention maps; channel counts may differ, spatial sizes must agree.

    ``student_feature`` ``[B, Cs, H, W]``, ``teacher_feature`` ``[B, Ct, H, W]``.

    Example:
        >>> import torch
        >>> float(attention_transfer_loss(torch.ones(1, 4, 2, 2), torch.ones(1, 8, 2, 2)))
        0.0
    """
    s_map, t_map = attention_map(student_feature, p), attention_map(teacher_feature.detach(), p)  # [B, H*W]
    if s_map.shape != t_map.shape:
        raise ConfigError("attention_transfer_loss: features", f"the same spatial size as the teacher's "
                          f"{list(teacher_feature.shape[2:])}", f"<{list(student_feature.shape[2:])}>",
                          "pair layers whose outputs have the same height and width")
    return (s_map - t_map).pow(2).mean()


def attention_probs_loss(student_probs: Tensor, teacher_probs: Tensor, kind: str = "mse",
                         mask: Tensor | None = None) -> Tensor:
    """Distance between transformer attention probabilities ``[B, heads, T, T]`` (rows sum to 1).

    ``kind`` is ``mse`` or ``kl`` (``KL(teacher || student)`` per query row, as in MiniLM/TinyBERT). If the head
    counts differ, both are averaged over heads first. ``mask`` ``[B, T]`` (1 = real token) restricts the mean to
    real query rows.

    Example:
        >>> import torch
        >>> uniform = torch.full((1, 1, 2, 2), 0.5)
        >>> float(attention_probs_loss(uniform, uniform, "kl")), float(attention_probs_loss(uniform, uniform))
        (0.0, 0.0)
    """
    s, t = student_probs.float(), teacher_probs.detach().float()  # [B, Hs, T, T], [B, Ht, T, T]
    if s.shape[1] != t.shape[1]:
        s, t = s.mean(dim=1, keepdim=True), t.mean(dim=1, keepdim=True)  # [B, 1, T, T]
    _same_shape("attention_probs_loss: attention", s, t)
    if kind == "kl":
        per_row = (t * (t.clamp_min(1e-12).log() - s.clamp_min(1e-12).log())).sum(dim=-1)  # [B, H, T]
    elif kind == "mse":
        per_row = (s - t).pow(2).mean(dim=-1)  # [B, H, T]
    else:
        raise ConfigError("attention_probs_loss: kind", "mse or kl", kind, "use kind='mse'")
    if mask is None:
        return per_row.mean()
    weights = mask.to(per_row.dtype)[:, None, :].expand_as(per_row)  # [B, H, T]: real query rows only
    return (per_row * weights).sum() / weights.sum().clamp_min(1)


def embedding_loss(student: Tensor, teacher: Tensor, kind: str = "mse") -> Tensor:
    """Embedding distillation for sentence models: ``mse`` (mean over ``[B, D]``) or ``cosine`` (mean ``1 - cos``).

    Example:
        >>> import torch
        >>> float(embedding_loss(torch.tensor([[3.0, 4.0]]), torch.tensor([[6.0, 8.0]]), "cosine"))
        0.0
    """
    _same_shape("embedding_loss: embeddings", student, teacher)
    s, t = student.float(), teacher.detach().float()  # [B, D]
    if kind == "mse":
        return (s - t).pow(2).mean()
    if kind == "cosine":
        return (1 - nn.functional.cosine_similarity(s, t, dim=-1)).mean()
    raise ConfigError("embedding_loss: kind", "mse or cosine", kind, "use kind='cosine'")
