"""What values a hyperparameter may take, declared once beside its default in the backend's ``Hyper``
dataclass (``lr: float = hyper(1e-2, POSITIVE)``): a range for a number, the choices for a string. The same
declaration checks every value wherever it enters: a ``Hyper`` built in code (``HyperBase``), a setting from
the command line, a backend's declared search space, and a grid point the tuner generates."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """An interval of valid numbers; an infinite bound is always open."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        v = float(value)
        if not math.isfinite(v):
            return False
        above = v > self.low if self.low_open else v >= self.low
        below = v < self.high if self.high_open else v <= self.high
        return above and below

    def bound(self, side: str) -> float:
        """The bound on ``side`` ("low" or "high")."""
        return self.low if side == "low" else self.high

    def __str__(self) -> str:
        left = "(" if self.low_open or math.isinf(self.low) else "["
        right = ")" if self.high_open or math.isinf(self.high) else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"


POSITIVE = Range(0.0, low_open=True)  # learning rates, epsilons, ratios
NON_NEGATIVE = Range(0.0)  # weight decay, clipping norms and damping (0 disables)
UNIT = Range(0.0, 1.0, high_open=True)  # momenta, betas and EMA factors
FRACTION = Range(0.0, 1.0)  # fractions of a budget or of a peak learning rate
COUNT = Range(1.0)  # how many of something (the field's int type keeps it whole)
ANY = Range()  # a number whose sign carries a meaning (e.g. "<= 0 means lr")

Valid = Range | tuple[str, ...]


def hyper(default: Any, valid: Range | tuple[str, ...] | None = None):
    """A field of a ``Hyper`` dataclass: its default and its valid values (a ``Range`` for a number, the
    choices for a string; booleans need neither)."""
    return dataclasses.field(default=default, metadata={"valid": valid} if valid is not None else {})


def valid_values(hyper_cls: type, key: str) -> Valid | None:
    """What ``key`` of ``hyper_cls`` may take, as declared by the class or the nearest one it extends (a
    subclass that only changes a default keeps its parent's declaration); None where nothing is declared."""
    for klass in hyper_cls.__mro__:
        if dataclasses.is_dataclass(klass):
            field = klass.__dataclass_fields__.get(key)
            if field is not None and "valid" in field.metadata:
                return field.metadata["valid"]
    return None


def problem(hyper_cls: type, key: str, value: Any) -> str | None:
    """Why ``value`` is not valid for ``key`` (a sentence that starts with ``key=``), or None."""
    valid = valid_values(hyper_cls, key)
    if isinstance(valid, Range) and not isinstance(value, bool) and isinstance(value, (int, float)):
        return None if value in valid else f"{key}={value:g} is outside its valid range {valid}"
    if isinstance(valid, tuple) and value not in valid:
        return f"{key}={value!r} is not one of: {', '.join(valid)}"
    return None


def validate(hp) -> None:
    """Every field of the ``Hyper`` instance ``hp`` holds a valid value, or a ValueError naming the first
    that does not."""
    for field in dataclasses.fields(hp):
        why = problem(type(hp), field.name, getattr(hp, field.name))
        if why:
            raise ValueError(why)


@dataclass(frozen=True)
class HyperBase:
    """Base of the built-in backends' ``Hyper`` dataclasses: an instance with an invalid value cannot exist."""

    def __post_init__(self) -> None:
        validate(self)
