"""The ``distill`` stage: train a new, smaller student from the current model (and optional other teachers).

A recipe stage::

    - type: distill
      student: modelpress.distill.students:TinyCNN     # or zoo:NAME, or {ref: ..., kwargs: {...}}
      teachers: [current, zoo:lenet300]                # default [current]: the model entering the stage
      ensemble: average                                # or confidence (per-sample teacher weights)
      kd: {loss: kl, temperature: 4, alpha: 0.9}
      hints: [{student: conv2, teacher: conv2}]        # FitNets hints, learned 1x1-conv/Linear adapters
      attention: [{student: conv2, teacher: conv2}]    # attention transfer (spatial maps)
      augment: {kind: affine, shift: 2, degrees: 12}   # perturbed training batches (modelpress.distill.transfer)
      train: {epochs: 10, lr: 0.003}                   # the distillation run (required)

``current`` is the model entering the stage; ``original`` is the run's frozen copy of the model it started from;
anything else is a model reference (``zoo:NAME``, ``package.module:factory``, a checkpoint, a ``.mpz`` file).
``assistants`` makes a progressive chain: teachers → assistant 1 → … → student, each link trained with ``kd`` and
``train`` (hints and attention apply to the last link). ``peers: 2`` (or more) is online mutual learning instead:
that many students of the given architecture (seeds ``seed``, ``seed + 1``, …) trained together, no teacher; the
first peer becomes the model. ``peer_students: [zoo:lenet300]`` makes the other peers of other architectures (peer
``i`` is ``peer_students[i - 1]``, seed ``seed + i``): Deep Mutual Learning gains most from diverse peers.
``mutual_target: ensemble`` has every peer mimic the average of all peers instead of each other (KDCL).
``freeze`` keeps parameters matching the patterns fixed (e.g. a transformer's embeddings).

The handler returns the student, so the stage changes the model's architecture: its provenance is the student's
factory (with kwargs) or zoo architecture, and ``modelpress.unpack`` rebuilds it from there. The context's callbacks
from earlier stages (e.g. mask keepers of the previous model) no longer apply and are cleared. The generic
``finetune`` section, if any, trains the student further on the task's loss afterwards.

Example:
    >>> import torch
    >>> from modelpress.tasks.mnist import digits
    >>> from modelpress.zoo.models import LeNet300
    >>> task = digits()
    >>> config = DistillConfig(student={"ref": "modelpress.zoo.models:LeNet300", "kwargs": {"in_shape": [1, 8, 8]}},
    ...                        train={"epochs": 0.1})
    >>> student = distill(LeNet300(in_shape=(1, 8, 8)), config, task)
    >>> from modelpress.provenance import get_provenance
    >>> get_provenance(student).source["ref"]
    'modelpress.zoo.models:LeNet300'
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from modelpress.config import FinetuneConfig, Frozen, KDConfig, StageConfig
from modelpress.distill.mutual import MutualObjective, MutualTarget, Peers, check_peer_outputs
from modelpress.distill.objective import DistillObjective, FeaturePair, StudentWithAdapters
from modelpress.distill.teachers import Ensemble, TeacherSet
from modelpress.distill.transfer import AugmentConfig, TransferTask
from modelpress.errors import ConfigError
from modelpress.imports import import_object
from modelpress.provenance import Provenance, set_provenance
from modelpress.recipe.registry import StageContext, stage
from modelpress.select import matches
from modelpress.task import ClassificationTask, Task
from modelpress.train import fit

__all__ = ["DistillConfig", "StudentSpec", "build_student", "distill"]

JSONValue = int | float | str | bool | None | list[Any] | dict[str, Any]


class StudentSpec(Frozen):
    """An architecture to build fresh: ``zoo:NAME`` or ``package.module:factory`` with keyword arguments.

    A plain string in a recipe is the ``ref`` alone.

    Example:
        >>> StudentSpec.model_validate("zoo:lenet300").ref
        'zoo:lenet300'
    """

    ref: str = Field(pattern=r"^(zoo:[\w-]+|[\w.]+:\w+)$")
    kwargs: dict[str, JSONValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"ref": value} if isinstance(value, str) else value


class DistillConfig(StageConfig, tag="distill"):
    """Distil the current model (and optional other teachers) into a fresh ``student`` (module docstring).

    Example:
        >>> config = DistillConfig(student="zoo:lenet300", teachers=["current", "zoo:lenet5"], train={"epochs": 5})
        >>> config.tag, config.kd.temperature, config.ensemble.value
        ('distill', 4.0, 'average')
    """

    student: StudentSpec
    teachers: tuple[str, ...] = Field(("current",), min_length=1)
    teacher_weights: tuple[float, ...] | None = None
    ensemble: Ensemble = Ensemble.average
    assistants: tuple[StudentSpec, ...] = ()
    peers: int = Field(1, ge=1, le=8, description="2 or more: mutual learning of that many students, no teacher")
    peer_students: tuple[StudentSpec, ...] = Field((), max_length=7, description="mutual learning with peers of "
                                                   "other architectures: peers 1, 2, ... (peer 0 is `student`)")
    mutual_target: MutualTarget = Field(MutualTarget.peers, description="what each peer mimics: `peers` (the "
                                        "others, Deep Mutual Learning) or `ensemble` (all peers' average, KDCL)")
    kd: KDConfig = KDConfig()
    hints: tuple[FeaturePair, ...] = ()
    attention: tuple[FeaturePair, ...] = ()
    freeze: tuple[str, ...] = Field((), description="parameter-name patterns kept fixed in the student")
    augment: AugmentConfig | None = Field(None, description="perturb the training batches (a transfer set); "
                                          "see modelpress.distill.transfer")
    train: FinetuneConfig

    @model_validator(mode="after")
    def _consistent(self) -> DistillConfig:
        if self.teacher_weights is not None and len(self.teacher_weights) != len(self.teachers):
            raise ValueError(f"expected one teacher weight per teacher ({len(self.teachers)}), got "
                             f"{len(self.teacher_weights)}")
        if self.peer_students and self.peers not in (1, 1 + len(self.peer_students)):
            raise ValueError(f"expected peers: {1 + len(self.peer_students)} (the student and "
                             f"{len(self.peer_students)} peer_students) or no peers, got peers: {self.peers}")
        if self.peer_count > 1 and (self.teachers != ("current",) or self.assistants or self.hints or self.attention):
            raise ValueError("expected no teachers, assistants, hints or attention with peers > 1 (mutual learning "
                             "has no teacher)")
        if self.peer_count == 1 and self.mutual_target is not MutualTarget.peers:
            raise ValueError(f"expected mutual_target only with peers >= 2 (mutual learning), got mutual_target: "
                             f"{self.mutual_target.value} with one student; set peers: 2 or drop mutual_target")
        return self

    @property
    def peer_count(self) -> int:
        """How many students mutual learning trains (1: no mutual learning)."""
        return 1 + len(self.peer_students) if self.peer_students else self.peers

    @property
    def peer_specs(self) -> tuple[StudentSpec, ...]:
        """The architecture of each peer, the student first.

        Example:
            >>> config = DistillConfig(student="zoo:lenet5", peer_students=["zoo:lenet300"], train={"epochs": 1})
            >>> [spec.ref for spec in config.peer_specs], config.peer_count
            (['zoo:lenet5', 'zoo:lenet300'], 2)
        """
        return (self.student, *self.peer_students) if self.peer_students else (self.student,) * self.peers


def build_student(spec: StudentSpec, task: Task, seed: int) -> nn.Module:
    """A freshly initialized (seeded) student with its provenance, so ``unpack`` can rebuild it.

    Example:
        >>> from modelpress.tasks.mnist import digits
        >>> type(build_student(StudentSpec(ref="zoo:lenet300"), digits(), 0)).__name__
        'LeNet300'
    """
    torch.manual_seed(seed)
    if spec.ref.startswith("zoo:"):
        from modelpress.zoo import build_architecture, zoo_entry

        name = spec.ref[4:]
        source: dict[str, Any] = {"kind": "zoo", "name": name}
        if zoo_entry(name).trained_here:
            if not isinstance(task, ClassificationTask):
                raise ConfigError(f"distill: student {spec.ref}", "an image classification task",
                                  f"<{type(task).__name__}>", "use a factory student for this task")
            source.update(task=task.name, in_shape=list(task.input_shape), num_classes=task.num_classes)
        model = build_architecture(source)
    else:
        source = {"kind": "factory", "ref": spec.ref, "kwargs": dict(spec.kwargs)}
        model = import_object(spec.ref, what="student factory")(**spec.kwargs)
        if not isinstance(model, nn.Module):
            raise ConfigError(f"distill: student {spec.ref}", "a factory returning a torch.nn.Module",
                              f"<{type(model).__name__}>", "return the model from the factory")
    set_provenance(model, Provenance(source=source))
    return model


def _teacher(ref: str, model: nn.Module, ctx: StageContext, task: Task) -> nn.Module:
    if ref == "current":
        return model
    if ref == "original":
        if ctx.teacher is None:
            raise ConfigError("distill: teachers", "a run that keeps the original model", "original",
                              "run the stage through modelpress.run, or use 'current'")
        return ctx.teacher
    from modelpress.sources import load_model

    return load_model(ref, task)


def _freeze(student: nn.Module, patterns: tuple[str, ...]) -> None:
    names = [name for name, _ in student.named_parameters()]
    for pattern in patterns:
        if not any(matches(n, pattern) for n in names):
            raise ConfigError("distill: freeze", f"a pattern matching parameters of the student (e.g. {names[0]})",
                              pattern, "use a name, glob or re: pattern from named_parameters()")
    for name, param in student.named_parameters():
        if any(matches(name, p) for p in patterns):
            param.requires_grad_(False)


def _train_link(student: nn.Module, teachers: TeacherSet, config: DistillConfig, task: Task, ctx: StageContext,
                with_features: bool, what: str) -> None:
    objective = DistillObjective(student, teachers, config.kd, task, config.hints if with_features else (),
                                 config.attention if with_features else ())
    try:
        data = TransferTask(task, config.augment) if config.augment is not None else task
        fit(StudentWithAdapters(student, objective.adapters), data, config.train, objective=objective,
            seed=ctx.seed, quiet=ctx.quiet, description=what)
    finally:
        objective.remove_hooks()


@stage(DistillConfig)
def apply_distill(model: nn.Module, config: DistillConfig, ctx: StageContext) -> nn.Module:
    """Stage handler: build and train the student (and assistants or peers); return the student."""
    task = ctx.require_task("distill")
    if config.peer_count > 1:
        peers = [build_student(spec, task, ctx.seed + i) for i, spec in enumerate(config.peer_specs)]
        check_peer_outputs(peers, task)
        for peer in peers:
            _freeze(peer, config.freeze)
        data = TransferTask(task, config.augment) if config.augment is not None else task
        fit(Peers(peers), data, config.train, objective=MutualObjective(config.kd, task, config.mutual_target),
            seed=ctx.seed, quiet=ctx.quiet, description=f"mutual learning of {len(peers)} peers")
        student = peers[0]
        ctx.notes["peer_students"] = [spec.ref for spec in config.peer_specs[1:]]
        ctx.notes["peer_metrics"] = [task.evaluate(p) for p in peers[1:]]
    else:
        models = [_teacher(ref, model, ctx, task) for ref in config.teachers]
        teachers = TeacherSet(models, config.teacher_weights, config.ensemble)
        for index, spec in enumerate(config.assistants):
            assistant = build_student(spec, task, ctx.seed + 100 + index)
            _train_link(assistant, teachers, config, task, ctx, False, f"distil into assistant {index + 1}")
            ctx.notes[f"assistant_{index + 1}_metrics"] = task.evaluate(assistant)
            teachers = TeacherSet([assistant])
        student = build_student(config.student, task, ctx.seed)
        _freeze(student, config.freeze)
        _train_link(student, teachers, config, task, ctx, True, "distil into the student")
    for param in student.parameters():
        param.requires_grad_(True)
    if ctx.callbacks:
        ctx.notes["cleared_callbacks"] = [type(cb).__name__ for cb in ctx.callbacks]
        ctx.callbacks.clear()  # they hold state of the previous architecture (e.g. its pruning masks)
    ctx.notes["student"] = config.student.ref
    ctx.notes["student_params"] = sum(p.numel() for p in student.parameters())
    student.eval()
    return student


def distill(model: nn.Module, config: DistillConfig, task: Task, ctx: StageContext | None = None) -> nn.Module:
    """Distil ``model`` into the student ``config`` describes, on ``task``; returns the trained student.

    Then fine-tunes it on the task's loss if ``config.finetune`` is set, as a recipe run would.

    Example:
        >>> import torch
        >>> distill(torch.nn.Linear(2, 2), DistillConfig(student="zoo:lenet300", train={"epochs": 1}), None)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: distill: expected a task (data to calibrate or train on), got <none>. Fix: \
pass task= to run or apply
    """
    from modelpress.recipe.run import run_stage  # recipe.run imports this package: import at call time

    ctx = ctx or StageContext(task=task)
    if ctx.task is None:
        ctx.task = task
    return run_stage(model, config, ctx)
