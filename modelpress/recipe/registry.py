"""The stage registries: recipe tag → config class, config class → handler, and cross-stage rules.

A technique registers itself with :func:`stage`:

    @stage(CastConfig)
    def apply_cast(model, config, ctx): ...

Example:
    >>> from modelpress.recipe.builtin import load_builtin_stages
    >>> load_builtin_stages()
    >>> "cast" in STAGE_CONFIGS
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from modelpress.config import StageConfig
from modelpress.history import Skip
from modelpress.registry import Registry
from modelpress.task import Task
from modelpress.train.callbacks import Callback
from modelpress.train.loop import Objective

__all__ = ["HANDLERS", "RULES", "STAGE_CONFIGS", "StageContext", "apply_stage", "rule", "stage"]


@dataclass
class StageContext:
    """What a handler may use and leave behind.

    ``callbacks`` persist across stages: e.g. a pruning stage adds a mask keeper so every later fine-tuning keeps
    its zeros. ``teacher`` is a frozen copy of the original model (the default for distillation). Handlers append to
    ``skipped`` (layers they could not handle, with the reason) and ``notes`` (figures for the report).
    """

    task: Task | None = None
    seed: int = 0
    quiet: bool = False
    teacher: nn.Module | None = None
    callbacks: list[Callback] = field(default_factory=list)
    objective: Objective | None = None
    skipped: list[Skip] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def require_task(self, what: str) -> Task:
        """The task, or a clear error for a stage that needs data."""
        if self.task is None:
            from modelpress.errors import ConfigError

            raise ConfigError(what, "a task (data to calibrate or train on)", "<none>", "pass task= to run or apply")
        return self.task


Handler = Callable[[nn.Module, Any, StageContext], nn.Module]
C = TypeVar("C", bound=type[StageConfig])

STAGE_CONFIGS: Registry[str, type[StageConfig]] = Registry("stage type")
HANDLERS: Registry[type, Handler] = Registry("stage handler")
# A rule sees all stage configs of a recipe and returns error messages (empty: fine).
RULES: list[Callable[[Sequence[StageConfig]], list[str]]] = []


def stage(config_cls: type[StageConfig]) -> Callable[[Handler], Handler]:
    """Register ``config_cls`` under its tag and the decorated function as its handler."""
    STAGE_CONFIGS.register(config_cls.tag)(config_cls)
    return HANDLERS.register(config_cls)


def rule(fn: Callable[[Sequence[StageConfig]], list[str]]) -> Callable[[Sequence[StageConfig]], list[str]]:
    """Register a cross-stage validation rule."""
    RULES.append(fn)
    return fn


def apply_stage(model: nn.Module, config: StageConfig, ctx: StageContext | None = None) -> nn.Module:
    """Apply one stage config to ``model`` through its registered handler (no fine-tuning, no measuring).

    Example:
        >>> import torch
        >>> from modelpress.quantize.cast import CastConfig
        >>> model = apply_stage(torch.nn.Linear(2, 2), CastConfig(dtype="bfloat16"))
        >>> model.weight.dtype
        torch.bfloat16
    """
    from modelpress.recipe.builtin import load_builtin_stages

    load_builtin_stages()
    handler = HANDLERS.get(type(config))
    return handler(model, config, ctx or StageContext())
