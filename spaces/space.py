"""``Space``: a validated search space, and the walk from knob values to an Architecture.

The loader (``spaces.schema``) builds a Space from a file; everything else
reads it. ``architecture(choose)`` is the single place that turns knob values
into an Architecture: sampling passes Optuna's suggest, ``example`` passes the
first value of every knob, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from evaluation.architecture import Architecture, Head, Stage, Stem, Transition
from evaluation.blocks import BLOCKS
from evaluation.images import SourceOptions
from evaluation.metrics import Direction
from evaluation.training import TrainConfig
from spaces.errors import SpaceError
from spaces.knobs import CONTINUOUS_RESOLUTION, Fixed, Knob, Scalar, as_field_type

__all__ = [
    "AUTO_STEM",
    "IMAGENET_STEM_SIDE",
    "Constraints",
    "Objective",
    "Space",
    "StageKnobs",
    "TrainingBudget",
    "TransitionKnobs",
    "stem_style_for",
]

Parameterisation = Literal["static", "conditional"]
PARAMETERISATIONS: tuple[Parameterisation, ...] = ("static", "conditional")
# ``stem: {style: auto}``: the stem follows the input's side. The ImageNet stem
# (7x7/2 conv, 3x3/2 max pool) divides the side by 4: from 128 px it leaves at
# least 32x32 for the stages, as CIFAR networks start with; below, the small
# stem (3x3/1) keeps the full side (at 28 px the ImageNet stem would leave 7x7).
AUTO_STEM = "auto"
IMAGENET_STEM_SIDE = 128


def stem_style_for(side: int) -> str:
    """The stem ``auto`` stands for at an input of ``side`` pixels."""
    return "imagenet" if side >= IMAGENET_STEM_SIDE else "small"


Choose = Callable[[Knob], Scalar]
_T = TypeVar("_T", bool, int, float, str)


@dataclass(frozen=True)
class Objective:
    metric: str  # a name in evaluation.metrics.METRICS
    direction: Direction


@dataclass(frozen=True)
class Constraints:
    """Upper limits a trial must meet, by metric name; params and MACs are checked before training.

    The space file writes them under each metric's ``constraint`` key
    (``max_macs``, see ``evaluation.metrics``).
    """

    limits: Mapping[str, float] = field(default_factory=dict, hash=False)

    def limit(self, metric: str) -> float | None:
        """The highest value of ``metric`` allowed, or None when it is not limited."""
        return self.limits.get(metric)


@dataclass(frozen=True)
class TrainingBudget:
    """How long one trial trains: small by default, so a search explores widely."""

    epochs: int = 1
    train_fraction: float = 0.15
    batch_size: int = 128
    lr: float = 0.05
    schedule: str = "onecycle"  # one of evaluation.training.SCHEDULES

    def config(self, **settings: Any) -> TrainConfig:
        """A ``TrainConfig`` with this budget's epochs, fraction, batch, rate and schedule; ``settings`` override them."""
        return TrainConfig(**(dataclasses.asdict(self) | settings))


@dataclass(frozen=True)
class StageKnobs:
    """The knobs of one stage; ``blocks`` holds those of every block type it may choose.

    A block's knobs may include the stage's ``depth`` (a depth range per block
    type) and ``stride``; ``depth`` here is None when every block has its own.
    """

    block: Knob
    depth: Knob | None
    blocks: Mapping[str, Mapping[str, Knob]] = field(hash=False)

    def depth_knob(self, kind: str) -> Knob:
        """The knob that sets the depth of a stage of block ``kind``."""
        knob = self.blocks[kind].get("depth", self.depth)
        assert knob is not None, f"no depth knob for {kind}"
        return knob


@dataclass(frozen=True)
class TransitionKnobs:
    present: Knob
    compression: Knob
    pooling: Knob


@dataclass(frozen=True)
class Space:
    """A search space over Architectures, with the data, objectives and budget it is meant for.

    ``stages`` and ``transitions`` run to the largest stage count the space
    allows; a sample with fewer stages ignores the rest.

    ``dataset`` is a built-in name or a source (``folder:/abs/path``), None when
    the space names none (the run's ``--data`` gives it); ``data_options`` how a
    source's images are read. ``input_size`` and ``num_classes`` are None where
    a space leaves them to its data: ``with_input`` fills them before a search.
    ``auto_stem``: the stem's style follows the input's side (``stem_style_for``).
    """

    name: str
    path: Path
    source: str  # how messages name the file: "spaces/resnet.yaml" or the user's path
    description: str
    dataset: str | None
    input_size: tuple[int, int, int] | None
    num_classes: int | None
    objectives: tuple[Objective, ...]
    constraints: Constraints
    training: TrainingBudget
    parameterisation: Parameterisation
    # Dicts cannot be hashed: the mappings count in equality only.
    stem: Mapping[str, Knob] = field(hash=False)
    num_stages: Knob
    stages: tuple[StageKnobs, ...]
    transitions: tuple[TransitionKnobs, ...]
    head: Mapping[str, Knob] = field(hash=False)
    conv_bias: Knob
    baselines: Mapping[str, Architecture] = field(default_factory=dict, hash=False)
    data_options: SourceOptions | None = None
    auto_stem: bool = False

    def error(self, path: str, what: str) -> SpaceError:
        return SpaceError(f"{self.source}: {path}: {what}")

    def model_shape(self) -> tuple[tuple[int, int, int], int]:
        """The input size and class count its networks are built for: a space that leaves them to
        its data has them once ``with_input`` has filled them in from the data."""
        unknown = "is not known: the space states none and no data set has given it yet"
        if self.input_size is None:
            raise self.error("input", unknown)
        if self.num_classes is None:
            raise self.error("num_classes", unknown)
        return self.input_size, self.num_classes

    # -- from knob values to an Architecture -------------------------------------------

    def architecture(self, choose: Choose) -> Architecture:
        """The Architecture whose knob values ``choose`` picks, in a fixed order.

        With the static parameterisation every knob of every stage up to the
        largest stage count is chosen, active or not, so the set of Optuna
        parameters is the same in every trial (see README, "Parameterisation").
        """
        static = self.parameterisation == "static"
        stem = Stem(**_chosen(choose, self.stem))
        count = _choose_as(choose, self.num_stages, int)
        stages = []
        for i, stage_knobs in enumerate(self.stages):
            active = i < count
            if not (active or static):
                break
            kind = _choose_as(choose, stage_knobs.block, str)
            # The stage's depth knob is asked unless the block brings its own.
            depth: Scalar | None = None
            if stage_knobs.depth is not None and (static or "depth" not in stage_knobs.blocks[kind]):
                depth = choose(stage_knobs.depth)
            values: dict[str, Any] = {}
            for block, block_knobs in stage_knobs.blocks.items():
                if block == kind:
                    values = _chosen(choose, block_knobs)
                elif static:
                    for knob in block_knobs.values():
                        choose(knob)  # asked and ignored, so that every trial has the same parameters
            if active:
                where = f"stages.stage{i + 1}"
                stride = as_field_type(values.pop("stride", 1), int, f"{where}.stride")
                depth = as_field_type(values.pop("depth", depth), int, f"{where}.depth")
                stages.append(Stage(block=BLOCKS[kind].spec(**values), depth=depth, stride=stride))
        transitions: list[Transition | None] = []
        for i, transition_knobs in enumerate(self.transitions):
            active = i < count - 1
            if not (active or static):
                break
            present = choose(transition_knobs.present)
            transition = None
            if present or static:
                transition = Transition(
                    compression=_choose_as(choose, transition_knobs.compression, float),
                    pooling=_choose_as(choose, transition_knobs.pooling, str),
                )
            if active:
                transitions.append(transition if present else None)
        head = Head(**_chosen(choose, self.head))
        return Architecture(
            stem=stem,
            stages=tuple(stages),
            transitions=tuple(transitions),
            head=head,
            conv_bias=_choose_as(choose, self.conv_bias, bool),
        )

    def example(self) -> Architecture:
        """A deterministic member: every knob at its first choice or low end."""
        return self.architecture(Knob.first)

    def baseline(self, name: str) -> Architecture:
        """The known architecture listed under ``baselines`` in the file."""
        if name not in self.baselines:
            known = ", ".join(sorted(self.baselines)) or "none"
            raise self.error("baselines", f"no baseline {name!r}; known baselines: {known}")
        return self.baselines[name]

    def with_input(
        self,
        *,
        dataset: str | None = None,
        input_size: tuple[int, int, int] | None = None,
        num_classes: int | None = None,
    ) -> Space:
        """This space for another data set or input shape (the command line's overrides, or the
        data's own where the space leaves them out). Another data set drops the space's source
        options; a stem ``auto`` takes the style of the new input's side."""
        if input_size is not None and (len(input_size) != 3 or min(input_size) < 1):
            raise self.error("input", f"must be 3 positive integers (C, H, W), got {input_size!r}")
        if num_classes is not None and num_classes < 2:
            raise self.error("num_classes", f"must be >= 2, got {num_classes}")
        shape = self.input_size if input_size is None else (*input_size,)
        stem = self.stem
        if self.auto_stem and shape is not None:
            stem = {**self.stem, "style": Knob("stem.style", None, Fixed(stem_style_for(shape[1])))}
        other_data = dataset is not None and dataset != self.dataset
        return dataclasses.replace(
            self,
            dataset=self.dataset if dataset is None else dataset,
            input_size=shape,
            num_classes=self.num_classes if num_classes is None else num_classes,
            stem=stem,
            data_options=None if other_data else self.data_options,
        )

    # -- the inverse: an Architecture to knob values -----------------------------------

    def params_for(self, arch: Architecture) -> dict[str, Scalar]:
        """Trial parameters for which ``architecture`` gives back ``arch``.

        Raises ``SpaceError`` naming the first knob whose value ``arch`` does
        not fit. Inactive knobs of the static parameterisation get their first
        value, so the result is complete.
        """
        params: dict[str, Scalar] = {}

        def fit(knob: Knob, value: Scalar) -> None:
            if not knob.contains(value):
                raise self.error(
                    knob.path, f"the architecture has {value!r}, the space allows {knob.distribution.describe()}"
                )
            if knob.param is None:
                return
            if knob.param in params and params[knob.param] != value:
                raise self.error(
                    knob.path,
                    f"shared by all stages ({knob.param}), but the architecture has both "
                    f"{params[knob.param]!r} and {value!r}",
                )
            params[knob.param] = value

        for name, knob in self.stem.items():
            fit(knob, getattr(arch.stem, name))
        if len(arch.stages) > len(self.stages):
            raise self.error(
                "stages.count", f"the architecture has {len(arch.stages)} stages, the space at most {len(self.stages)}"
            )
        fit(self.num_stages, len(arch.stages))
        for stage, stage_knobs in zip(arch.stages, self.stages):
            fit(stage_knobs.block, stage.block.kind)
            for name, knob in stage_knobs.blocks[stage.block.kind].items():
                fit(knob, getattr(stage if name in ("depth", "stride") else stage.block, name))
            if "depth" not in stage_knobs.blocks[stage.block.kind]:
                fit(stage_knobs.depth_knob(stage.block.kind), stage.depth)
        for transition, transition_knobs in zip(arch.transitions, self.transitions):
            fit(transition_knobs.present, transition is not None)
            if transition is not None:
                fit(transition_knobs.compression, transition.compression)
                fit(transition_knobs.pooling, transition.pooling)
        for name, knob in self.head.items():
            fit(knob, getattr(arch.head, name))
        fit(self.conv_bias, arch.conv_bias)
        if self.parameterisation == "static":
            for knob in self.knobs():
                if knob.param is not None:
                    params.setdefault(knob.param, knob.first())
        return params

    def knobs(self) -> list[Knob]:
        """Every knob, in the order ``architecture`` chooses them."""
        found: list[Knob] = [*self.stem.values(), self.num_stages]
        for stage in self.stages:
            found += [stage.block, *([] if stage.depth is None else [stage.depth])]
            found += [k for ks in stage.blocks.values() for k in ks.values()]
        for transition in self.transitions:
            found += [transition.present, transition.compression, transition.pooling]
        return [*found, *self.head.values(), self.conv_bias]

    def grid(self) -> dict[str, list[Scalar]]:
        """Every parameter with all its values, for ``optuna.samplers.GridSampler``."""
        grid: dict[str, list[Scalar]] = {}
        for knob in self.knobs():
            if knob.param is None or knob.param in grid:
                continue
            if knob.count() is None:
                raise self.error(knob.path, "a grid needs a finite knob; give the float range a step")
            grid[knob.param] = list(knob.values())
        return grid

    # -- size ---------------------------------------------------------------------------

    @property
    def size_is_exact(self) -> bool:
        """False when a float range without step makes the space infinite."""
        return all(knob.count() is not None for knob in self.knobs())

    def size(self) -> int:
        """Number of distinct architectures; an estimate when ``size_is_exact`` is False.

        Knobs of a block type count only in stages that choose it, those of a
        transition only when it is present, and a shared knob once for the
        whole network if any part uses it: a sum over stage counts of a
        product over stages, run as a small dynamic programme whose state is
        the set of shared parameters used so far.
        """
        shared_counts = {k.param: _count(k) for k in self.knobs() if k.shared}
        total = 0
        for count in self.num_stages.values_as(int):
            slots = [self._stage_options(k) for k in self.stages[:count]]
            slots += [self._transition_options(k) for k in self.transitions[: count - 1]]
            states: Counter[frozenset[str]] = Counter({frozenset(): 1})
            for options in slots:
                following: Counter[frozenset[str]] = Counter()
                for used, ways in states.items():
                    for factor, shared in options:
                        following[used | shared] += ways * factor
                states = following
            total += sum(ways * math.prod(shared_counts[p] for p in used) for used, ways in states.items())
        fixed_parts = [*self.stem.values(), *self.head.values(), self.conv_bias]
        return total * math.prod(_count(k) for k in fixed_parts)

    def _stage_options(self, knobs: StageKnobs) -> list[tuple[int, frozenset[str]]]:
        return [
            _options([knobs.depth_knob(kind), *(k for n, k in knobs.blocks[kind].items() if n != "depth")])
            for kind in knobs.block.values_as(str)
        ]

    def _transition_options(self, knobs: TransitionKnobs) -> list[tuple[int, frozenset[str]]]:
        return [
            _options([knobs.compression, knobs.pooling]) if present else (1, frozenset())
            for present in knobs.present.values()
        ]


def _chosen(choose: Choose, knobs: Mapping[str, Knob]) -> dict[str, Any]:
    """The value ``choose`` picks for each knob, by field name: the keyword arguments of a part
    (Stem, Head, a block's spec). The loader checked each knob against its field's type
    (``KnobType``), which a mapping keyed by name cannot carry."""
    return {name: choose(knob) for name, knob in knobs.items()}


def _choose_as(choose: Choose, knob: Knob, expected: type[_T]) -> _T:
    """The value ``choose`` picks for ``knob``, as its field's type."""
    return as_field_type(choose(knob), expected, knob.path)


def _count(knob: Knob) -> int:
    count = knob.count()
    return CONTINUOUS_RESOLUTION if count is None else count


def _options(knobs: list[Knob]) -> tuple[int, frozenset[str]]:
    """Ways to set ``knobs`` counting per-part knobs only, and the shared parameters among them."""
    shared = frozenset(k.param for k in knobs if k.shared and k.param is not None)
    return math.prod(_count(k) for k in knobs if not k.shared), shared
