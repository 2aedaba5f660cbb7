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
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from evaluation.errors import ArchitectureError

__all__ = [
    "Architecture",
    "ArchitectureError",
    "BlockSpec",
    "DenseSpec",
    "DualPathSpec",
    "Head",
    "POOLINGS",
    "ResidualDenseSpec",
    "ResidualSpec",
    "STEM_STYLES",
    "Stage",
    "Stem",
    "Transition",
]

STEM_STYLES = ("imagenet", "small")
# Poolings a transition may end with. "none" keeps the spatial size: the
# transition then only compresses channels, which lets small inputs (28x28)
# afford more stages than halvings.
POOLINGS = ("avg", "max", "none")
RESIDUAL_UNITS = ("basic", "bottleneck")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ArchitectureError(message)


def _check_int(path: str, value: int, *, low: int) -> None:
    _check(value >= low, f"{path} must be >= {low}, got {value}")


def _check_choice(path: str, value: str, choices: tuple[str, ...]) -> None:
    _check(value in choices, f"{path} must be one of {', '.join(choices)}, got {value!r}")


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
class DenseSpec:
    """DenseNet layers: each adds ``growth_rate`` channels by concatenation.

    ``bn_size`` 0 is the plain BN-ReLU-Conv3x3 layer of the d2l book; k > 0 puts
    a BN-ReLU-Conv1x1 bottleneck to ``k * growth_rate`` channels first, as in
    DenseNet-BC and torchvision. ``memory_efficient`` recomputes that
    bottleneck in the backward pass instead of storing it.
    """

    kind: ClassVar[str] = "dense"
    growth_rate: int = 32
    bn_size: int = 4
    dropout: float = 0.0
    memory_efficient: bool = False

    def validate(self, path: str) -> None:
        _check_int(f"{path}.growth_rate", self.growth_rate, low=1)
        _check_int(f"{path}.bn_size", self.bn_size, low=0)
        _check(0.0 <= self.dropout < 1.0, f"{path}.dropout must be in [0, 1), got {self.dropout}")
        _check(
            not self.memory_efficient or self.bn_size > 0,
            f"{path}.memory_efficient needs a bottleneck (bn_size > 0), got bn_size {self.bn_size}",
        )


@dataclass(frozen=True)
class ResidualSpec:
    """ResNet units (post-activation, as torchvision): ``basic`` is two 3x3
    convs with ``width`` channels; ``bottleneck`` is 1x1-3x3-1x1 with output
    ``4 * width``. A strided or widening first unit gets a 1x1 projection."""

    kind: ClassVar[str] = "residual"
    unit: str = "basic"
    width: int = 64

    @property
    def expansion(self) -> int:
        return 4 if self.unit == "bottleneck" else 1

    def validate(self, path: str) -> None:
        _check_choice(f"{path}.unit", self.unit, RESIDUAL_UNITS)
        _check_int(f"{path}.width", self.width, low=1)


@dataclass(frozen=True)
class ResidualDenseSpec:
    """The residual-dense hybrid: a pre-activation bottleneck residual unit
    (BN-ReLU-1x1 to c/``reduction``, BN-ReLU-3x3, BN-ReLU-1x1 back to c)
    whose output is concatenated with its input, doubling the channels."""

    kind: ClassVar[str] = "residual_dense"
    reduction: int = 4

    def validate(self, path: str) -> None:
        _check_int(f"{path}.reduction", self.reduction, low=1)


@dataclass(frozen=True)
class DualPathSpec:
    """Dual path network units (Chen et al., 2017): a pre-activation
    1x1-3x3(grouped)-1x1 bottleneck whose output is split into ``width``
    channels added to the residual path and ``growth_rate`` channels
    concatenated to the dense path. The first unit of a stage projects its
    input to ``width + 2 * growth_rate`` channels, as DPN does."""

    kind: ClassVar[str] = "dual_path"
    width: int = 64
    growth_rate: int = 16
    bottleneck_width: int = 64
    groups: int = 1

    def validate(self, path: str) -> None:
        _check_int(f"{path}.width", self.width, low=1)
        _check_int(f"{path}.growth_rate", self.growth_rate, low=1)
        _check_int(f"{path}.bottleneck_width", self.bottleneck_width, low=1)
        _check_int(f"{path}.groups", self.groups, low=1)
        _check(
            self.bottleneck_width % self.groups == 0,
            f"{path}.bottleneck_width must be divisible by groups ({self.groups}), "
            f"got {self.bottleneck_width}",
        )


BlockSpec = DenseSpec | ResidualSpec | ResidualDenseSpec | DualPathSpec
BLOCK_SPECS: dict[str, type[BlockSpec]] = {
    spec.kind: spec for spec in (DenseSpec, ResidualSpec, ResidualDenseSpec, DualPathSpec)
}
# Blocks whose units concatenate their input with new features, so they cannot
# change the spatial size inside the stage: they downsample with transitions.
_CONCATENATING = ("dense", "residual_dense")


@dataclass(frozen=True)
class Stage:
    """``depth`` units of one block type; ``stride`` 2 downsamples in the
    first unit (ResNet style, no transition needed)."""

    block: BlockSpec
    depth: int
    stride: int = 1

    def validate(self, path: str) -> None:
        _check(
            isinstance(self.block, tuple(BLOCK_SPECS.values())),
            f"{path}.block must be one of {', '.join(BLOCK_SPECS)}, got {self.block!r}",
        )
        _check_int(f"{path}.depth", self.depth, low=1)
        _check(self.stride in (1, 2), f"{path}.stride must be 1 or 2, got {self.stride}")
        _check(
            self.stride == 1 or self.block.kind not in _CONCATENATING,
            f"{path}.stride must be 1 for {self.block.kind} blocks (downsample with a transition), "
            f"got {self.stride}",
        )
        self.block.validate(path)


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

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of str, int, float, bool, list and None."""
        return {
            "stem": dataclasses.asdict(self.stem),
            "stages": [_stage_to_dict(stage) for stage in self.stages],
            "transitions": [
                None if t is None else dataclasses.asdict(t) for t in self.transitions
            ],
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
        _check(isinstance(conv_bias, bool), f"conv_bias must be a bool, got {conv_bias!r}")
        return cls(
            stem=_parse(Stem, data.get("stem", {}), "stem"),
            stages=tuple(_stage_from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)),
            transitions=tuple(
                None if t is None else _parse(Transition, t, f"transitions[{i}]")
                for i, t in enumerate(transitions)
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
        kind in BLOCK_SPECS,
        f"{path}.block must be one of {', '.join(BLOCK_SPECS)}, got {kind!r}",
    )
    spec_type = BLOCK_SPECS[kind]
    knobs = {k: v for k, v in data.items() if k not in ("block", "depth", "stride")}
    _check("depth" in data, f"{path}.depth is required")
    stage_fields = _parse_values(Stage, {"depth": data["depth"], "stride": data.get("stride", 1)}, path)
    return Stage(block=_parse(spec_type, knobs, path), **stage_fields)


def _reject_unknown(data: Mapping[str, Any], known: set[str], path: str) -> None:
    unknown = sorted(set(data) - known)
    prefix = f"{path}." if path else ""
    _check(
        not unknown,
        f"{prefix}{unknown[0] if unknown else ''} is not a known key; "
        f"expected one of {', '.join(sorted(known))}",
    )


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
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is a subclass of int: `depth: true` must not pass as 1.
        ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
        _check(ok, f"{path}.{name} must be {expected.__name__}, got {value!r}")
        values[name] = value
    return values
