"""Loading a space file: ``yaml.safe_load``, a closed set of keys, typed knobs.

Every error is a ``SpaceError`` reading ``<file>: <key.path>: <rule and value>``.
The knob types of blocks come from the bounds their specs declare
(``evaluation.blocks``), and each block's rule across knobs is checked for
every value a space allows, so any combination of knob values the loader
accepts assembles into an Architecture; whether it fits the input and the constraints is
``spaces.sample.precheck``'s question.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from evaluation._yaml import UnreadableYaml, read_yaml
from evaluation.architecture import (
    MAX_DEPTH,
    POOLINGS,
    STEM_STYLES,
    Architecture,
    ArchitectureError,
    Head,
    Stem,
    Transition,
)
from evaluation.blocks import BLOCKS, BlockFamily, field_bounds, field_types
from evaluation.errors import DataError, show
from evaluation.images import SourceOptions, is_source
from evaluation.metrics import DIRECTIONS, METRICS
from evaluation.training import SCHEDULES
from spaces.errors import SpaceError
from spaces.knobs import Fixed, Knob, KnobError, KnobType, parse_knob
from spaces.space import (
    AUTO_STEM,
    PARAMETERISATIONS,
    Constraints,
    Objective,
    Space,
    StageKnobs,
    TrainingBudget,
    TransitionKnobs,
    stem_style_for,
)

__all__ = ["builtin_space_names", "load_space"]

BUILTIN_DIR = Path(__file__).resolve().parent
# Every stage's knobs are sampled up to the largest stage count (static
# parameterisation); 12 stages is beyond any network that fits small inputs.
MAX_STAGES = 12
# A block's rule across knobs is checked for every value a knob allows; a wider
# range is refused rather than walked (a width range up to 10**12 would never finish).
MAX_CHECKED_VALUES = 100_000

# A choice among literal names (a Literal type's values) comes back as that Literal type.
_Name = TypeVar("_Name", bound=str)

_POSITIVE = KnobType(int, minimum=1)
_FRACTION_OPEN_HIGH = KnobType(float, minimum=0.0, maximum=1.0, maximum_open=True)
_BOOL = KnobType(bool)
_STRIDE = KnobType(int, minimum=1, maximum=2)

STEM_KNOBS = {"style": KnobType(str, choices=STEM_STYLES), "width": _POSITIVE}
STAGE_KNOBS = {"block": KnobType(str, choices=tuple(BLOCKS)), "depth": KnobType(int, minimum=1, maximum=MAX_DEPTH)}


def _block_knobs(family: BlockFamily) -> dict[str, KnobType]:
    """The knobs of one block type: its spec's fields with their declared bounds,
    plus the stage's stride for the blocks that may downsample inside a stage."""
    bounds = field_bounds(family.spec)
    knobs = {
        name: KnobType(kind, **dataclasses.asdict(bounds[name])) for name, kind in field_types(family.spec).items()
    }
    return {**knobs, "stride": _STRIDE} if family.downsamples else knobs


# A block section may also set the stage's depth, when block types want
# different depth ranges.
BLOCK_KNOBS: dict[str, dict[str, KnobType]] = {kind: _block_knobs(family) for kind, family in BLOCKS.items()}
TRANSITION_KNOBS = {
    "present": _BOOL,
    "compression": KnobType(float, minimum=0.0, maximum=1.0, minimum_open=True),
    "pooling": KnobType(str, choices=POOLINGS),
}
HEAD_KNOBS = {"norm": _BOOL, "dropout": _FRACTION_OPEN_HIGH}
# Knobs that decide which other knobs exist cannot be shared: the size count
# and the conditional parameterisation need them chosen per part.
_SELECTORS = ("block", "present")

_TOP_KEYS = (
    "description",
    "dataset",
    "input",
    "num_classes",
    "objectives",
    "constraints",
    "training",
    "parameterisation",
    "stem",
    "stages",
    "transitions",
    "head",
    "conv_bias",
    "baselines",
)
_REQUIRED = ("description", "objectives", "stages")
# A space whose data set is a built-in states its input and class count; a source's
# images (folder:, csv:, npz:), or the run's --data, give them when the space does not.
_FROM_BUILTIN = ("input", "num_classes")
# ``dataset`` as a mapping: a source and how it is read (evaluation.images.SourceOptions).
DATA_OPTION_TYPES = {
    "resolution": _POSITIVE,
    "channels": _POSITIVE,
    "resize": KnobType(str),
    "background": KnobType(int, minimum=0, maximum=255),
    "val_fraction": KnobType(float),
    "test_fraction": KnobType(float),
    "split_seed": KnobType(int),
    "flip": _BOOL,
    "strict": _BOOL,
}


def builtin_space_names() -> list[str]:
    """Names of the spaces shipped with the package (``spaces/<name>.yaml``)."""
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> Space:
    """A built-in space by name, or the space in a YAML file."""
    name = str(name_or_path)
    if name in builtin_space_names():
        path = BUILTIN_DIR / f"{name}.yaml"
        source = f"spaces/{name}.yaml"
    else:
        path = Path(name_or_path)
        source = name
        if not path.is_file():
            raise SpaceError(f"{name}: neither a built-in space ({', '.join(builtin_space_names())}) nor a file")
    try:
        data = read_yaml(path)
    except UnreadableYaml as error:
        raise SpaceError(f"{source}: {error}") from None
    return _Loader(source).space(data, name=path.stem, path=path)


class _Loader:
    """Parses one file; ``source`` names it in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, path: str, what: str) -> SpaceError:
        return SpaceError(f"{self.source}: {path}: {what}")

    def mapping(self, value: Any, path: str, known: Iterable[str], required: Iterable[str] = ()) -> Mapping[str, Any]:
        known = tuple(known)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected a mapping with keys {', '.join(known)}, got {_show(value)}")
        for key in value:
            if key not in known:
                raise self.error(_join(path, str(key)), f"unknown key; expected one of {', '.join(known)}")
        for key in required:
            if key not in value:
                raise self.error(_join(path, key), "is required")
        return value

    def scalar(self, value: Any, path: str, knob_type: KnobType) -> Any:
        try:
            return knob_type.convert(value, "value")
        except KnobError as error:
            raise self.error(path, str(error)) from None

    def knob(self, value: Any, path: str, knob_type: KnobType, param: str, *, shareable: bool = False) -> Knob:
        """The knob written as ``value``; a shared one gets ``param`` without its part number."""
        try:
            distribution, shared = parse_knob(value, knob_type)
        except KnobError as error:
            raise self.error(path, str(error)) from None
        if shared and path.split(".")[-1] in _SELECTORS:
            raise self.error(path, "shared: true is not allowed here: this knob decides which other knobs exist")
        if shared and not shareable:
            raise self.error(path, "shared: true is only allowed under stages.each or transitions.each")
        if isinstance(distribution, Fixed):
            return Knob(path, None, distribution)
        if shared:
            param = re.sub(r"^(stage|transition)\d+", r"\1", param)
        return Knob(path, param, distribution, shared)

    # -- the document ------------------------------------------------------------------

    def space(self, data: Any, *, name: str, path: Path) -> Space:
        if not isinstance(data, Mapping):
            raise SpaceError(f"{self.source}: expected a mapping of {', '.join(_REQUIRED)}, ..., got {_show(data)}")
        data = self.mapping(data, "", _TOP_KEYS, _REQUIRED)
        dataset, data_options = self.dataset(data.get("dataset"), path)
        if dataset is not None and not is_source(dataset):
            for key in _FROM_BUILTIN:
                if key not in data:
                    raise self.error(
                        key,
                        f"is required with the built-in data set {dataset} (a folder:, csv: or npz: source gives it)",
                    )
        input_size = self.input_size(data["input"]) if "input" in data else None
        stem_given = dict(self.mapping(data.get("stem"), "stem", STEM_KNOBS))
        auto_stem = stem_given.get("style") == AUTO_STEM
        if auto_stem:  # resolved now when the input is stated, else by with_input once the data is known
            stem_given["style"] = stem_style_for(input_size[1]) if input_size else Stem().style
        stem = {
            key: self.knob(value, f"stem.{key}", STEM_KNOBS[key], f"stem.{key}")
            for key, value in self._with_defaults(stem_given, "stem", STEM_KNOBS, Stem()).items()
        }
        num_stages, stages = self.stages(data["stages"])
        head = {
            key: self.knob(value, f"head.{key}", HEAD_KNOBS[key], f"head.{key}")
            for key, value in self._with_defaults(data.get("head"), "head", HEAD_KNOBS, Head()).items()
        }
        space = Space(
            name=name,
            path=path,
            source=self.source,
            description=self.text(data["description"], "description"),
            dataset=dataset,
            input_size=input_size,
            num_classes=(
                self.scalar(data["num_classes"], "num_classes", KnobType(int, minimum=2))
                if "num_classes" in data
                else None
            ),
            objectives=self.objectives(data["objectives"]),
            constraints=self.constraints(data.get("constraints")),
            training=self.training(data.get("training")),
            parameterisation=self.choice(data.get("parameterisation", "static"), "parameterisation", PARAMETERISATIONS),
            stem=stem,
            num_stages=num_stages,
            stages=stages,
            transitions=self.transitions(data.get("transitions"), len(stages) - 1),
            head=head,
            conv_bias=self.knob(data.get("conv_bias", False), "conv_bias", _BOOL, "conv_bias"),
            data_options=data_options,
            auto_stem=auto_stem,
        )
        return dataclasses.replace(space, baselines=self.baselines(data.get("baselines"), space))

    def _with_defaults(self, value: Any, path: str, knobs: Mapping[str, KnobType], default: Any) -> dict[str, Any]:
        given = self.mapping(value, path, knobs)
        return {key: given.get(key, getattr(default, key)) for key in knobs}

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(path, f"must be a non-empty string, got {_show(value)}")
        return value.strip()

    def dataset(self, value: Any, path: Path) -> tuple[str | None, SourceOptions | None]:
        """The data set (a built-in name or a source) and, when written as a mapping, the source's options."""
        if value is None:
            return None, None
        if not isinstance(value, Mapping):
            return self.data_source(value, "dataset", path), None
        value = self.mapping(value, "dataset", ("source", *DATA_OPTION_TYPES, "classes"), ("source",))
        source = self.data_source(value["source"], "dataset.source", path)
        if not is_source(source):
            raise self.error(
                "dataset.source",
                f"options apply to folder:, csv: and npz: sources; {show(source)} is not one "
                f"(a built-in data set is written as dataset: NAME)",
            )
        options: dict[str, Any] = {
            key: self.scalar(v, f"dataset.{key}", DATA_OPTION_TYPES[key])
            for key, v in value.items()
            if key in DATA_OPTION_TYPES
        }
        if "classes" in value:
            classes = value["classes"]
            if not isinstance(classes, list) or not all(isinstance(c, str | int) for c in classes):
                raise self.error("dataset.classes", f"must be a list of class names, got {_show(classes)}")
            options["classes"] = tuple(str(c) for c in classes)
        try:
            return source, SourceOptions(**options)
        except DataError as error:
            raise self.error("dataset", str(error)) from None

    def data_source(self, value: Any, key: str, path: Path) -> str:
        """A built-in name, or ``KIND:PATH`` with PATH made absolute: a relative one is taken
        from the space file's folder (``~`` expanded), so the file means the same from anywhere."""
        text = self.text(value, key)
        if not is_source(text):
            return text
        kind, _, rest = text.partition(":")
        if not rest:
            raise self.error(key, f"{text}: the source needs a path after '{kind}:'")
        where = Path(rest).expanduser()
        return f"{kind}:{os.path.abspath(where if where.is_absolute() else path.parent / where)}"

    def choice(self, value: Any, path: str, choices: tuple[_Name, ...]) -> _Name:
        return self.scalar(value, path, KnobType(str, choices=choices))

    def input_size(self, value: Any) -> tuple[int, int, int]:
        if not isinstance(value, list) or len(value) != 3:
            raise self.error("input", f"must be a list [C, H, W] of 3 integers, got {_show(value)}")
        return tuple(self.scalar(v, f"input[{i}]", _POSITIVE) for i, v in enumerate(value))

    def objectives(self, value: Any) -> tuple[Objective, ...]:
        value = self.mapping(value, "objectives", METRICS)
        if not value:
            raise self.error("objectives", "at least one is required, e.g. {accuracy: maximize, macs: minimize}")
        return tuple(
            Objective(metric, self.choice(direction, f"objectives.{metric}", DIRECTIONS))
            for metric, direction in value.items()
        )

    def constraints(self, value: Any) -> Constraints:
        """One upper limit per metric that has a constraint key (``max_macs``), each a positive number."""
        metrics = {metric.constraint: metric for metric in METRICS.values() if metric.constraint is not None}
        positive = {int: _POSITIVE, float: KnobType(float, minimum=0.0, minimum_open=True)}
        value = self.mapping(value, "constraints", metrics)
        return Constraints(
            {
                metrics[key].name: self.scalar(v, f"constraints.{key}", positive[metrics[key].limit_type])
                for key, v in value.items()
                if v is not None
            }
        )

    def training(self, value: Any) -> TrainingBudget:
        types = {
            "epochs": _POSITIVE,
            "train_fraction": KnobType(float, minimum=0.0, maximum=1.0, minimum_open=True),
            "batch_size": _POSITIVE,
            "lr": KnobType(float, minimum=0.0, minimum_open=True),
            "schedule": KnobType(str, choices=SCHEDULES),
        }
        value = self.mapping(value, "training", types)
        return TrainingBudget(**{key: self.scalar(v, f"training.{key}", types[key]) for key, v in value.items()})

    # -- stages and transitions ------------------------------------------------------------

    def stages(self, value: Any) -> tuple[Knob, tuple[StageKnobs, ...]]:
        if not isinstance(value, Mapping) or not value:
            raise self.error(
                "stages", f"expected a mapping with count, each and optional stage1, stage2, ..., got {_show(value)}"
            )
        if "count" not in value:
            raise self.error("stages.count", "is required: the number of stages, e.g. 3 or {low: 2, high: 4}")
        count = self.knob(value["count"], "stages.count", KnobType(int, minimum=1, maximum=MAX_STAGES), "num_stages")
        largest = max(count.values_as(int))
        overrides = [f"stage{i}" for i in range(1, largest + 1)]
        value = self.mapping(value, "stages", ("count", "each", *overrides))
        each = self.mapping(value.get("each"), "stages.each", (*STAGE_KNOBS, *BLOCK_KNOBS))
        stages = tuple(
            self.stage(i, each, self.mapping(value.get(f"stage{i}"), f"stages.stage{i}", (*STAGE_KNOBS, *BLOCK_KNOBS)))
            for i in range(1, largest + 1)
        )
        for kind in BLOCK_KNOBS:
            if kind in each and not any(kind in stage.blocks for stage in stages):
                raise self.error(
                    f"stages.each.{kind}",
                    f"no stage can choose block {kind}; remove the section or add it to a block choice",
                )
        return count, stages

    def stage(self, i: int, each: Mapping[str, Any], own: Mapping[str, Any]) -> StageKnobs:
        def resolve(key: str, knob_type: KnobType, section: str = "", default: Any = None) -> Knob:
            """The knob ``key`` of stage ``i``: its own, else the one under each, else the default."""
            for scope, mapping, shareable in ((f"stage{i}", own, False), ("each", each, True)):
                if section:
                    known = (*BLOCK_KNOBS[section], "depth")
                    mapping = self.mapping(mapping.get(section), f"stages.{scope}.{section}", known)
                if key in mapping:
                    name = _join(section, key)
                    return self.knob(
                        mapping[key],
                        f"stages.{scope}.{name}",
                        knob_type,
                        f"stage{i}.{name}",
                        shareable=shareable and key not in _SELECTORS,
                    )
            if default is None:
                raise self.error(f"stages.each.{key}", f"is required (or give it in stages.stage{i}.{key})")
            return Knob(f"stages.each.{_join(section, key)}", None, Fixed(default))

        block = resolve("block", STAGE_KNOBS["block"])
        kinds = block.values_as(str)
        for kind in BLOCK_KNOBS:
            if kind in own and kind not in kinds:
                raise self.error(
                    f"stages.stage{i}.{kind}",
                    f"stage {i} never chooses block {kind} (its block is {block.distribution.describe()})",
                )
        blocks = {
            kind: {
                key: resolve(key, knob_type, kind, _block_default(kind, key))
                for key, knob_type in BLOCK_KNOBS[kind].items()
            }
            for kind in kinds
        }
        for kind in kinds:
            if any("depth" in (scope.get(kind) or {}) for scope in (own, each)):
                blocks[kind]["depth"] = resolve("depth", STAGE_KNOBS["depth"], kind)
        own_depths = all("depth" in knobs for knobs in blocks.values())
        depth = None if own_depths and "depth" not in (*own, *each) else resolve("depth", STAGE_KNOBS["depth"])
        for kind, knobs in blocks.items():
            self.check_block_knobs(kind, knobs)
        return StageKnobs(block=block, depth=depth, blocks=blocks)

    def transitions(self, value: Any, count: int) -> tuple[TransitionKnobs, ...]:
        overrides = [f"transition{i}" for i in range(1, count + 1)]
        value = self.mapping(value, "transitions", ("each", *overrides))
        each = self.mapping(value.get("each"), "transitions.each", TRANSITION_KNOBS)
        default = {"present": True, **{key: getattr(Transition(), key) for key in ("compression", "pooling")}}
        parts = []
        for i in range(1, count + 1):
            own = self.mapping(value.get(f"transition{i}"), f"transitions.transition{i}", TRANSITION_KNOBS)
            knobs = {}
            for key, knob_type in TRANSITION_KNOBS.items():
                if key in own:
                    knobs[key] = self.knob(
                        own[key], f"transitions.transition{i}.{key}", knob_type, f"transition{i}.{key}"
                    )
                else:
                    knobs[key] = self.knob(
                        each.get(key, default[key]),
                        f"transitions.each.{key}",
                        knob_type,
                        f"transition{i}.{key}",
                        shareable=key not in _SELECTORS,
                    )
            parts.append(TransitionKnobs(**knobs))
        return tuple(parts)

    # -- rules across knobs ------------------------------------------------------------

    def check_block_knobs(self, kind: str, knobs: Mapping[str, Knob]) -> None:
        """The block's own rule across its knobs (``BlockFamily.check_knobs``), for every value they allow."""
        check = BLOCKS[kind].check_knobs
        if check is None:
            return
        for knob in knobs.values():
            values = knob.count()
            if values is not None and values > MAX_CHECKED_VALUES:
                raise self.error(
                    knob.path,
                    f"a range of {values:,} values is too wide to check against the {kind} block's rule; "
                    f"at most {MAX_CHECKED_VALUES:,} values (narrow it or give it a step)",
                )
        problem = check(knobs)
        if problem is not None:
            raise self.error(*problem)

    def baselines(self, value: Any, space: Space) -> dict[str, Architecture]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error("baselines", f"expected a mapping of names to architectures, got {_show(value)}")
        found = {}
        for name, data in value.items():
            try:
                arch = Architecture.from_dict(data)
            except ArchitectureError as error:
                raise self.error(f"baselines.{name}", str(error)) from None
            try:
                space.params_for(arch)
            except SpaceError as error:
                where = str(error).removeprefix(f"{self.source}: ")
                raise self.error(f"baselines.{name}", f"not in the space: {where}") from None
            found[str(name)] = arch
        return found


def _block_default(kind: str, key: str) -> Any:
    return 1 if key == "stride" else getattr(BLOCKS[kind].spec(), key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list | dict) and not value:
        return f"an empty {type(value).__name__}"
    return show(value)
