"""Typed, frozen configuration objects and the translation of validation failures into located messages.

Every stage config subclasses :class:`StageConfig`: pydantic with ``frozen=True`` and ``extra="forbid"``, so an
unknown key or a wrong type is rejected before anything runs. :func:`validation_message` turns pydantic's errors into
the house format, with the path of the offending value, e.g. ``stages[2].sparsity: expected a number in [0, 1), got
1.5``.

Example:
    >>> from pydantic import Field
    >>> class Demo(StageConfig, tag="demo-config"):
    ...     sparsity: float = Field(0.5, ge=0, lt=1)
    >>> Demo(sparsity=0.9).sparsity
    0.9
    >>> parse_config(Demo, {"sparsity": 1.5}, where="stages[2]")
    Traceback (most recent call last):
    ...
    modelpress.errors.ConfigError: stages[2].sparsity: expected a number in [0, 1), got 1.5
"""

from __future__ import annotations

from contextvars import ContextVar
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from modelpress.errors import ConfigError

__all__ = [
    "AugmentConfig", "FeaturePair", "FinetuneConfig", "Frozen", "KDConfig", "KDLoss", "StageConfig", "parse_config",
    "validation_message",
]

C = TypeVar("C", bound=BaseModel)


class Frozen(BaseModel):
    """Base of every modelpress config: immutable, unknown keys forbidden, enums stored as their values."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False, validate_default=True)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict (enums as values) that :func:`parse_config` turns back into an equal object."""
        return self.model_dump(mode="json")


class KDLoss(StrEnum):
    """How a student's outputs are compared with its teacher's (see :mod:`modelpress.distill.losses`)."""

    kl = "kl"  # logits: KL(teacher || student) of softmax(z / T), times T^2 (Hinton et al.)
    mse = "mse"  # outputs (e.g. sentence embeddings): mean squared difference
    cosine = "cosine"  # outputs: mean 1 - cosine similarity


class KDConfig(Frozen):
    """Knowledge-distillation loss settings: ``alpha * distillation + (1 - alpha) * task loss``.

    Example:
        >>> KDConfig(temperature=2).loss.value, KDConfig().alpha
        ('kl', 0.9)
    """

    loss: KDLoss = KDLoss.kl
    temperature: float = Field(4.0, gt=0, le=100, description="softmax temperature T (kl only)")
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the distillation term; 1 - alpha: the task loss")


class FeaturePair(Frozen):
    """A student layer and a teacher layer (names as ``named_modules()`` gives them) whose outputs are matched.

    Example:
        >>> FeaturePair(student="conv2", teacher="conv2", weight=0.5).weight
        0.5
    """

    student: str = Field(min_length=1)
    teacher: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, le=1e6)


class AugmentConfig(Frozen):
    """How training batches are perturbed (a transfer set, :mod:`modelpress.distill.transfer`): ``affine`` (images)
    or ``tokens`` (token-id batches).

    Example:
        >>> AugmentConfig(kind="tokens").mask
        0.1
    """

    kind: Literal["affine", "tokens"]
    shift: float = Field(2.0, ge=0, le=16, description="affine: max shift in pixels, each axis")
    degrees: float = Field(12.0, ge=0, le=180, description="affine: max rotation in degrees")
    scale: float = Field(0.1, ge=0, lt=1, description="affine: max relative zoom in or out")
    crop: float = Field(0.5, gt=0, le=1, description="tokens: shortest kept span, as a fraction of the sentence")
    mask: float = Field(0.1, ge=0, lt=1, description="tokens: probability of replacing a token by [MASK]")
    mask_id: int = Field(103, ge=0, description="tokens: the [MASK] token id (103 in BERT's vocabulary)")
    probability: float = Field(1.0, gt=0, le=1, description="share of the examples perturbed (the rest unchanged)")
    mixup: float = Field(0.0, ge=0, le=10, description="affine: after the affine perturbation, blend each image with "
                         "another of its batch by a Beta(mixup, mixup) weight, its label likewise (Zhang et al., "
                         "2018); the teacher labels the blend. 0: off")


class FinetuneConfig(Frozen):
    """How a stage fine-tunes the model after it is applied (``None`` on a stage means: no fine-tuning).

    Example:
        >>> FinetuneConfig(epochs=2).lr
        0.001
    """

    epochs: float = Field(1, gt=0, le=1000, description="passes over the task's training data; fractions allowed")
    lr: float = Field(1e-3, gt=0, le=10, description="learning rate of the optimizer")
    batch_size: int = Field(64, ge=1, le=65536)
    optimizer: str = Field("adam", pattern="^(adam|adamw|sgd)$")
    weight_decay: float = Field(0.0, ge=0, le=1)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    schedule: str = Field("cosine", pattern="^(constant|cosine)$", description="learning-rate schedule over the run")
    distill: KDConfig | None = Field(None, description="distil from the stage context's teacher (by default the "
                                     "original, unpruned model) while fine-tuning; see modelpress.distill")
    hints: tuple[FeaturePair, ...] = Field((), description="with distill: FitNets hints, per-layer feature MSE "
                                           "between a layer of the model and a layer of the teacher (a learned "
                                           "adapter where widths differ)")
    augment: AugmentConfig | None = Field(None, description="with distill: perturb the training batches (a "
                                          "transfer set) that the teacher labels on every step")

    @model_validator(mode="after")
    def _teacher_terms_need_distill(self) -> FinetuneConfig:
        if self.hints and self.distill is None:
            raise ValueError("expected a distill section with hints (hints are a distillation term); add "
                             "distill: {loss: cosine, alpha: 1.0} or drop hints")
        if self.augment is not None and self.distill is None:
            # without a teacher the targets are the task's, computed on the unperturbed examples
            raise ValueError("expected a distill section with augment (the teacher labels the perturbed batches; "
                             "the task's own targets belong to the unperturbed examples); add distill: {...} or "
                             "drop augment")
        return self

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`Frozen.to_dict`, without ``distill``, ``hints`` and ``augment`` when they are off (so dicts, and
        the zoo's weight-cache keys built from them, are the same as before the fields existed)."""
        data = super().to_dict()
        if self.distill is None:
            data.pop("distill")
        if not self.hints:
            data.pop("hints")
        if self.augment is None:
            data.pop("augment")
        return data


# Set while pydantic validates through ``model_validate`` (the recipe parser's path), which calls ``__init__``.
_PARSING: ContextVar[bool] = ContextVar("modelpress_config_parsing", default=False)


class StageConfig(Frozen):
    """Base of stage configs. A subclass names its recipe tag: ``class Cast(StageConfig, tag="cast")``.

    Every stage may fine-tune afterwards (``finetune``) and may be given a display ``name`` for reports.
    Built directly in Python, a bad value raises :class:`ConfigError` in the house format; ``model_validate`` (the
    recipe parser's path) still raises pydantic's ValidationError, which the parser turns into messages located in
    the recipe (``stages[2].sparsity: …``).

    Example:
        >>> class Demo(StageConfig, tag="demo-base"):
        ...     rate: float = Field(0.5, ge=0, le=1)
        >>> Demo(rate=2)
        Traceback (most recent call last):
        ...
        modelpress.errors.ConfigError: rate: expected a number in [0, 1], got 2
    """

    tag: ClassVar[str] = ""
    name: str | None = Field(None, description="label in the History and reports; defaults to the tag")
    finetune: FinetuneConfig | None = None

    def __init_subclass__(cls, tag: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if tag:
            cls.tag = tag

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            if _PARSING.get():
                raise
            raise ConfigError(validation_message(type(self), e)) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Pydantic's ``model_validate``, raising ValidationError (for located messages) rather than ConfigError."""
        token = _PARSING.set(True)
        try:
            return super().model_validate(obj, *args, **kwargs)
        finally:
            _PARSING.reset(token)

    @property
    def label(self) -> str:
        """The stage's display name."""
        return self.name or self.tag


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds(ctx: dict[str, Any] | None, field_info: Any) -> str | None:
    """Describe the numeric interval a field accepts, e.g. ``[0, 1)``, from its declared constraints."""
    lo = hi = None
    lo_closed = hi_closed = True
    for meta in getattr(field_info, "metadata", []) or []:
        for attr, is_lo, closed in (("ge", True, True), ("gt", True, False), ("le", False, True), ("lt", False, False)):
            value = getattr(meta, attr, None)
            if value is not None:
                if is_lo:
                    lo, lo_closed = value, closed
                else:
                    hi, hi_closed = value, closed
    if lo is None and hi is None:
        return None
    left = ("[" if lo_closed else "(") + (_number(lo) if lo is not None else "-inf")
    right = (_number(hi) if hi is not None else "inf") + ("]" if hi_closed else ")")
    return f"{left}, {right}"


def _model_in(annotation: Any, default: Any) -> Any:
    """The pydantic model class inside an annotation such as ``FinetuneConfig | None`` (else ``default``)."""
    candidates = getattr(annotation, "__args__", (annotation,))
    return next((a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)), default)


def _field_info(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """Follow a pydantic error location through nested models to the FieldInfo it points at (or None)."""
    current: Any = model
    info = None
    for part in loc:
        if isinstance(part, int):  # an index into a list/tuple of nested configs: stay on the item's model
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        info = fields[part]
        annotation = info.annotation
        current = _model_in(annotation, None)
    return info


def _format_loc(where: str, loc: tuple[Any, ...]) -> str:
    path = where
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _one_message(model: type[BaseModel], where: str, err: ErrorDetails) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    got = err.get("input")
    info = _field_info(model, loc)
    path = _format_loc(where, loc)
    if kind == "extra_forbidden":
        known = ", ".join(sorted(_known_keys(model, loc[:-1])))
        return f"{path}: unknown key. Fix: remove it or use one of: {known}"
    if kind == "missing":
        return f"{path}: required key is missing. Fix: add it"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bounds = _bounds(err.get("ctx"), info)
        return f"{path}: expected a number in {bounds}, got {got!r}"
    if kind in {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"}:
        expected = "an integer" if kind.startswith("int") else "a number"
        bounds = _bounds(err.get("ctx"), info) if info is not None else None
        return f"{path}: expected {expected}{' in ' + bounds if bounds else ''}, got {got!r}"
    if kind in {"enum", "literal_error", "string_pattern_mismatch"}:
        options = (err.get("ctx") or {}).get("expected") or (err.get("ctx") or {}).get("pattern", "")
        options = str(options).strip("^$()").replace("|", ", ")
        return f"{path}: expected one of {options}, got {got!r}"
    return f"{path}: {err['msg'].lower()}, got {got!r}"


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", {})
        if isinstance(part, str) and part in fields:
            annotation = fields[part].annotation
            current = _model_in(annotation, current)
    return list(getattr(current, "model_fields", {}))


def validation_message(model: type[BaseModel], error: ValidationError, where: str = "") -> str:
    """Render a pydantic ValidationError as one or more ``path: expected …, got …`` lines (one per failure).

    Example:
        >>> try:
        ...     FinetuneConfig(epochs=-1)
        ... except ValidationError as e:
        ...     print(validation_message(FinetuneConfig, e, "stages[0].finetune"))
        stages[0].finetune.epochs: expected a number in (0, 1000], got -1
    """
    return "\n".join(_one_message(model, where, err) for err in error.errors())


def parse_config(model: type[C], data: Any, where: str = "") -> C:
    """Validate ``data`` (a mapping) into ``model``, raising :class:`ConfigError` with located messages.

    Example:
        >>> parse_config(FinetuneConfig, {"epochs": 2}).epochs
        2.0
    """
    if not isinstance(data, dict):
        raise ConfigError(where or model.__name__, "a mapping of keys to values", f"<{type(data).__name__}>",
                          "write the section as `key: value` lines")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(validation_message(model, e, where)) from None
