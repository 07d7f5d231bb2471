"""Resolve ``package.module:attribute`` references (user factories for models and tasks).

Example:
    >>> import_object("collections:OrderedDict", what="factory").__name__
    'OrderedDict'
"""

from __future__ import annotations

import importlib
from typing import Any

from modelpress.errors import ConfigError

__all__ = ["import_object"]


def import_object(ref: str, what: str) -> Any:
    """Import ``module:attr`` (dots allowed in attr), with a clear error naming what failed."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(what, "package.module:name", ref, "write the module path, a colon, then the name")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(what, "an importable module", module_name,
                          f"check the spelling or install it ({type(e).__name__}: {e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(what, f"a name defined in module {module_name}", attr, "check the spelling")
        obj = getattr(obj, part)
    return obj
