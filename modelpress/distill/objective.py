"""The distillation objective: what the fine-tuning loop minimizes instead of the task's loss.

:class:`DistillObjective` is an ``Objective`` (``(model, inputs, targets) -> loss``) for :func:`modelpress.train.fit`:

    loss = alpha * D(student outputs, teachers' outputs) + (1 - alpha) * task.loss(student outputs, targets)
           + sum_i w_i * hint_loss(adapter_i(student feature_i), teacher feature_i)          (FitNets hints)
           + sum_j w_j * attention_transfer_loss(student feature_j, teacher feature_j)       (attention transfer)

with ``D`` the ``kl`` (softened logits, ``T^2``-scaled, ensembles combined by :class:`TeacherSet`), ``mse`` or
``cosine`` distance of :class:`~modelpress.config.KDConfig`. Hint and attention features are taken by forward hooks
on layers named in the student and in the (first) teacher; where widths differ a learned adapter (1x1 conv or
Linear) maps the student's feature to the teacher's. The adapters are modules of the objective: train them together
with the student (``fit(StudentWithAdapters(student, objective), ...)``); they are never part of the student.

At construction everything runs once on two of the task's inputs, so a teacher whose outputs do not match the
student's, or a layer name that does not exist, is rejected before training starts.

:func:`finetune_objective` is the hook every stage's fine-tuning uses: ``finetune: {distill: {...}}`` in a recipe
distils from the stage context's teacher (the original, unpruned model) into the model being fine-tuned.

Example:
    >>> import torch
    >>> from modelpress.config import FinetuneConfig, KDConfig
    >>> from modelpress.task import ClassificationTask
    >>> from modelpress.train import fit
    >>> x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    >>> task = ClassificationTask("toy", x, y, x, y, num_classes=2)
    >>> teacher = torch.nn.Linear(4, 2); student = torch.nn.Linear(4, 2)
    >>> objective = DistillObjective(student, TeacherSet([teacher]), KDConfig(temperature=2), task)
    >>> float(objective(student, (x,), y)) > 0
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modelpress.config import FeaturePair, FinetuneConfig, KDConfig, KDLoss
from modelpress.distill.features import FeatureTaps, make_adapter
from modelpress.distill.losses import attention_transfer_loss, embedding_loss, hint_loss, soft_kl
from modelpress.distill.teachers import TeacherSet, check_output_shapes
from modelpress.errors import ConfigError
from modelpress.task import Task
from modelpress.train.loop import Objective

__all__ = ["DistillObjective", "FeaturePair", "StudentWithAdapters", "finetune_objective"]


class DistillObjective(nn.Module):
    """``(model, inputs, targets) -> loss`` distilling ``teachers`` into ``student`` (see the module docstring).

    ``model`` passed at call time must be ``student`` or a :class:`StudentWithAdapters` around it.

    Example:
        >>> import torch
        >>> from modelpress.task import ClassificationTask
        >>> x = torch.randn(8, 1, 6, 6); task = ClassificationTask("toy", x, torch.zeros(8), x, torch.zeros(8), 2)
        >>> from torch.nn import Conv2d, Flatten, Linear, Sequential
        >>> net = lambda w: Sequential(Conv2d(1, w, 3), Flatten(), Linear(w * 16, 2))
        >>> student = net(2)
        >>> objective = DistillObjective(student, TeacherSet([net(4)]), KDConfig(), task,
        ...                              hints=[FeaturePair(student="0", teacher="0")])
        >>> objective.adapters[0]
        Conv2d(2, 4, kernel_size=(1, 1), stride=(1, 1))
    """

    def __init__(self, student: nn.Module, teachers: TeacherSet, kd: KDConfig, task: Task,
                 hints: Sequence[FeaturePair] = (), attention: Sequence[FeaturePair] = ()) -> None:
        super().__init__()
        check_output_shapes(student, teachers.models, task)
        self.teachers, self.kd, self.task = teachers, kd, task
        self.hints, self.attention = tuple(hints), tuple(attention)
        pairs = self.hints + self.attention
        self._student_taps = FeatureTaps(student, [p.student for p in pairs], "student") if pairs else None
        self.adapters = nn.ModuleList()
        try:
            self._teacher_taps = (FeatureTaps(teachers.models[0], [p.teacher for p in pairs], "teacher")
                                  if pairs else None)
            if self._student_taps is not None and self._teacher_taps is not None:
                self._probe(student, task, self._student_taps, self._teacher_taps)
        except BaseException:
            self.remove_hooks()  # a rejected objective leaves no hooks behind on the student or the teacher
            raise

    def _probe(self, student: nn.Module, task: Task, student_taps: FeatureTaps, teacher_taps: FeatureTaps) -> None:
        # one pass on two inputs: adapter sizes come from the real feature shapes, and bad pairs fail before training
        inputs = task.example_inputs(2)
        with torch.no_grad():
            was_training = student.training
            student.eval()
            student(*inputs)
            student.train(was_training)
            self.teachers.outputs(inputs)
            s_features, t_features = student_taps.features, teacher_taps.features
            for i, pair in enumerate(self.hints):
                self.adapters.append(make_adapter(s_features[pair.student].shape,
                                                  t_features[pair.teacher].shape, f"hints[{i}]"))
            for pair in self.attention:
                attention_transfer_loss(s_features[pair.student], t_features[pair.teacher])

    def distance(self, outputs: Tensor, teacher_outputs: Sequence[Tensor]) -> Tensor:
        """The output distillation term ``D`` of a batch (student ``outputs`` ``[B, C]`` or ``[B, D]``)."""
        if self.kd.loss is KDLoss.kl:
            return soft_kl(outputs, self.teachers.soft_targets(teacher_outputs, self.kd.temperature),
                           self.kd.temperature)
        return embedding_loss(outputs, self.teachers.mean_output(teacher_outputs), self.kd.loss.value)

    def forward(self, model: nn.Module, inputs: tuple[Tensor, ...], targets: Tensor) -> Tensor:  # type: ignore[override]
        """The scalar loss of one batch."""
        for taps in (self._student_taps, self._teacher_taps):
            if taps is not None:
                taps.attach()  # again, if a finished training run removed them
        teacher_outputs = self.teachers.outputs(inputs)  # teachers first: their taps fill before the student's
        teacher_features = dict(self._teacher_taps.features) if self._teacher_taps else {}
        outputs = model(*inputs)
        loss = self.kd.alpha * self.distance(outputs, teacher_outputs)
        if self.kd.alpha < 1:
            loss = loss + (1 - self.kd.alpha) * self.task.loss(outputs, targets)
        if self._student_taps is not None:
            features = self._student_taps.features
            for pair, adapter in zip(self.hints, self.adapters, strict=True):
                loss = loss + pair.weight * hint_loss(adapter(features[pair.student]), teacher_features[pair.teacher])
            for pair in self.attention:
                loss = loss + pair.weight * attention_transfer_loss(features[pair.student],
                                                                    teacher_features[pair.teacher])
        return loss

    def remove_hooks(self) -> None:
        """Detach the feature hooks from student and teacher (idempotent); the stage and
        :func:`modelpress.recipe.run_stage` call it when training ends. The next call of the objective attaches them
        again."""
        for taps in (getattr(self, "_student_taps", None), getattr(self, "_teacher_taps", None)):
            if taps is not None:
                taps.remove()


class StudentWithAdapters(nn.Module):
    """The student and an objective's adapters in one module, so one optimizer trains both; calls the student.

    Example:
        >>> import torch
        >>> wrapped = StudentWithAdapters(torch.nn.Linear(2, 2), nn.ModuleList([torch.nn.Linear(2, 3)]))
        >>> sum(p.numel() for p in wrapped.parameters()), wrapped(torch.zeros(1, 2)).shape
        (15, torch.Size([1, 2]))
    """

    def __init__(self, student: nn.Module, adapters: nn.ModuleList) -> None:
        super().__init__()
        self.student = student
        self.adapters = adapters

    def forward(self, *inputs: Tensor) -> Tensor:
        """The student's output."""
        return self.student(*inputs)


def finetune_objective(finetune: FinetuneConfig, teacher: nn.Module | None, model: nn.Module,
                       task: Task) -> Objective | None:
    """The objective a stage's fine-tuning uses: KD from ``teacher`` if ``finetune.distill`` is set (with
    ``finetune.hints``, if any), else None.

    Example:
        >>> import torch
        >>> from modelpress.task import ClassificationTask
        >>> task = ClassificationTask("toy", torch.randn(8, 4), torch.zeros(8), torch.randn(4, 4), torch.zeros(4), 2)
        >>> finetune_objective(FinetuneConfig(), None, torch.nn.Linear(4, 2), task) is None
        True
        >>> type(finetune_objective(FinetuneConfig(distill={}), torch.nn.Linear(4, 2), torch.nn.Linear(4, 2), task))
        <class 'modelpress.distill.objective.DistillObjective'>
    """
    if finetune.distill is None:
        return None
    if teacher is None:
        raise ConfigError("finetune.distill", "a teacher (run() keeps the original model as one)", "<none>",
                          "run the stage through modelpress.run, or set ctx.teacher")
    objective = DistillObjective(model, TeacherSet([teacher]), finetune.distill, task, hints=finetune.hints)
    for i, adapter in enumerate(objective.adapters):
        if any(True for _ in adapter.parameters()):  # fine-tuning optimizes the model's parameters only
            objective.remove_hooks()
            pair = finetune.hints[i]
            raise ConfigError(f"finetune.hints[{i}]", f"a layer {pair.student!r} whose output is as wide as the "
                              f"teacher's {pair.teacher!r} (fine-tuning trains no adapter)", f"<{adapter}>",
                              "pair layers of equal width, or use the distill stage, whose adapters train")
    return objective
