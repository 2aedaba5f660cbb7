"""Random valid architectures build, train a step, and match their closed-form counts."""

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from evaluation import (
    Architecture,
    ArchitectureError,
    Head,
    Stage,
    Stem,
    Transition,
    build_model,
    count,
)
from evaluation.blocks import BLOCKS, BlockFamily, Bounds, field_bounds, field_types
from evaluation.profile import count_macs_torch

# Field values near each bound the spec declares: small ints from the minimum
# up, floats on a coarse grid, every choice; specs that break their own rule
# across fields (DualPathSpec's groups) are filtered out.
FLOAT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def field_values(kind: type, bounds: Bounds) -> st.SearchStrategy:
    if kind is bool:
        return st.booleans()
    if bounds.choices is not None:
        return st.sampled_from(bounds.choices)
    if kind is int:
        low = int(bounds.minimum or 0) + (1 if bounds.minimum_open else 0)
        return st.integers(low, low + 7)
    return st.sampled_from([v for v in FLOAT_GRID if bounds.holds(v)])


def spec_strategy(family: BlockFamily) -> st.SearchStrategy:
    bounds = field_bounds(family.spec)
    fields = {name: field_values(kind, bounds[name]) for name, kind in field_types(family.spec).items()}
    return st.builds(family.spec, **fields).filter(lambda spec: spec.check() is None)


blocks = st.one_of(*(spec_strategy(family) for family in BLOCKS.values()))


@st.composite
def stages(draw) -> Stage:
    block = draw(blocks)
    stride = draw(st.sampled_from([1, 2])) if BLOCKS[block.kind].downsamples else 1
    return Stage(block=block, depth=draw(st.integers(1, 3)), stride=stride)


@st.composite
def architectures(draw) -> Architecture:
    body = draw(st.lists(stages(), min_size=1, max_size=3))
    transitions = draw(
        st.lists(
            st.none()
            | st.builds(
                Transition,
                compression=st.sampled_from([0.25, 0.5, 1.0]),
                pooling=st.sampled_from(["avg", "max", "none"]),
            ),
            min_size=len(body) - 1,
            max_size=len(body) - 1,
        )
    )
    return Architecture(
        stem=Stem(style=draw(st.sampled_from(["small", "imagenet"])), width=draw(st.integers(2, 12))),
        stages=tuple(body),
        transitions=tuple(transitions),
        head=Head(norm=draw(st.booleans())),
        conv_bias=draw(st.booleans()),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=architectures(), channels=st.integers(1, 3), side=st.integers(4, 20), classes=st.integers(2, 5))
def test_random_architecture_builds_runs_and_matches_closed_form(arch, channels, side, classes):
    input_size = (channels, side, side)
    try:
        formula = count(arch, input_size, classes)
    except ArchitectureError:
        assume(False)  # vanishing feature map: refused before building, tested elsewhere
    model = build_model(arch, (channels, side, side), classes)
    out = model(torch.randn(2, *input_size))
    assert out.shape == (2, classes), f"output shape {tuple(out.shape)} for {arch}"
    out.sum().backward()
    params = sum(p.numel() for p in model.parameters())
    assert params == formula.params, f"built {params} parameters, closed form says {formula.params}: {arch}"
    macs = count_macs_torch(model, input_size)
    assert macs == formula.macs, f"FlopCounterMode says {macs} MACs, closed form {formula.macs}: {arch}"


@settings(max_examples=40, deadline=None)
@given(arch=architectures())
def test_random_architecture_round_trips_through_dict(arch):
    assert Architecture.from_dict(arch.to_dict()) == arch, "to_dict/from_dict must be lossless"
