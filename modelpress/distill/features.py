"""Intermediate features for hint and attention distillation: forward hooks on layers chosen by name, and adapters.

:class:`FeatureTaps` records the outputs of named submodules on every forward pass (a tuple output keeps its first
element, e.g. a transformer layer's hidden states). A name that is not a submodule is rejected with the closest
names. :func:`make_adapter` builds the learned map from a student feature to the teacher's width (FitNets'
regressor): a 1x1 convolution for ``[B, C, H, W]`` maps, a Linear on the last dimension otherwise, nothing when the
shapes already agree.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    >>> with FeatureTaps(model, ["0"]) as taps:
    ...     _ = model(torch.randn(2, 4))
    ...     taps.features["0"].shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from torch import Tensor, nn

from modelpress.errors import ConfigError

__all__ = ["FeatureTaps", "make_adapter", "resolve_layer"]


def resolve_layer(model: nn.Module, name: str, role: str) -> nn.Module:
    """The submodule ``name`` of ``model``, or a ConfigError naming the closest existing layer names.

    Example:
        >>> import torch
        >>> resolve_layer(torch.nn.Sequential(torch.nn.Linear(2, 2)), "1", "student")
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: distill: student layer: expected the name of a submodule of the student \
(e.g. 0), got '1'. Fix: use one of the names model.named_modules() lists
    """
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(name, names, n=3) or names[:3]
    raise ConfigError(f"distill: {role} layer", f"the name of a submodule of the {role} (e.g. {', '.join(close)})",
                      name, "use one of the names model.named_modules() lists")


class FeatureTaps:
    """Forward hooks that keep the latest output of each named layer in ``features`` (a context manager).

    Example:
        >>> import torch
        >>> taps = FeatureTaps(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), ["0", "2"], "teacher")
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: distill: teacher layer: expected the name of a submodule of the teacher (e.g. \
0, 1), got '2'. Fix: use one of the names model.named_modules() lists
    """

    def __init__(self, model: nn.Module, names: Sequence[str], role: str = "model") -> None:
        self.features: dict[str, Tensor] = {}
        self._handles: list[Any] = []
        self._layers = {name: resolve_layer(model, name, role) for name in names}  # validate all before hooking any
        self.attach()

    def _keeper(self, name: str) -> Any:
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            # tuple outputs (transformer layers return (hidden, ...)): the first element is the feature
            self.features[name] = output[0] if isinstance(output, tuple | list) else output

        return hook

    @property
    def attached(self) -> bool:
        """Whether the hooks are registered."""
        return bool(self._handles)

    def attach(self) -> None:
        """(Re-)register the hooks (idempotent): a removed tap can be used again."""
        if not self._handles:
            self._handles = [layer.register_forward_hook(self._keeper(name)) for name, layer in self._layers.items()]

    def remove(self) -> None:
        """Remove the hooks and forget the last features (idempotent).

        Example:
            >>> import torch
            >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2))
            >>> taps = FeatureTaps(model, ["0"])
            >>> taps.remove(); len(model[0]._forward_hooks), taps.features
            (0, {})
        """
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.features = {}

    def __enter__(self) -> FeatureTaps:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.remove()


def make_adapter(student_shape: Sequence[int], teacher_shape: Sequence[int], where: str) -> nn.Module:
    """The learned map from a student feature's shape to a teacher feature's (batch dimension included).

    ``[B, Cs, H, W]`` → ``[B, Ct, H, W]``: 1x1 conv; ``[..., Ds]`` → ``[..., Dt]``: Linear; equal: Identity.
    Anything else (e.g. different spatial sizes) is a ConfigError.

    Example:
        >>> make_adapter([8, 16, 4, 4], [8, 50, 4, 4], "hint")
        Conv2d(16, 50, kernel_size=(1, 1), stride=(1, 1))
        >>> make_adapter([8, 32], [8, 500], "hint")
        Linear(in_features=32, out_features=500, bias=True)
    """
    s, t = list(student_shape), list(teacher_shape)
    if s == t:
        return nn.Identity()
    if len(s) == len(t) == 4 and s[0] == t[0] and s[2:] == t[2:]:
        return nn.Conv2d(s[1], t[1], kernel_size=1)
    if len(s) == len(t) and s[:-1] == t[:-1]:
        return nn.Linear(s[-1], t[-1])
    raise ConfigError(f"{where}: feature shapes", f"a student feature that differs from the teacher's {t} in "
                      "channels (dim 1 of [B, C, H, W]) or width (last dim) only", f"<{s}>",
                      "pair layers at the same spatial resolution / sequence length")
