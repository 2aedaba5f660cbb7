"""Channel counts and spatial sizes through an Architecture, without building it.

``trace`` is the single place where the shape rules live (each block family's
output-channel rule comes from the registry); the builder and the closed-form
counts both walk its steps, so they cannot disagree. It raises an
``ArchitectureError`` naming the part where a feature map would vanish.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.architecture import Architecture, ArchitectureError, Head, Stage, Stem, Transition
from evaluation.blocks import BLOCKS, BlockSpec
from evaluation.blocks._layers import transition_out_channels

__all__ = ["Step", "stage_out_channels", "trace"]

Size = tuple[int, int]


@dataclass(frozen=True)
class Step:
    """One part of the network with its input and output shape.

    ``name`` is the module name the builder uses (``stem``, ``stage1``,
    ``transition1``, ``head``); ``path`` is the field path in the Architecture.
    """

    name: str
    path: str
    part: Stem | Stage | Transition | Head
    in_channels: int
    out_channels: int
    in_size: Size
    out_size: Size

    @property
    def stage(self) -> Stage:
        """The part as a Stage, for a block family's tally, which only stage steps reach."""
        if not isinstance(self.part, Stage):
            raise TypeError(f"{self.path} is a {type(self.part).__name__}, not a stage")
        return self.part


def strided(size: Size, stride: int) -> Size:
    """Output size of a 3x3/pad-1, 7x7/pad-3, 3x3/pad-1 max pool or 1x1 conv with ``stride``."""
    return ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)


def stage_out_channels(block: BlockSpec, in_channels: int, depth: int) -> int:
    """Channels leaving a stage of ``depth`` units of ``block``: its family's rule."""
    return BLOCKS[block.kind].out_channels(in_channels, depth, **block.knobs())


def trace(arch: Architecture, input_size: tuple[int, int, int]) -> list[Step]:
    """The steps of ``arch`` for inputs of shape (C, H, W)."""
    channels, height, width = input_size
    if min(input_size) < 1:
        raise ArchitectureError(f"input size must be positive, got {input_size}")
    size: Size = (height, width)
    stem_out = strided(strided(size, 2), 2) if arch.stem.style == "imagenet" else size
    steps = [Step("stem", "stem", arch.stem, channels, arch.stem.width, size, stem_out)]
    channels, size = arch.stem.width, stem_out
    for i, stage in enumerate(arch.stages):
        path = f"stages[{i}]"
        check_input = BLOCKS[stage.block.kind].check_input
        problem = None if check_input is None else check_input(stage.block, channels)
        if problem is not None:
            raise ArchitectureError(f"{path}.{problem}")
        out_channels = stage_out_channels(stage.block, channels, stage.depth)
        out_size = strided(size, stage.stride)
        steps.append(Step(f"stage{i + 1}", path, stage, channels, out_channels, size, out_size))
        channels, size = out_channels, out_size
        transition = arch.transitions[i] if i < len(arch.transitions) else None
        if transition is None:
            continue
        path = f"transitions[{i}]"
        out_channels = transition_out_channels(channels, transition.compression)
        if out_channels < 1:
            raise ArchitectureError(f"{path}.compression {transition.compression} leaves no channels from {channels}")
        out_size = size if transition.pooling == "none" else (size[0] // 2, size[1] // 2)
        if min(out_size) < 1:
            raise ArchitectureError(
                f"{path}: feature map would shrink below 1x1 ({size[0]}x{size[1]} pooled "
                f"to {out_size[0]}x{out_size[1]}) for input {input_size[1]}x{input_size[2]}; "
                "use fewer stages, pooling none, or a larger input"
            )
        steps.append(Step(f"transition{i + 1}", path, transition, channels, out_channels, size, out_size))
        channels, size = out_channels, out_size
    steps.append(Step("head", "head", arch.head, channels, channels, size, (1, 1)))
    return steps
