"""The distill stage end to end (a few steps on digits): the student improves, the file it packs into unpacks to the
same outputs; ensembles, chains, peers, hints and the ``finetune: {distill: ...}`` hook all train."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from modelpress import unpack
from modelpress.config import FinetuneConfig, KDConfig
from modelpress.distill import DistillConfig, DistillObjective, FeaturePair, StudentWithAdapters, TeacherSet, distill
from modelpress.distill.students import TinyMLP
from modelpress.recipe import parse_recipe, run
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.train import fit
from modelpress.zoo import load

STUDENT = {"ref": "modelpress.distill.students:TinyMLP", "kwargs": {"in_shape": [1, 8, 8], "hidden": 16}}


def test_distill_stage_improves_student_and_file_rebuilds_it(digits_task: ClassificationTask, tmp_path: Path) -> None:
    teacher = load("lenet300", digits_task)
    torch.manual_seed(0)
    untrained = digits_task.evaluate(TinyMLP(in_shape=(1, 8, 8), hidden=16))["accuracy"]
    config = DistillConfig(student=STUDENT, kd=KDConfig(temperature=4, alpha=0.9), train={"epochs": 3, "lr": 1e-2})
    result = run([config], teacher, digits_task, out=tmp_path / "student.mpz", quiet=True)
    accuracy = result.history.rows[-1].metrics["accuracy"]
    assert accuracy > untrained + 0.5, (untrained, accuracy)
    assert result.history.rows[-1].params == 64 * 16 + 16 + 16 * 10 + 10
    restored = unpack(tmp_path / "student.mpz")
    assert isinstance(restored, TinyMLP)
    x = digits_task.example_inputs(16)[0]
    assert torch.equal(restored(x), result.model(x))


def test_ensemble_chain_and_peers_train(digits_task: ClassificationTask) -> None:
    teacher = load("lenet300", digits_task)
    ensemble = DistillConfig(student=STUDENT, teachers=["current", "original"], ensemble="confidence",
                             train={"epochs": 5, "lr": 1e-2})
    ctx = StageContext(task=digits_task, quiet=True, teacher=teacher)
    assert digits_task.evaluate(distill(teacher, ensemble, digits_task, ctx))["accuracy"] > 0.5
    chain = DistillConfig(student=STUDENT, assistants=[{"ref": "modelpress.distill.students:TinyMLP",
                                                        "kwargs": {"in_shape": [1, 8, 8], "hidden": 32}}],
                          train={"epochs": 5, "lr": 1e-2})
    ctx = StageContext(task=digits_task, quiet=True)
    assert digits_task.evaluate(distill(teacher, chain, digits_task, ctx))["accuracy"] > 0.5
    assert ctx.notes["assistant_1_metrics"]["accuracy"] > 0.5
    peers = DistillConfig(student=STUDENT, peers=2, kd=KDConfig(temperature=1, alpha=0.5),
                          train={"epochs": 5, "lr": 1e-2})
    ctx = StageContext(task=digits_task, quiet=True)
    first = distill(teacher, peers, digits_task, ctx)
    assert digits_task.evaluate(first)["accuracy"] > 0.5 and ctx.notes["peer_metrics"][0]["accuracy"] > 0.5


def test_hints_train_adapters_and_leave_none_in_the_student(digits_task: ClassificationTask) -> None:
    teacher = load("lenet300", digits_task)
    student = TinyMLP(in_shape=(1, 8, 8), hidden=16)
    objective = DistillObjective(student, TeacherSet([teacher]), KDConfig(), digits_task,
                                 hints=[FeaturePair(student="fc1", teacher="fc2", weight=0.1)])
    adapter = objective.adapters[0]
    assert isinstance(adapter, nn.Linear) and (adapter.in_features, adapter.out_features) == (16, 100)
    before = adapter.weight.detach().clone()
    fit(StudentWithAdapters(student, objective.adapters), digits_task, FinetuneConfig(epochs=0.2), objective=objective,
        quiet=True)
    objective.remove_hooks()
    assert not torch.equal(before, adapter.weight)
    assert all(not k.startswith("adapters") for k in student.state_dict())


def test_finetune_distill_hook_uses_the_original_model(digits_task: ClassificationTask) -> None:
    recipe = {"stages": [{"type": "prune", "sparsity": 0.8,
                          "finetune": {"epochs": 0.3, "distill": {"temperature": 2, "alpha": 1.0}}}]}
    plain = {"stages": [{"type": "prune", "sparsity": 0.8, "finetune": {"epochs": 0.3}}]}
    with_kd = run(parse_recipe(recipe), load("lenet300", digits_task), digits_task, quiet=True).model
    without = run(parse_recipe(plain), load("lenet300", digits_task), digits_task, quiet=True).model
    # same masks and data order: only the objective differs, so the weights do
    assert torch.equal(with_kd.fc1.weight == 0, without.fc1.weight == 0)
    assert not torch.equal(with_kd.fc1.weight, without.fc1.weight)
