"""Each distillation loss equals a value computed by hand on small tensors; the T^2 scaling of logit KD."""

from __future__ import annotations

import math

import pytest
import torch

from modelpress.distill import (
    attention_map,
    attention_probs_loss,
    attention_transfer_loss,
    embedding_loss,
    ensemble_probs,
    hint_loss,
    kd_loss,
    soft_kl,
)


def _softmax(values: list[float], t: float = 1.0) -> list[float]:
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def test_soft_kl_matches_hand_computation() -> None:
    z, t = [1.0, 2.0, 3.0], 2.0
    p = [0.6, 0.3, 0.1]
    q = _softmax(z, t)
    expected = t * t * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    got = soft_kl(torch.tensor([z]), torch.tensor([p]), t)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_kd_loss_mixes_soft_and_hard_terms_by_alpha() -> None:
    zs, zt, t, alpha = [0.5, -1.0, 2.0], [1.0, 0.0, 3.0], 4.0, 0.7
    p, q = _softmax(zt, t), _softmax(zs, t)
    soft = t * t * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    hard = -math.log(_softmax(zs)[2])  # label 2
    got = kd_loss(torch.tensor([zs]), torch.tensor([zt]), torch.tensor([2]), t, alpha)
    assert float(got) == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-5)


def test_kd_loss_averages_over_the_batch() -> None:
    zs, zt = torch.tensor([[0.0, 1.0], [2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    each = [float(kd_loss(zs[i:i + 1], zt[i:i + 1], None, 3.0, 1.0)) for i in range(2)]
    assert float(kd_loss(zs, zt, None, 3.0, 1.0)) == pytest.approx(sum(each) / 2, rel=1e-6)


@pytest.mark.parametrize("t", [1.0, 2.0, 8.0])
def test_t_squared_scaling(t: float) -> None:
    # T^2 * KL at temperature T: the value is T^2 times the plain KL of the softened distributions, and the gradient
    # with respect to the student logits is T * (q - p), so it does not vanish as 1/T^2 for large T
    z = torch.tensor([[0.3, -1.2, 2.0]], requires_grad=True)
    p = torch.tensor([_softmax([1.0, 0.0, 0.5], t)])
    q = torch.softmax(z.detach() / t, dim=-1)
    plain_kl = float((p * (p.log() - q.log())).sum())
    loss = soft_kl(z, p, t)
    assert float(loss) == pytest.approx(t * t * plain_kl, rel=1e-5)
    loss.backward()
    assert torch.allclose(z.grad, t * (q - p), atol=1e-6)


def test_hint_loss_is_mean_squared_difference() -> None:
    s, t = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    assert float(hint_loss(s, t)) == pytest.approx((1 + 0 + 4 + 16) / 4)


def test_attention_map_and_transfer_match_hand_values() -> None:
    # one sample, 2 channels, 1x2 spatial: channel-mean squares [(1 + 9) / 2, (4 + 0) / 2] = [5, 2]
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    norm = math.sqrt(25 + 4)
    assert attention_map(f).flatten().tolist() == pytest.approx([5 / norm, 2 / norm])
    g = torch.tensor([[[[1.0, 1.0]]]])  # one channel, uniform: map [1, 1] / sqrt(2)
    expected = ((5 / norm - 1 / math.sqrt(2)) ** 2 + (2 / norm - 1 / math.sqrt(2)) ** 2) / 2
    assert float(attention_transfer_loss(f, g)) == pytest.approx(expected, rel=1e-6)


def test_attention_probs_loss_mse_kl_heads_and_mask() -> None:
    s = torch.tensor([[[[0.5, 0.5], [0.9, 0.1]]]])  # [B=1, H=1, T=2, T=2]
    t = torch.tensor([[[[0.8, 0.2], [0.9, 0.1]]]])
    assert float(attention_probs_loss(s, t, "mse")) == pytest.approx((0.09 + 0.09) / 2 / 2)
    kl_row0 = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert float(attention_probs_loss(s, t, "kl")) == pytest.approx(kl_row0 / 2, rel=1e-5)
    assert float(attention_probs_loss(s, t, "kl", mask=torch.tensor([[0, 1]]))) == pytest.approx(0.0, abs=1e-7)
    two_heads = torch.cat([t, s], dim=1)  # 2 heads vs 1: both averaged over heads first
    averaged = (t + s) / 2
    assert float(attention_probs_loss(s, two_heads, "mse")) == pytest.approx(float(((s - averaged) ** 2).mean()))


def test_embedding_losses() -> None:
    s, t = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    assert float(embedding_loss(s, t, "mse")) == pytest.approx((1 + 4 + 1 + 1) / 4)
    assert float(embedding_loss(s, t, "cosine")) == pytest.approx((1 + 0) / 2, abs=1e-6)


def test_ensemble_average_and_confidence_weights() -> None:
    a, b = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([[0.0, 0.0]])  # probs [0.75, 0.25] and [0.5, 0.5]
    assert ensemble_probs([a, b], 1.0).tolist()[0] == pytest.approx([0.625, 0.375])
    assert ensemble_probs([a, b], 1.0, weights=[3, 1]).tolist()[0] == pytest.approx([0.6875, 0.3125])
    # confidence: per-sample weights 0.75 and 0.5, normalized to 0.6 and 0.4
    assert ensemble_probs([a, b], 1.0, mode="confidence").tolist()[0] == pytest.approx([0.65, 0.35])
