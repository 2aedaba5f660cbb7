"""Block families, one module each, registered in ``BLOCKS`` on import.

Adding a family is adding a module beside these (spec with bounds, units,
stage builder, output-channel rule, tally, description; see
``_registry.BlockFamily``) and one import line here; the language, shapes,
builder, counts, space files, descriptions and standalone export follow.
"""

from evaluation.blocks._layers import POOLING_LAYERS, conv1x1, conv3x3
from evaluation.blocks._registry import (
    BLOCKS,
    BlockFamily,
    BlockSpec,
    Bounds,
    KnobValues,
    block_family,
    bounded,
    field_bounds,
    field_types,
    has_type,
    register_block,
)
from evaluation.blocks.csp_dense import CSPDenseSpec
from evaluation.blocks.dense import DenseSpec
from evaluation.blocks.dual_path import DualPathSpec
from evaluation.blocks.residual import ResidualSpec
from evaluation.blocks.residual_dense import ResidualDenseSpec

__all__ = [
    "BLOCKS",
    "POOLING_LAYERS",
    "BlockFamily",
    "BlockSpec",
    "Bounds",
    "CSPDenseSpec",
    "DenseSpec",
    "DualPathSpec",
    "KnobValues",
    "ResidualDenseSpec",
    "ResidualSpec",
    "block_family",
    "bounded",
    "conv1x1",
    "conv3x3",
    "field_bounds",
    "field_types",
    "has_type",
    "register_block",
]
