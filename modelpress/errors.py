"""The exceptions modelpress raises on purpose.

Every message follows one shape so a user can act on it without reading code:
``<where>: expected <what>, got <what arrived>. Fix: <how>``. The CLI prints the message on one line and exits 2.

Example:
    >>> from modelpress.errors import ConfigError
    >>> str(ConfigError("stages[0].sparsity", "a number in [0, 1)", 1.5, "lower the sparsity"))
    'stages[0].sparsity: expected a number in [0, 1), got 1.5. Fix: lower the sparsity'
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "ExportError",
    "FormatError",
    "ModelpressError",
    "TaskError",
    "UnsupportedLayerError",
]


class ModelpressError(Exception):
    """Base class: an error the user can fix, reported without a traceback by the CLI.

    Built either from a ready message or from the four parts of the house format.

    Example:
        >>> str(ModelpressError("model 'zoo:x'", "a known zoo name", "x", "use zoo:lenet300"))
        "model 'zoo:x': expected a known zoo name, got 'x'. Fix: use zoo:lenet300"
    """

    def __init__(self, where: str, expected: str | None = None, got: Any = None, fix: str | None = None) -> None:
        if expected is None:
            message = where
        else:
            shown = got if isinstance(got, str) and got.startswith("<") else repr(got)
            if isinstance(got, float | int) and not isinstance(got, bool):
                shown = f"{got:g}" if isinstance(got, float) else str(got)
            message = f"{where}: expected {expected}, got {shown}"
            if fix:
                message += f". Fix: {fix}"
        super().__init__(message)


class ConfigError(ModelpressError):
    """A recipe, stage config or command-line value is invalid."""


class TaskError(ModelpressError):
    """A task cannot be built, or a model does not run on the task's inputs."""


class UnsupportedLayerError(ModelpressError):
    """A technique cannot handle a layer; handlers catch it and record the skip with its reason."""


class FormatError(ModelpressError):
    """A compressed file is malformed, truncated, corrupted or of an unknown version."""


class ExportError(ModelpressError):
    """Export to another runtime (ONNX) failed or does not match the PyTorch model."""
