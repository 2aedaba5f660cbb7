"""One knob of a search space: a fixed value or a distribution Optuna can sample.

A knob is written in a space file as a plain value (fixed), ``{choice: [...]}``
(categorical), or ``{low, high}`` with ``step`` or ``log`` (an int or float
range, by the knob's type). ``KnobType`` says what the Architecture accepts for
the field, so a value it would refuse is caught when the file is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from evaluation.blocks import has_type
from evaluation.errors import show

__all__ = [
    "MAX_CHOICES",
    "Choice",
    "Distribution",
    "Fixed",
    "FloatRange",
    "IntRange",
    "Knob",
    "KnobType",
    "Suggests",
    "as_field_type",
    "parse_knob",
]

Scalar = bool | int | float | str
_T = TypeVar("_T", bool, int, float, str)
# A float range without a step has no finite size; counted as this many values
# (about two significant digits) so that size() can still give an estimate.
CONTINUOUS_RESOLUTION = 100
# The longest choice list. Optuna stores a categorical's whole list with every
# trial's parameters (a 200,000-value list: 1.5 MB per trial); a longer run of
# numbers is a range, {low, high, step}, which Optuna stores as three numbers.
MAX_CHOICES = 10_000
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
_RANGE_KEYS = ("low", "high", "step", "log")


class KnobError(ValueError):
    """A knob that does not fit its type; ``path`` is filled in by the loader."""


@dataclass(frozen=True)
class KnobType:
    """The values the Architecture accepts for one field.

    ``minimum_open`` / ``maximum_open`` make the bound strict (compression > 0,
    dropout < 1); ``choices`` lists the valid strings (block types, poolings).
    """

    type: type
    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    choices: tuple[str, ...] | None = None

    def convert(self, value: Any, label: str) -> Scalar:
        """``value`` as this type, or ``KnobError`` saying what was expected."""
        if not has_type(value, self.type):
            raise KnobError(f"{label} must be {_TYPE_NAMES[self.type]}, got {show(value)}")
        if self.type is float:
            value = float(value)
        if self.choices is not None and value not in self.choices:
            raise KnobError(f"{label} must be one of {', '.join(self.choices)}, got {show(value)}")
        self.check_bounds(value, label)
        return value

    def check_bounds(self, value: float, label: str) -> None:
        if self.minimum is not None:
            if self.minimum_open and not value > self.minimum:
                raise KnobError(f"{label} ({value}) must be > {self.minimum}")
            if not self.minimum_open and not value >= self.minimum:
                raise KnobError(f"{label} ({value}) must be >= {self.minimum}")
        if self.maximum is not None:
            if self.maximum_open and not value < self.maximum:
                raise KnobError(f"{label} ({value}) must be < {self.maximum}")
            if not self.maximum_open and not value <= self.maximum:
                raise KnobError(f"{label} ({value}) must be <= {self.maximum}")


@dataclass(frozen=True)
class Fixed:
    value: Scalar

    def describe(self) -> str:
        return f"fixed to {self.value!r}"


@dataclass(frozen=True)
class Choice:
    values: tuple[Scalar, ...]

    def describe(self) -> str:
        return f"one of {', '.join(repr(v) for v in self.values)}"


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False

    def describe(self) -> str:
        return f"an integer in [{self.low}, {self.high}]" + (f" with step {self.step}" if self.step != 1 else "")


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    step: float | None = None
    log: bool = False

    @property
    def points(self) -> int | None:
        """Number of values on the step grid; None when continuous."""
        return None if self.step is None else round((self.high - self.low) / self.step) + 1

    def describe(self) -> str:
        scale = " on a log scale" if self.log else ""
        return f"a number in [{self.low}, {self.high}]" + (f" with step {self.step}" if self.step else scale)


Distribution = Fixed | Choice | IntRange | FloatRange


class Suggests(Protocol):
    """What a knob asks of a trial: Optuna's define-by-run calls, which ``optuna.trial.BaseTrial``
    answers, and so does screening's proposal, which asks a sampler without making a trial."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...


@dataclass(frozen=True)
class Knob:
    """A distribution bound to its Optuna parameter name and its key path in the file.

    ``param`` is None for fixed knobs, which are never suggested. A shared knob
    has one parameter for all stages (``stage.depth``) instead of one per stage.
    """

    path: str
    param: str | None
    distribution: Distribution
    shared: bool = False

    def describe(self) -> str:
        return self.distribution.describe()

    @property
    def searched(self) -> bool:
        return not isinstance(self.distribution, Fixed)

    def suggest(self, trial: Suggests) -> Scalar:
        """The value for ``trial``: asked of Optuna unless fixed.

        Asking a shared knob again returns the value of the first ask: Optuna
        keeps one value per parameter name in a trial.
        """
        d = self.distribution
        if isinstance(d, Fixed):
            return d.value
        assert self.param is not None
        if isinstance(d, Choice):
            chosen = trial.suggest_categorical(self.param, d.values)
            assert chosen is not None, "Optuna returns one of the choices, and none is None"
            return chosen
        if isinstance(d, IntRange):
            return trial.suggest_int(self.param, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.param, d.low, d.high, step=d.step, log=d.log)

    def first(self) -> Scalar:
        """A deterministic value: the fixed value, the first choice or the low end."""
        d = self.distribution
        if isinstance(d, Fixed):
            return d.value
        return d.values[0] if isinstance(d, Choice) else d.low

    def contains(self, value: Any) -> bool:
        d = self.distribution
        if isinstance(d, Fixed):
            return _same(value, d.value)
        if isinstance(d, Choice):
            return any(_same(value, v) for v in d.values)
        if isinstance(value, bool) or not isinstance(value, int | float) or not d.low <= value <= d.high:
            return False
        if isinstance(d, IntRange):
            return isinstance(value, int) and (d.log or (value - d.low) % d.step == 0)
        if d.step is None:
            return True
        units = (value - d.low) / d.step
        return math.isclose(units, round(units), abs_tol=1e-9)

    def count(self) -> int | None:
        """Number of distinct values; None for a continuous float range."""
        d = self.distribution
        if isinstance(d, Fixed):
            return 1
        if isinstance(d, Choice):
            return len(d.values)
        if isinstance(d, IntRange):
            return d.high - d.low + 1 if d.log else (d.high - d.low) // d.step + 1
        return d.points

    def values_as(self, expected: type[_T]) -> list[_T]:
        """Every value (``values``), as the field type the loader checked the knob against."""
        return [as_field_type(value, expected, self.path) for value in self.values()]

    def values(self) -> Iterator[Scalar]:
        """Every value, in order; only for knobs with a finite count."""
        d = self.distribution
        if isinstance(d, Fixed):
            yield d.value
        elif isinstance(d, Choice):
            yield from d.values
        elif isinstance(d, IntRange):
            yield from range(d.low, d.high + 1, 1 if d.log else d.step)
        else:
            assert d.step is not None and d.points is not None, "values() of a continuous range"
            for i in range(d.points):
                yield d.low + i * d.step


def as_field_type(value: Scalar | None, expected: type[_T], path: str) -> _T:
    """A knob's ``value`` as the field type the loader checked the knob against (``has_type``: an
    int is a float, a bool is no int); a value of another type is a bug, not a user's mistake."""
    if not has_type(value, expected):
        raise TypeError(f"{path}: expected {expected.__name__}, got {value!r}")
    return cast(_T, value)


def _same(a: Any, b: Any) -> bool:
    """Equal, without taking True for 1 (bool is an int in Python); 1 and 1.0 are the same."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def parse_knob(value: Any, knob_type: KnobType) -> tuple[Distribution, bool]:
    """The distribution written as ``value``, and whether it is marked ``shared``."""
    if not isinstance(value, Mapping):
        return Fixed(knob_type.convert(value, "value")), False
    unknown = sorted(set(value) - {"choice", "shared", *_RANGE_KEYS}, key=str)
    if unknown:
        raise KnobError(
            f"unknown key {show(unknown[0])}; expected a value, {{choice: [...]}}, "
            "or {low, high} with optional step or log, and optional shared"
        )
    shared = value.get("shared", False)
    if not isinstance(shared, bool):
        raise KnobError(f"shared must be a boolean, got {show(shared)}")
    if "choice" in value:
        extra = [k for k in _RANGE_KEYS if k in value]
        if extra:
            raise KnobError(f"choice cannot be combined with {extra[0]}; give either choice or low/high")
        return _parse_choice(value["choice"], knob_type), shared
    if "low" not in value or "high" not in value:
        raise KnobError("expected {choice: [...]} or both low and high")
    return _parse_range(value, knob_type), shared


def _parse_choice(values: Any, knob_type: KnobType) -> Choice:
    if not isinstance(values, list) or not values:
        raise KnobError(f"choice must be a non-empty list, got {show(values)}")
    if len(values) > MAX_CHOICES:
        raise KnobError(
            f"choice lists {len(values):,} values, at most {MAX_CHOICES:,} are allowed (Optuna stores the list "
            "with every trial); write a run of numbers as {low, high, step}"
        )
    converted = tuple(knob_type.convert(v, "choice") for v in values)
    seen: set[Any] = set()  # a set, not a scan of the values before: a long list loads in linear time
    for v in converted:
        if v in seen:
            raise KnobError(f"choice lists {v!r} twice; each value must appear once")
        seen.add(v)
    return Choice(converted)


def _parse_range(value: Mapping[str, Any], knob_type: KnobType) -> IntRange | FloatRange:
    if knob_type.type not in (int, float):
        raise KnobError(f"a range needs a numeric knob; this one takes {_TYPE_NAMES[knob_type.type]}, use choice")
    number = KnobType(knob_type.type)
    low = _number(number, value["low"], "low")
    high = _number(number, value["high"], "high")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise KnobError(f"log must be a boolean, got {show(log)}")
    knob_type.check_bounds(low, "low")
    knob_type.check_bounds(high, "high")
    if low > high:
        raise KnobError(f"low ({low}) must be <= high ({high})")
    if log and low <= 0:
        raise KnobError(f"low ({low}) must be > 0 on a log scale")
    if value.get("step") is None:
        return _range(knob_type, low, high, None, log)
    if log:
        raise KnobError("step cannot be combined with log (Optuna samples a log range continuously)")
    step = _number(number, value["step"], "step")
    if step <= 0:
        raise KnobError(f"step ({step}) must be > 0")
    units = (high - low) / step
    if not math.isclose(units, round(units), abs_tol=1e-9):
        raise KnobError(f"high - low ({high - low:g}) must be a multiple of step ({step})")
    return _range(knob_type, low, high, step, log)


def _number(number: KnobType, value: Any, label: str) -> float:
    """``value`` converted by the int or float ``number`` type: an int stays an int (typed float, as
    ints are), so messages show ``3``, not ``3.0``."""
    converted = number.convert(value, label)
    assert not isinstance(converted, str), f"a {number.type.__name__} knob converts to a number"
    return converted


def _range(knob_type: KnobType, low: float, high: float, step: float | None, log: bool) -> IntRange | FloatRange:
    """The range of ``knob_type``'s kind; an int knob's bounds and step were checked to be integers."""
    if knob_type.type is float:
        return FloatRange(low, high, step, log)
    return IntRange(int(low), int(high), 1 if step is None else int(step), log)
