"""Parameters and MACs of an Architecture in closed form, with no model built.

Convention (fvcore's, and that of torchvision's published GFLOPS): one
multiply-accumulate counts as one MAC; only convolutions and linear layers are
counted. Batch norm, activations, pooling, element-wise adds and
concatenation are free. Used to refuse oversized architectures before any
memory is allocated, and checked against the built model in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.architecture import Architecture, Head, Stage, Stem, Transition
from evaluation.blocks import BLOCKS
from evaluation.shapes import Size, Step, strided, trace

__all__ = ["Counts", "Tally", "count", "tally"]


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int


class Tally:
    """Running totals; each method adds one layer. ``size`` is the layer's output H x W.

    Block families add their stages through these methods (``BlockFamily.tally``).
    ``feature_elements`` sums, over convolutions, the elements of the input and
    the output at the output's resolution, and over norms their channels, for
    one image: the base of ``evaluation.memory``'s activation estimate.
    """

    def __init__(self, bias: bool) -> None:
        self.bias = bias
        self.params = 0
        self.macs = 0
        self.feature_elements = 0

    def conv(self, cin: int, cout: int, kernel: int, size: Size, *, groups: int = 1) -> None:
        weights = cin // groups * cout * kernel * kernel
        self.params += weights + (cout if self.bias else 0)
        self.macs += weights * size[0] * size[1]
        self.feature_elements += (cin + cout) * size[0] * size[1]

    def norm(self, channels: int) -> None:
        self.params += 2 * channels
        self.feature_elements += channels  # the saved mean and inverse deviation, counted per image

    def linear(self, cin: int, cout: int) -> None:
        self.params += cin * cout + cout
        self.macs += cin * cout

    def preact_bottleneck(
        self, cin: int, width: int, cout: int, size_in: Size, size_out: Size, *, groups: int = 1
    ) -> None:
        """BN-ReLU-1x1, BN-ReLU-3x3 (grouped, maybe strided), BN-ReLU-1x1."""
        self.norm(cin)
        self.conv(cin, width, 1, size_in)
        self.norm(width)
        self.conv(width, width, 3, size_out, groups=groups)
        self.norm(width)
        self.conv(width, cout, 1, size_out)


def _stem(t: Tally, stem: Stem, step: Step) -> None:
    kernel, stride = (7, 2) if stem.style == "imagenet" else (3, 1)
    t.conv(step.in_channels, stem.width, kernel, strided(step.in_size, stride))
    t.norm(stem.width)


def count(arch: Architecture, input_size: tuple[int, int, int], num_classes: int) -> Counts:
    """Trainable parameters and MACs of ``arch`` for one input of shape (C, H, W)."""
    t = tally(arch, input_size, num_classes)
    return Counts(params=t.params, macs=t.macs)


def tally(arch: Architecture, input_size: tuple[int, int, int], num_classes: int) -> Tally:
    """Every layer of ``arch`` added up, for one input of shape (C, H, W)."""
    t = Tally(arch.conv_bias)
    for step in trace(arch, input_size):
        part = step.part
        if isinstance(part, Stem):
            _stem(t, part, step)
        elif isinstance(part, Stage):
            BLOCKS[part.block.kind].tally(t, part.block, step)
        elif isinstance(part, Transition):
            t.norm(step.in_channels)
            t.conv(step.in_channels, step.out_channels, 1, step.in_size)
        elif isinstance(part, Head):
            if part.norm:
                t.norm(step.in_channels)
            t.linear(step.in_channels, num_classes)
    return t
