import json

import pytest
import yaml

from evaluation import (
    Architecture,
    ArchitectureError,
    Stage,
    Stem,
    Transition,
    build_model,
    preset,
    preset_names,
)
from evaluation.blocks import BLOCKS, DenseSpec, DualPathSpec, ResidualSpec


@pytest.mark.parametrize("name", preset_names())
def test_architecture_round_trip_is_lossless(name):
    arch = preset(name)
    through_json = Architecture.from_dict(json.loads(json.dumps(arch.to_dict())))
    through_yaml = Architecture.from_dict(yaml.safe_load(yaml.safe_dump(arch.to_dict())))
    assert through_json == arch, f"{name}: JSON round trip changed the architecture"
    assert through_yaml == arch, f"{name}: YAML round trip changed the architecture"


def _small(**changes) -> dict:
    data = Architecture(
        stem=Stem(style="small", width=8),
        stages=(Stage(DenseSpec(growth_rate=4, bn_size=2), depth=2), Stage(ResidualSpec(width=8), depth=1)),
        transitions=(Transition(),),
    ).to_dict()
    for path, value in changes.items():
        target = data
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stages.0.depth": 0}, "stages[0].depth must be >= 1, got 0"),
        ({"stages.0.growth_rate": -4}, "stages[0].growth_rate must be >= 1, got -4"),
        ({"stages.1.block": "inception"}, f"stages[1].block must be one of {', '.join(BLOCKS)}, got 'inception'"),
        ({"transitions.0.pooling": "l2"}, "transitions[0].pooling must be one of avg, max, none, got 'l2'"),
        ({"transitions.0.compression": 0.0}, "transitions[0].compression must be in (0, 1], got 0.0"),
        ({"stem.style": "huge"}, "stem.style must be one of imagenet, small, got 'huge'"),
        ({"stages.0.depth": "2"}, "stages[0].depth must be int, got '2'"),
        ({"stages.0.depth": True}, "stages[0].depth must be int, got True"),
        (
            {"stages.0.width": 8},
            "stages[0].width is not a known key; expected one of bn_size, dropout, growth_rate, memory_efficient",
        ),
        ({"stages.0.stride": 2}, "stages[0].stride must be 1 for dense blocks (downsample with a transition), got 2"),
        ({"stages": []}, "stages must hold at least 1 stage, got 0"),
        (
            {"transitions": []},
            "transitions must have 1 entries (one between each pair of stages, null for none), got 0",
        ),
        ({"head.colour": "red"}, "head.colour is not a known key; expected one of dropout, norm"),
    ],
)
def test_architecture_from_dict_names_the_field(changes, message):
    with pytest.raises(ArchitectureError) as error:
        Architecture.from_dict(_small(**changes))
    assert str(error.value) == message, f"for {changes}: got {error.value}"


def test_build_model_refuses_vanishing_feature_map_naming_the_transition():
    arch = Architecture(
        stem=Stem(style="imagenet", width=8),
        stages=(Stage(DenseSpec(growth_rate=4, bn_size=0), depth=1),) * 4,
        transitions=(Transition(pooling="max"),) * 3,
    )
    with pytest.raises(
        ArchitectureError, match=r"^transitions\[2\]: feature map would shrink below 1x1 \(1x1 pooled to 0x0\)"
    ):
        build_model(arch, (1, 28, 28), 10)
    model = build_model(arch, (1, 64, 64), 10)
    assert model is not None, "the same architecture builds for 64x64 inputs"


def test_dual_path_groups_must_divide_bottleneck():
    with pytest.raises(
        ArchitectureError, match=r"stages\[0\].bottleneck_width must be divisible by groups \(3\), got 16"
    ):
        Architecture(stages=(Stage(DualPathSpec(bottleneck_width=16, groups=3), depth=1),))


def test_memory_efficient_needs_bottleneck():
    with pytest.raises(ArchitectureError, match=r"stages\[0\].memory_efficient needs a bottleneck"):
        Architecture(stages=(Stage(DenseSpec(bn_size=0, memory_efficient=True), depth=1),))
