"""Built-in tasks by name, and resolution of a task spec (a name or ``package.module:factory``).

Example:
    >>> resolve_task("digits").name
    'digits'
"""

from __future__ import annotations

from collections.abc import Callable

from modelpress.errors import TaskError
from modelpress.imports import import_object
from modelpress.registry import Registry
from modelpress.task import Task

__all__ = ["TASKS", "resolve_task"]

TASKS: Registry[str, Callable[[], Task]] = Registry("task")


@TASKS.register("mnist5k")
def _mnist5k() -> Task:
    from modelpress.tasks.mnist import mnist5k

    return mnist5k()


@TASKS.register("digits")
def _digits() -> Task:
    from modelpress.tasks.mnist import digits

    return digits()


@TASKS.register("sentences")
def _sentences() -> Task:
    from modelpress.tasks.sentences import SentencesTask

    return SentencesTask()


@TASKS.register("sentences-large")
def _sentences_large() -> Task:
    # the same 581 held-out sentences as "sentences", with every training-hash sentence of the corpus (5,226) to
    # distil on: figures are comparable with "sentences", only the training part is larger
    from modelpress.tasks.sentences import SentencesTask

    task = SentencesTask(extra_train=None)
    task.name = "sentences-large"
    return task


@TASKS.register("sentences-xl")
def _sentences_xl() -> Task:
    # sentences-large plus the standard library's other text (comments, docstring sentences with code in them, the
    # reference manual: 19,027 sentences, none in the evaluated corpus) to distil on; the same 581 held-out;
    # batches bucketed by length (their lengths vary more than the corpus's, so random batches are mostly padding)
    from modelpress.tasks.sentences import SentencesTask

    task = SentencesTask(extra_train=None, transfer=None, bucket=True)
    task.name = "sentences-xl"
    return task


def resolve_task(spec: str | Task) -> Task:
    """A Task from a built-in name or ``package.module:factory`` (the factory is called with no arguments)."""
    if isinstance(spec, Task):
        return spec
    if ":" in spec:
        task = import_object(spec, what="task factory")()
        if not isinstance(task, Task):
            raise TaskError(f"task {spec!r}", "a factory returning a modelpress.Task", f"<{type(task).__name__}>",
                            "subclass modelpress.Task (see modelpress.task)")
        return task
    if spec not in TASKS:
        known = ", ".join(sorted(TASKS))
        raise TaskError("task", f"one of {known} or package.module:factory", spec, "pick a built-in task name")
    return TASKS.get(spec)()
