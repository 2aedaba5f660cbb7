"""Parameters and MACs of an Architecture in closed form, with no model built.

Convention (fvcore's, and that of torchvision's published GFLOPS): one
multiply-accumulate counts as one MAC; only convolutions and linear layers are
counted. Batch norm, activations, pooling, element-wise adds and
concatenation are free. Used to refuse oversized architectures before any
memory is allocated, and checked against the built model in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from evaluation.architecture import (
    Architecture,
    DenseSpec,
    DualPathSpec,
    Head,
    ResidualDenseSpec,
    ResidualSpec,
    Stage,
    Stem,
    Transition,
)
from evaluation.shapes import Size, Step, strided, trace

__all__ = ["Counts", "count"]


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int


class _Tally:
    """Running totals; each method adds one layer. ``size`` is the layer's output H x W."""

    def __init__(self, bias: bool) -> None:
        self.bias = bias
        self.params = 0
        self.macs = 0

    def conv(self, cin: int, cout: int, kernel: int, size: Size, *, groups: int = 1) -> None:
        weights = cin // groups * cout * kernel * kernel
        self.params += weights + (cout if self.bias else 0)
        self.macs += weights * size[0] * size[1]

    def norm(self, channels: int) -> None:
        self.params += 2 * channels

    def linear(self, cin: int, cout: int) -> None:
        self.params += cin * cout + cout
        self.macs += cin * cout


def _stem(t: _Tally, stem: Stem, step: Step) -> None:
    kernel, stride = (7, 2) if stem.style == "imagenet" else (3, 1)
    t.conv(step.in_channels, stem.width, kernel, strided(step.in_size, stride))
    t.norm(stem.width)


def _dense(t: _Tally, spec: DenseSpec, stage: Stage, step: Step) -> None:
    k, size = spec.growth_rate, step.in_size
    for i in range(stage.depth):
        cin = step.in_channels + i * k
        t.norm(cin)
        if spec.bn_size:
            t.conv(cin, spec.bn_size * k, 1, size)
            t.norm(spec.bn_size * k)
            t.conv(spec.bn_size * k, k, 3, size)
        else:
            t.conv(cin, k, 3, size)


def _residual(t: _Tally, spec: ResidualSpec, stage: Stage, step: Step) -> None:
    w, out = spec.width, spec.width * spec.expansion
    cin, size = step.in_channels, step.out_size
    for i in range(stage.depth):
        if spec.unit == "bottleneck":
            t.conv(cin, w, 1, step.in_size if i == 0 else size)
            t.norm(w)
            t.conv(w, w, 3, size)
            t.norm(w)
            t.conv(w, out, 1, size)
        else:
            t.conv(cin, w, 3, size)
            t.norm(w)
            t.conv(w, w, 3, size)
        t.norm(out)
        if i == 0 and (stage.stride != 1 or cin != out):
            t.conv(cin, out, 1, size)
            t.norm(out)
        cin = out


def _preact_bottleneck(t: _Tally, cin: int, width: int, cout: int, size_in: Size, size_out: Size, groups: int = 1) -> None:
    t.norm(cin)
    t.conv(cin, width, 1, size_in)
    t.norm(width)
    t.conv(width, width, 3, size_out, groups=groups)
    t.norm(width)
    t.conv(width, cout, 1, size_out)


def _residual_dense(t: _Tally, spec: ResidualDenseSpec, stage: Stage, step: Step) -> None:
    for i in range(stage.depth):
        c = step.in_channels * 2**i
        _preact_bottleneck(t, c, c // spec.reduction, c, step.in_size, step.in_size)


def _dual_path(t: _Tally, spec: DualPathSpec, stage: Stage, step: Step) -> None:
    r, k = spec.width, spec.growth_rate
    t.norm(step.in_channels)
    t.conv(step.in_channels, r + 2 * k, 1, step.out_size)
    cin, size_in = step.in_channels, step.in_size
    for i in range(stage.depth):
        _preact_bottleneck(t, cin, spec.bottleneck_width, r + k, size_in, step.out_size, spec.groups)
        cin, size_in = r + (i + 3) * k, step.out_size


_STAGE_COUNTS: dict[str, Callable[[_Tally, object, Stage, Step], None]] = {
    "dense": _dense,
    "residual": _residual,
    "residual_dense": _residual_dense,
    "dual_path": _dual_path,
}


def count(arch: Architecture, input_size: tuple[int, int, int], num_classes: int) -> Counts:
    """Trainable parameters and MACs of ``arch`` for one input of shape (C, H, W)."""
    t = _Tally(arch.conv_bias)
    for step in trace(arch, input_size):
        part = step.part
        if isinstance(part, Stem):
            _stem(t, part, step)
        elif isinstance(part, Stage):
            _STAGE_COUNTS[part.block.kind](t, part.block, part, step)
        elif isinstance(part, Transition):
            t.norm(step.in_channels)
            t.conv(step.in_channels, step.out_channels, 1, step.in_size)
        elif isinstance(part, Head):
            if part.norm:
                t.norm(step.in_channels)
            t.linear(step.in_channels, num_classes)
    return Counts(params=t.params, macs=t.macs)
