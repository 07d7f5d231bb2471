"""Recipes: an ordered list of stage configs plus run settings, from YAML or Python, validated before anything runs.

Unknown keys, wrong types and out-of-range values are rejected with the path (and the YAML line) of the value::

    recipes/x.yaml:7: stages[2].sparsity: expected a number in [0, 1), got 1.5

Example:
    >>> recipe = parse_recipe({"name": "half", "stages": [{"type": "cast", "dtype": "bfloat16"}]})
    >>> [s.tag for s in recipe.stages], recipe.measure.batch_size
    (['cast'], 32)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from modelpress.config import Frozen, StageConfig, parse_config
from modelpress.errors import ConfigError
from modelpress.recipe.builtin import load_builtin_stages
from modelpress.recipe.registry import RULES, STAGE_CONFIGS

__all__ = ["MeasureConfig", "Recipe", "load_recipe", "parse_recipe"]


class MeasureConfig(Frozen):
    """How each History row measures latency (the batch and thread count are reported with the figure)."""

    batch_size: int = Field(32, ge=1, le=4096)
    threads: int | None = Field(None, ge=1, le=256, description="None: torch's default thread count")
    runs: int = Field(20, ge=1, le=10000)
    warmup: int = Field(3, ge=0, le=1000)


class Recipe(Frozen):
    """A validated recipe. ``stages`` hold typed, frozen stage configs in order."""

    name: str = "recipe"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    measure: MeasureConfig = MeasureConfig()
    stages: tuple[StageConfig, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data (each stage with its ``type`` tag), as :func:`parse_recipe` accepts it."""
        return {"name": self.name, "seed": self.seed, "measure": self.measure.to_dict(),
                "stages": [{"type": s.tag, **s.to_dict()} for s in self.stages]}


_TOP_KEYS = ("name", "seed", "measure", "stages")


def _line_index(text: str) -> dict[str, int]:
    """Map each value path (``stages[2].sparsity``) of a YAML text to its 1-based line number."""
    index: dict[str, int] = {}

    def walk(node: Any, path: str) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = f"{path}.{key_node.value}" if path else str(key_node.value)
                index[child] = key_node.start_mark.line + 1
                walk(value_node, child)
                index[child] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index
    if root is not None:
        walk(root, "")
    return index


def _locate(message: str, source: str | None, lines: dict[str, int]) -> str:
    """Prefix each message line with ``file:line:`` of the deepest known path it names."""
    if source is None:
        return message
    out = []
    for line in message.splitlines():
        path = line.split(":", 1)[0]
        while path and path not in lines:
            path = path.rsplit(".", 1)[0] if "." in path else (path.rsplit("[", 1)[0] if "[" in path else "")
        out.append(f"{source}:{lines[path]}: {line}" if path in lines else f"{source}: {line}")
    return "\n".join(out)


def parse_recipe(data: Any, source: str | None = None, lines: dict[str, int] | None = None) -> Recipe:
    """Validate plain data (as loaded from YAML) into a :class:`Recipe`; every problem is reported at once."""
    load_builtin_stages()
    lines = lines or {}
    if not isinstance(data, dict):
        raise ConfigError(_locate(f"recipe: expected a mapping with keys {', '.join(_TOP_KEYS)}, got "
                                  f"{type(data).__name__}. Fix: start the file with `stages:`", source, lines))
    problems: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown key. Fix: remove it or use one of: {', '.join(_TOP_KEYS)}")
    raw_stages = data.get("stages", [])
    if not isinstance(raw_stages, list):
        problems.append(f"stages: expected a list of stages, got {type(raw_stages).__name__}. "
                        "Fix: write each stage as a `- type: ...` item")
        raw_stages = []
    stages: list[StageConfig] = []
    for i, raw in enumerate(raw_stages):
        where = f"stages[{i}]"
        if not isinstance(raw, dict) or "type" not in raw:
            problems.append(f"{where}: expected a mapping with a `type` key, got {raw!r}. "
                            f"Fix: start the stage with `type:` (one of {', '.join(sorted(STAGE_CONFIGS))})")
            continue
        body = {k: v for k, v in raw.items() if k != "type"}
        try:
            config_cls = STAGE_CONFIGS.get(raw["type"])
            stages.append(parse_config(config_cls, body, where=where))
        except ConfigError as e:
            message = str(e)
            if message.startswith("stage type"):
                message = f"{where}.type: {message[len('stage type: '):]}"
            problems.extend(message.splitlines())
    header = {k: data[k] for k in ("name", "seed", "measure") if k in data}
    try:
        recipe = parse_config(Recipe, header)
    except ConfigError as e:
        problems.extend(str(e).splitlines())
        recipe = None
    for check in RULES:
        problems.extend(check(stages))
    if problems or recipe is None:
        raise ConfigError(_locate("\n".join(problems), source, lines))
    return recipe.model_copy(update={"stages": tuple(stages)})


def load_recipe(path: str | Path | Recipe | Sequence[StageConfig]) -> Recipe:
    """A Recipe from a YAML file path, or from a Recipe or a list of stage configs given in Python.

    Example:
        >>> from modelpress.quantize.cast import CastConfig
        >>> load_recipe([CastConfig(dtype="float16")]).stages[0].dtype.value
        'float16'
    """
    if isinstance(path, Recipe):
        return path
    if isinstance(path, Sequence) and not isinstance(path, str):
        recipe = parse_recipe({"stages": []})
        problems = [msg for check in RULES for msg in check(list(path))]
        if problems:
            raise ConfigError("\n".join(problems))
        return recipe.model_copy(update={"stages": tuple(path)})
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"recipe {str(file)!r}", "a YAML file", "<no such file>",
                          "check the path (examples are in recipes/)")
    text = file.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: expected valid YAML, got a syntax error ({problem}). "
                          "Fix: check indentation and colons on that line") from None
    return parse_recipe(data, source=str(file), lines=_line_index(text))
