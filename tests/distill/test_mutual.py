"""Mutual learning with peers of different architectures (``peer_students``): both train, the first becomes the
model, ``peers: 2`` is the same as listing the student once, and inconsistent settings are rejected."""

from __future__ import annotations

import pytest
import torch

from modelpress.config import KDConfig
from modelpress.distill import DistillConfig, distill
from modelpress.distill.mutual import MutualObjective, Peers
from modelpress.distill.students import TinyMLP
from modelpress.errors import ConfigError
from modelpress.recipe import parse_recipe
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask

MLP16 = {"ref": "modelpress.distill.students:TinyMLP", "kwargs": {"in_shape": [1, 8, 8], "hidden": 16}}
LENET300 = {"ref": "modelpress.zoo.models:LeNet300", "kwargs": {"in_shape": [1, 8, 8]}}
KD = KDConfig(temperature=2, alpha=0.5)


def test_peers_of_two_architectures_both_learn(digits_task: ClassificationTask) -> None:
    config = DistillConfig(student=MLP16, peer_students=[LENET300], kd=KD, train={"epochs": 3, "lr": 1e-2})
    assert config.peer_count == 2
    ctx = StageContext(task=digits_task, quiet=True, seed=3)
    first = distill(torch.nn.Identity(), config, digits_task, ctx)
    assert isinstance(first, TinyMLP) and ctx.notes["peer_students"] == ["modelpress.zoo.models:LeNet300"]
    assert digits_task.evaluate(first)["accuracy"] > 0.7  # untrained: about 0.1
    assert ctx.notes["peer_metrics"][0]["accuracy"] > 0.7  # the LeNet-300-100 peer was trained too


def test_listing_the_student_as_its_peer_equals_peers_2(digits_task: ClassificationTask) -> None:
    train = {"epochs": 1, "lr": 1e-2}
    listed = distill(torch.nn.Identity(), DistillConfig(student=MLP16, peer_students=[MLP16], kd=KD, train=train),
                     digits_task, StageContext(task=digits_task, quiet=True, seed=5))
    counted = distill(torch.nn.Identity(), DistillConfig(student=MLP16, peers=2, kd=KD, train=train), digits_task,
                      StageContext(task=digits_task, quiet=True, seed=5))
    assert all(torch.equal(a, b) for a, b in zip(listed.state_dict().values(), counted.state_dict().values(),
                                                 strict=True))


def test_peer_count_and_outputs_must_agree(digits_task: ClassificationTask) -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": MLP16, "peers": 3, "peer_students": [LENET300],
                                  "train": {"epochs": 1}}]})
    assert ("expected peers: 2 (the student and 1 peer_students) or no peers, got peers: 3") in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": MLP16, "peer_students": [LENET300],
                                  "teachers": ["zoo:lenet5"], "train": {"epochs": 1}}]})
    assert "expected no teachers, assistants, hints or attention with peers > 1" in str(err.value)
    five = {"ref": "modelpress.distill.students:TinyMLP", "kwargs": {"in_shape": [1, 8, 8], "num_classes": 5}}
    with pytest.raises(ConfigError) as err:
        distill(torch.nn.Identity(), DistillConfig(student=MLP16, peer_students=[five], train={"epochs": 1}),
                digits_task)
    assert str(err.value) == ("distill: peer 1 output: expected the first peer's output shape [2, 10], got <[2, 5]>. "
                              "Fix: use peer_students with the same outputs (classes, embedding width) as the student")


class _Fixed(torch.nn.Module):
    """A 'peer' whose output is a learnable tensor (logits ``[B, C]``), whatever the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def _by_hand(z: list[torch.Tensor], y: torch.Tensor, temperature: float, alpha: float, target: str) -> torch.Tensor:
    """Each peer: (1 - alpha) CE + alpha T^2 KL(q || p_i), q the other peer's or the average softened probs."""
    soft = [torch.softmax(zi.detach() / temperature, dim=-1) for zi in z]
    total = torch.zeros(())
    for i, zi in enumerate(z):
        q = (soft[0] + soft[1]) / 2 if target == "ensemble" else soft[1 - i]
        log_p = torch.log_softmax(zi / temperature, dim=-1)
        kl = (q * (q.log() - log_p)).sum(-1).mean() * temperature**2
        total = total + alpha * kl + (1 - alpha) * torch.nn.functional.cross_entropy(zi, y)
    return total


@pytest.mark.parametrize("target", ["peers", "ensemble"])
def test_mutual_loss_and_gradients_equal_the_hand_computed_ones(target: str) -> None:
    z0 = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, -0.7]])
    z1 = torch.tensor([[0.5, 0.5, 1.5], [-1.0, 2.0, 0.0]])
    y = torch.tensor([0, 1])
    x = torch.zeros(2, 3)
    task = ClassificationTask("toy", x, y, x, y, num_classes=3)
    peers = Peers([_Fixed(z0), _Fixed(z1)])
    loss = MutualObjective(KDConfig(temperature=2.0, alpha=0.6), task, target)(peers, (x,), y)
    loss.backward()
    leaves = [z0.clone().requires_grad_(), z1.clone().requires_grad_()]
    expected = _by_hand(leaves, y, 2.0, 0.6, target)
    expected.backward()
    assert torch.allclose(loss, expected, atol=1e-6)
    for peer, leaf in zip(peers.peers, leaves, strict=True):  # each peer gets its own term's gradient, no more
        assert torch.allclose(peer.logits.grad, leaf.grad, atol=1e-6)


def test_ensemble_target_differs_from_peers_target_and_trains_both(digits_task: ClassificationTask) -> None:
    train = {"epochs": 6, "lr": 1e-2}
    runs = {}
    for target in ("peers", "ensemble"):
        ctx = StageContext(task=digits_task, quiet=True, seed=5)
        config = DistillConfig(student=MLP16, peers=2, kd=KD, train=train, mutual_target=target)
        runs[target] = distill(torch.nn.Identity(), config, digits_task, ctx)
        assert digits_task.evaluate(runs[target])["accuracy"] > 0.7  # untrained: about 0.1
        assert ctx.notes["peer_metrics"][0]["accuracy"] > 0.7
    assert not torch.equal(runs["peers"].state_dict()["fc1.weight"], runs["ensemble"].state_dict()["fc1.weight"])


def test_mutual_target_needs_peers() -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "distill", "student": MLP16, "mutual_target": "ensemble",
                                  "train": {"epochs": 1}}]})
    assert ("expected mutual_target only with peers >= 2 (mutual learning), got mutual_target: ensemble with one "
            "student; set peers: 2 or drop mutual_target") in str(err.value)
