"""The Architecture language: a network described as plain, frozen data.

An ``Architecture`` is a stem, a sequence of stages (each a block type with its
knobs, a depth and a stride), the transitions between stages and a head. It
knows nothing of PyTorch: ``evaluation.builder`` turns it into a module, and
``evaluation.counts`` computes its size in closed form.

``to_dict`` / ``from_dict`` give a JSON- and YAML-safe form whose stages are
flat mappings (``{"block": "dense", "depth": 6, "growth_rate": 32, ...}``), so
exported files read like the paper's table. Validation happens when an
Architecture is assembled; every error names the field it is about.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from evaluation.blocks import BLOCKS, POOLING_LAYERS, BlockSpec, has_type
from evaluation.errors import ArchitectureError, show

__all__ = [
    "Architecture",
    "ArchitectureError",
    "Head",
    "MAX_DEPTH",
    "POOLINGS",
    "STEM_STYLES",
    "Stage",
    "Stem",
    "Transition",
]

STEM_STYLES = ("imagenet", "small")
# Far beyond any published network (DenseNet-264 has 64 layers in a stage), and
# low enough that the closed-form counts, which walk every layer, stay instant.
MAX_DEPTH = 10_000
POOLINGS = tuple(POOLING_LAYERS)  # avg, max, none (see evaluation.blocks._layers)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ArchitectureError(message)


def _check_int(path: str, value: int, *, low: int) -> None:
    _check(value >= low, f"{path} must be >= {low}, got {value}")


def _check_choice(path: str, value: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, f"{path} must be one of {', '.join(choices)}, got {show(value)}")


@dataclass(frozen=True)
class Stem:
    """The layers before the first stage.

    ``imagenet``: 7x7/2 conv, BN, ReLU, 3x3/2 max pool (torchvision, d2l).
    ``small``: 3x3/1 conv, BN, ReLU, for 28x28 and 32x32 inputs.
    """

    style: str = "imagenet"
    width: int = 64

    def validate(self, path: str) -> None:
        _check_choice(f"{path}.style", self.style, STEM_STYLES)
        _check_int(f"{path}.width", self.width, low=1)


@dataclass(frozen=True)
class Stage:
    """``depth`` units of one block type; ``stride`` 2 downsamples in the
    first unit (ResNet style, no transition needed)."""

    block: BlockSpec
    depth: int
    stride: int = 1

    def validate(self, path: str) -> None:
        _check(
            isinstance(self.block, BlockSpec) and self.block.kind in BLOCKS,
            f"{path}.block must be one of {', '.join(BLOCKS)}, got {self.block!r}",
        )
        _check_int(f"{path}.depth", self.depth, low=1)
        _check(self.depth <= MAX_DEPTH, f"{path}.depth must be <= {MAX_DEPTH:,}, got {self.depth}")
        _check(self.stride in (1, 2), f"{path}.stride must be 1 or 2, got {self.stride}")
        _check(
            self.stride == 1 or BLOCKS[self.block.kind].downsamples,
            f"{path}.stride must be 1 for {self.block.kind} blocks (downsample with a transition), got {self.stride}",
        )
        self.block.validate(path)

    def describe(self) -> str:
        """``dense x4 k12 bn4``: block, depth, the block's knobs, and ``/2`` when it strides."""
        knobs = BLOCKS[self.block.kind].describe(self.block)
        return f"{self.block.kind} x{self.depth} {knobs}" + (" /2" if self.stride == 2 else "")


@dataclass(frozen=True)
class Transition:
    """BN-ReLU-Conv1x1 to ``compression * channels``, then ``pooling`` (2x2/2)."""

    compression: float = 0.5
    pooling: str = "avg"

    def validate(self, path: str) -> None:
        _check(
            0.0 < self.compression <= 1.0,
            f"{path}.compression must be in (0, 1], got {self.compression}",
        )
        _check_choice(f"{path}.pooling", self.pooling, POOLINGS)


@dataclass(frozen=True)
class Head:
    """Optional BN-ReLU (``norm``, for pre-activation bodies), global average
    pooling, dropout, and a linear classifier."""

    norm: bool = True
    dropout: float = 0.0

    def validate(self, path: str) -> None:
        _check(0.0 <= self.dropout < 1.0, f"{path}.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class Architecture:
    """A whole network as data. ``transitions[i]`` sits between ``stages[i]``
    and ``stages[i + 1]``; ``None`` there means no transition.

    ``conv_bias`` gives every convolution a bias: the d2l book's networks have
    them (PyTorch's default), torchvision's do not, since BN follows.
    """

    stages: tuple[Stage, ...]
    transitions: tuple[Transition | None, ...] = ()
    stem: Stem = field(default_factory=Stem)
    head: Head = field(default_factory=Head)
    conv_bias: bool = False

    def __post_init__(self) -> None:
        # Accept lists for convenience; store tuples so the object stays hashable.
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "transitions", tuple(self.transitions))
        self.validate()

    def validate(self) -> None:
        _check(len(self.stages) >= 1, "stages must hold at least 1 stage, got 0")
        for i, stage in enumerate(self.stages):
            _check(isinstance(stage, Stage), f"stages[{i}] must be a Stage, got {stage!r}")
            stage.validate(f"stages[{i}]")
        expected = len(self.stages) - 1
        _check(
            len(self.transitions) == expected,
            f"transitions must have {expected} entries (one between each pair of stages, "
            f"null for none), got {len(self.transitions)}",
        )
        for i, transition in enumerate(self.transitions):
            if transition is not None:
                transition.validate(f"transitions[{i}]")
        self.stem.validate("stem")
        self.head.validate("head")

    def describe(self) -> str:
        """The architecture in words, one segment per part, for hovers and tables.

        e.g. ``small stem 32 | dense x4 k24 bn4 | avg pool, x0.5 channels | residual x2 basic w64``
        """
        parts = [f"{self.stem.style} stem {self.stem.width}"]
        for stage, transition in zip_longest(self.stages, self.transitions):
            parts.append(stage.describe())
            if transition is not None:
                parts.append(f"{transition.pooling} pool, x{transition.compression:g} channels")
        return " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of str, int, float, bool, list and None."""
        return {
            "stem": dataclasses.asdict(self.stem),
            "stages": [_stage_to_dict(stage) for stage in self.stages],
            "transitions": [None if t is None else dataclasses.asdict(t) for t in self.transitions],
            "head": dataclasses.asdict(self.head),
            "conv_bias": self.conv_bias,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        """Inverse of ``to_dict``; unknown keys and wrong types are errors."""
        _check(isinstance(data, Mapping), f"architecture must be a mapping, got {type(data).__name__}")
        _reject_unknown(data, {"stem", "stages", "transitions", "head", "conv_bias"}, "")
        _check("stages" in data, "stages is required")
        stages = data["stages"]
        _check(isinstance(stages, list | tuple), f"stages must be a list, got {type(stages).__name__}")
        transitions = data.get("transitions", [])
        _check(
            isinstance(transitions, list | tuple),
            f"transitions must be a list, got {type(transitions).__name__}",
        )
        conv_bias = data.get("conv_bias", False)
        _check(isinstance(conv_bias, bool), f"conv_bias must be a bool, got {show(conv_bias)}")
        return cls(
            stem=_parse(Stem, data.get("stem", {}), "stem"),
            stages=tuple(_stage_from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)),
            transitions=tuple(
                None if t is None else _parse(Transition, t, f"transitions[{i}]") for i, t in enumerate(transitions)
            ),
            head=_parse(Head, data.get("head", {}), "head"),
            conv_bias=conv_bias,
        )


def _stage_to_dict(stage: Stage) -> dict[str, Any]:
    return {
        "block": stage.block.kind,
        "depth": stage.depth,
        "stride": stage.stride,
        **dataclasses.asdict(stage.block),
    }


def _stage_from_dict(data: Any, path: str) -> Stage:
    _check(isinstance(data, Mapping), f"{path} must be a mapping, got {type(data).__name__}")
    kind = data.get("block")
    _check(
        isinstance(kind, str) and kind in BLOCKS,
        f"{path}.block must be one of {', '.join(BLOCKS)}, got {show(kind)}",
    )
    spec_type = BLOCKS[kind].spec
    knobs = {k: v for k, v in data.items() if k not in ("block", "depth", "stride")}
    _check("depth" in data, f"{path}.depth is required")
    stage_fields = _parse_values(Stage, {"depth": data["depth"], "stride": data.get("stride", 1)}, path)
    return Stage(block=_parse(spec_type, knobs, path), **stage_fields)


def _reject_unknown(data: Mapping[str, Any], known: set[str], path: str) -> None:
    # Keys may be any YAML scalar (1, null, true): sorted by their text, named as written.
    unknown = sorted((key for key in data if key not in known), key=str)
    prefix = f"{path}." if path else ""
    _check(
        not unknown,
        f"{prefix}{_key_text(unknown[0]) if unknown else ''} is not a known key; expected one of {', '.join(sorted(known))}",
    )


def _key_text(key: Any) -> str:
    """A key as the file wrote it: a string bare, any other scalar (1, null) as its repr."""
    return key if isinstance(key, str) else show(key)


def _parse(cls: type, data: Any, path: str) -> Any:
    _check(isinstance(data, Mapping), f"{path} must be a mapping, got {type(data).__name__}")
    return cls(**_parse_values(cls, data, path))


def _parse_values(cls: type, data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Type-check ``data`` against the scalar fields of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name in hints}
    _reject_unknown(data, known, path)
    values = {}
    for name, value in data.items():
        expected = hints[name]
        _check(has_type(value, expected), f"{path}.{name} must be {expected.__name__}, got {show(value)}")
        values[name] = float(value) if expected is float else value
    return values
