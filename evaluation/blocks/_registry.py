"""The block registry: what every block family declares about itself, once.

A family (``evaluation/blocks/dense.py``, ...) is one module holding its spec
(the knobs, with their bounds in field metadata), its units, its stage
builder, its output-channel rule, its closed-form tally and its description,
and registers them with ``register_block``. Everything else asks the registry:
``Architecture`` validation, ``shapes.trace``, ``build_model``, ``count``, the
space language's knob types, descriptions and the standalone export. Like
timm's model registry: a typed dict plus a registration call, and an unknown
name fails with the list of known ones.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from evaluation.errors import ArchitectureError, show

if TYPE_CHECKING:
    from torch import nn

    from evaluation.counts import Tally
    from evaluation.shapes import Step

__all__ = [
    "BLOCKS",
    "BlockFamily",
    "BlockSpec",
    "Bounds",
    "KnobValues",
    "block_family",
    "bounded",
    "field_bounds",
    "field_types",
    "has_type",
    "register_block",
]


@dataclass(frozen=True)
class Bounds:
    """The values one spec field accepts, beyond its type.

    ``minimum_open`` / ``maximum_open`` make a bound strict (split > 0,
    dropout < 1); ``choices`` lists the valid strings. The space language
    reads the same bounds, so a knob range is checked against them when the
    space file is loaded.
    """

    minimum: float | None = None
    maximum: float | None = None
    minimum_open: bool = False
    maximum_open: bool = False
    choices: tuple[str, ...] | None = None

    def holds(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        if self.minimum is not None and not (value > self.minimum if self.minimum_open else value >= self.minimum):
            return False
        return self.maximum is None or (value < self.maximum if self.maximum_open else value <= self.maximum)

    def rule(self) -> str:
        """The bounds in words: ``must be >= 1``, ``must be in [0, 1)``, ``must be one of a, b``."""
        if self.choices is not None:
            return f"must be one of {', '.join(self.choices)}"
        if self.minimum is not None and self.maximum is not None:
            low, high = "(" if self.minimum_open else "[", ")" if self.maximum_open else "]"
            return f"must be in {low}{self.minimum:g}, {self.maximum:g}{high}"
        if self.minimum is not None:
            return f"must be {'>' if self.minimum_open else '>='} {self.minimum:g}"
        if self.maximum is not None:
            return f"must be {'<' if self.maximum_open else '<='} {self.maximum:g}"
        return "is unrestricted"


def bounded(default: Any, **bounds: Any) -> Any:
    """A spec field with a default and ``Bounds`` (``growth_rate: int = bounded(32, minimum=1)``)."""
    return dataclasses.field(default=default, metadata={"bounds": Bounds(**bounds)})


def field_types(spec: type) -> dict[str, type]:
    """The spec's fields and their types (int, float, bool or str), in declaration order."""
    hints = typing.get_type_hints(spec)
    return {f.name: hints[f.name] for f in dataclasses.fields(spec)}


def field_bounds(spec: type) -> dict[str, Bounds]:
    """The ``Bounds`` of every spec field; a field declared without any gets none."""
    return {f.name: f.metadata.get("bounds", Bounds()) for f in dataclasses.fields(spec)}


class BlockSpec:
    """The base of every block spec: a frozen dataclass of one family's knobs.

    ``validate`` checks every field against its type and bounds, then the
    family's rule across fields (``check``), naming the field in each error.
    """

    kind: ClassVar[str]
    # Declared, not set: every subclass is a dataclass, so ``dataclasses.fields`` and
    # ``asdict`` take a BlockSpec (typeshed's ``DataclassInstance`` protocol).
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def check(self) -> str | None:
        """A rule across fields that this spec breaks, as ``<field> <rule>, got <value>``; None if none."""
        return None

    def knobs(self) -> dict[str, Any]:
        """The field values by name: the keyword arguments of the family's stage builder."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def validate(self, path: str) -> None:
        types, bounds = field_types(type(self)), field_bounds(type(self))
        for name, value in self.knobs().items():
            if not has_type(value, types[name]):
                raise ArchitectureError(f"{path}.{name} must be {types[name].__name__}, got {show(value)}")
            if not bounds[name].holds(value):
                raise ArchitectureError(f"{path}.{name} {bounds[name].rule()}, got {show(value)}")
        problem = self.check()
        if problem is not None:
            raise ArchitectureError(f"{path}.{problem}")


def has_type(value: Any, expected: type) -> bool:
    """``value`` fits a field of type ``expected``: an int is a float, but a bool
    (a subclass of int) is nothing but a bool, so ``growth_rate: true`` is not 1."""
    if isinstance(value, bool):
        return expected is bool
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


class KnobValues(Protocol):
    """The values a space file allows for one knob, as a family's ``check_knobs`` sees them."""

    @property
    def path(self) -> str: ...

    def contains(self, value: Any) -> bool: ...

    def values(self) -> Iterator[Any]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class BlockFamily:
    """Everything about one block type, registered once by its module.

    ``stage(in_channels, depth, stride, bias, **knobs)`` builds a stage and
    ``out_channels(in_channels, depth, **knobs)`` gives its output width; both
    are plain torch code taking the spec's fields as keywords, so the
    standalone export copies their source with ``units`` (the classes and
    helpers they use) and the exported file needs nothing but torch.
    ``tally(t, spec, step)`` adds the stage's params and MACs in closed form.
    ``downsamples``: whether a stage may stride in its first unit (concatenating
    blocks cannot; they downsample with transitions). ``check_input`` names a
    problem with the stage's input width (``<field> <rule>``), ``check_knobs``
    a rule across knobs that a space file breaks (``(path, message)``).
    """

    spec: type[BlockSpec]
    stage: Callable[..., nn.Module]
    out_channels: Callable[..., int]
    tally: Callable[[Tally, Any, Step], None]
    describe: Callable[[Any], str]
    units: tuple[Any, ...] = ()
    downsamples: bool = False
    check_input: Callable[[Any, int], str | None] | None = None
    check_knobs: Callable[[Mapping[str, KnobValues]], tuple[str, str] | None] | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind


BLOCKS: dict[str, BlockFamily] = {}


def register_block(family: BlockFamily) -> BlockFamily:
    """Add ``family`` to ``BLOCKS`` under its spec's ``kind``; each kind registers once."""
    if family.kind in BLOCKS:
        raise ValueError(f"block {family.kind!r} is already registered")
    BLOCKS[family.kind] = family
    return family


def block_family(kind: str) -> BlockFamily:
    """The registered family ``kind``; an unknown one fails listing the known ones."""
    if kind not in BLOCKS:
        raise ArchitectureError(f"unknown block {kind!r}; known blocks: {', '.join(BLOCKS)}")
    return BLOCKS[kind]
