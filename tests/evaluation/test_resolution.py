"""The smallest input side an architecture can take."""

from __future__ import annotations

import pytest

from evaluation import (
    Architecture,
    ArchitectureError,
    Stage,
    Stem,
    preset,
    smallest_input_side,
)
from evaluation.blocks import DenseSpec

SMALL_STEM = Architecture(
    stem=Stem(style="small", width=8),
    stages=(Stage(DenseSpec(growth_rate=8, bn_size=0), depth=2),),
)


def test_smallest_input_side_resizes_only_networks_that_need_it() -> None:
    assert smallest_input_side(preset("d2l_densenet"), (1, 28, 28), 10) == 29, (
        "d2l's DenseNet needs 29 px at least (29, 15, 8, 4, 2, 1)"
    )
    assert smallest_input_side(SMALL_STEM, (1, 8, 8), 10) == 8, "a small-stem network keeps the native size"


def test_smallest_input_side_starts_from_the_larger_side() -> None:
    assert smallest_input_side(SMALL_STEM, (1, 8, 12), 10) == 12, "a square side never crops the longer edge"


def test_smallest_input_side_raises_the_error_of_the_native_size_when_nothing_fits() -> None:
    with pytest.raises(ArchitectureError):
        smallest_input_side(preset("d2l_densenet"), (1, 1, 1), 10)
