"""``run(recipe, model, task)``: apply the stages in order, fine-tune where a stage asks, measure after each.

Every History row is measured the same way: the bytes of the real compressed file the model packs into,
parameters, nonzeros, FLOPs (one example), median latency (the recipe's batch and threads), metrics on the task's
held-out split, and the stage's wall time (apply + fine-tune, measurement excluded).

Example:
    >>> import torch
    >>> from modelpress.tasks.mnist import digits
    >>> from modelpress.quantize.cast import CastConfig
    >>> from modelpress.zoo.models import LeNet300
    >>> torch.manual_seed(0) and None
    >>> task = digits()
    >>> result = run([CastConfig(dtype="bfloat16")], LeNet300(in_shape=(1, 8, 8)), task, quiet=True,
    ...              source="modelpress.zoo.models:LeNet300")
    >>> [row.stage for row in result.history.rows]
    ['original', 'cast']
    >>> result.history.rows[1].file_bytes < result.history.rows[0].file_bytes
    True
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from modelpress.analyze.profile import profile_model
from modelpress.config import StageConfig
from modelpress.distill.objective import DistillObjective, finetune_objective
from modelpress.distill.transfer import TransferTask
from modelpress.history import History, HistoryRow
from modelpress.pack import pack
from modelpress.progress import console
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.recipe.schema import MeasureConfig, Recipe, load_recipe
from modelpress.task import Task, check_model_runs
from modelpress.train import fit, seed_everything

__all__ = ["Result", "measure", "run", "run_stage"]


@dataclass
class Result:
    """The compressed model, the History of the run, and the written file (if ``out`` was given)."""

    model: nn.Module
    history: History
    recipe: Recipe
    out: Path | None = None


def measure(model: nn.Module, task: Task, stage: str, settings: MeasureConfig, wall_time_s: float,
            ctx: StageContext | None = None) -> HistoryRow:
    """One History row for ``model`` as it stands now (see the module docstring for what is measured)."""
    inputs = task.example_inputs(settings.batch_size)
    prof = profile_model(model, inputs, threads=settings.threads, runs=settings.runs, warmup=settings.warmup,
                         memory=False, file_bytes=False)
    with tempfile.TemporaryDirectory() as tmp:
        file_bytes = pack(model, Path(tmp) / "stage.mpz")
    latency = prof.latency
    return HistoryRow(
        stage=stage, file_bytes=file_bytes, params=prof.params, nonzeros=prof.nonzeros, flops=prof.flops,
        latency_ms=latency.median_ms if latency else float("nan"),
        metrics=task.evaluate(model), wall_time_s=wall_time_s,
        latency_setup=latency.setup() if latency else {}, layers=prof.layers,
        skipped=list(ctx.skipped) if ctx else [], notes=dict(ctx.notes) if ctx else {},
    )


def run_stage(model: nn.Module, config: StageConfig, ctx: StageContext) -> nn.Module:
    """Apply one stage through its handler, then fine-tune if the config has a ``finetune`` section: the one path
    shared by :func:`run` and the public verbs (``prune_``, ``share_weights_``, …).

    The fine-tuning keeps the context's callbacks (masks, centroids of earlier stages) and uses the handler's
    objective if it set one, else ``finetune.distill`` (distillation from ``ctx.teacher``), else the task's loss.

    Example:
        >>> import torch
        >>> from modelpress.quantize.cast import CastConfig
        >>> run_stage(torch.nn.Linear(2, 2), CastConfig(dtype="float16"), StageContext()).weight.dtype
        torch.float16
    """
    model = apply_stage(model, config, ctx)
    if config.finetune is not None:
        task = ctx.require_task(f"{config.tag}: finetune")
        # a handler's objective wins; else `finetune: {distill: ...}` distils from the original model (ctx.teacher)
        objective = ctx.objective or finetune_objective(config.finetune, ctx.teacher, model, task)
        augment = config.finetune.augment  # perturbed batches, labelled by the teacher on every step
        data = TransferTask(task, augment, where=f"{config.tag}: finetune.augment") if augment is not None else task
        try:
            fit(model, data, config.finetune, callbacks=ctx.callbacks, objective=objective, seed=ctx.seed,
                quiet=ctx.quiet, description=f"fine-tune after {config.label}")
        finally:
            if isinstance(objective, DistillObjective):
                objective.remove_hooks()  # the model and the teacher leave with no feature hooks attached
    return model


def run(recipe: Recipe | str | Path | Sequence[StageConfig], model: nn.Module, task: Task,
        out: str | Path | None = None, quiet: bool = False, source: str | None = None) -> Result:
    """Apply ``recipe`` to ``model`` (in place) on ``task``; write the compressed file to ``out`` if given.

    ``source`` (``package.module:factory``) lets a model modelpress did not load be packed (file sizes need it).
    """
    recipe = load_recipe(recipe)
    if get_provenance(model) is None and source is not None:
        set_provenance(model, Provenance(source={"kind": "factory", "ref": source}))
    check_model_runs(model, task)
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    history = History()
    say = (lambda *_: None) if quiet else console.print
    say(f"[bold]measuring[/] original ({task.name})")
    history.append(measure(model, task, "original", recipe.measure, 0.0))
    callbacks = []
    for index, config in enumerate(recipe.stages):
        seed_everything(recipe.seed + index)
        ctx = StageContext(task=task, seed=recipe.seed + index, quiet=quiet, teacher=teacher, callbacks=callbacks)
        say(f"[bold]stage {index + 1}/{len(recipe.stages)}[/] {config.label}")
        start = time.perf_counter()
        model = run_stage(model, config, ctx)
        elapsed = time.perf_counter() - start
        history.append(measure(model, task, config.label, recipe.measure, elapsed, ctx))
    out_path = None
    if out is not None:
        out_path = Path(out)
        pack(model, out_path)
    return Result(model=model, history=history, recipe=recipe, out=out_path)
