"""ResNet stages (He et al., 2016), post-activation as torchvision's: basic
units (two 3x3 convs) or bottleneck units (1x1-3x3-1x1, expansion 4).

Submodule names are torchvision's (``conv1``/``bn1``/``downsample``) so that
its weights load unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor, nn

from evaluation.blocks._layers import conv1x1, conv3x3
from evaluation.blocks._registry import BlockFamily, BlockSpec, bounded, register_block

if TYPE_CHECKING:
    from evaluation.counts import Tally
    from evaluation.shapes import Step

__all__ = [
    "ResidualBasicUnit",
    "ResidualBottleneckUnit",
    "ResidualSpec",
    "residual_out_channels",
    "residual_stage",
]


@dataclass(frozen=True)
class ResidualSpec(BlockSpec):
    """ResNet units (post-activation, as torchvision): ``basic`` is two 3x3
    convs with ``width`` channels; ``bottleneck`` is 1x1-3x3-1x1 with output
    ``4 * width``. A strided or widening first unit gets a 1x1 projection."""

    kind: ClassVar[str] = "residual"
    unit: str = bounded("basic", choices=("basic", "bottleneck"))
    width: int = bounded(64, minimum=1)

    @property
    def expansion(self) -> int:
        return 4 if self.unit == "bottleneck" else 1


def _projection(in_channels: int, out_channels: int, stride: int, bias: bool) -> nn.Module | None:
    """ResNet's 1x1 projection shortcut, needed when the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(conv1x1(in_channels, out_channels, stride=stride, bias=bias), nn.BatchNorm2d(out_channels))


class ResidualBasicUnit(nn.Module):
    """ResNet basic unit: conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, *, stride: int, bias: bool) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride=stride, bias=bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _projection(in_channels, width, stride, bias)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResidualBottleneckUnit(nn.Module):
    """ResNet bottleneck unit 1x1-3x3-1x1 with expansion 4; the stride sits on
    the 3x3 conv ("ResNet v1.5", as torchvision)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, *, stride: int, bias: bool) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv1x1(in_channels, width, bias=bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride=stride, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels, bias=bias)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_channels, out_channels, stride, bias)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def residual_stage(in_channels: int, depth: int, stride: int, bias: bool, *, unit: str, width: int) -> nn.Module:
    """``depth`` units; the first strides and projects when the shape changes."""
    block = ResidualBottleneckUnit if unit == "bottleneck" else ResidualBasicUnit
    out_channels = width * block.expansion
    units = [block(in_channels, width, stride=stride, bias=bias)]
    units += [block(out_channels, width, stride=1, bias=bias) for _ in range(depth - 1)]
    return nn.Sequential(OrderedDict((f"unit{i + 1}", u) for i, u in enumerate(units)))


def residual_out_channels(in_channels: int, depth: int, *, unit: str, width: int) -> int:
    """``width``, times 4 for bottleneck units."""
    return width * (4 if unit == "bottleneck" else 1)


def _tally(t: Tally, spec: ResidualSpec, step: Step) -> None:
    stage = step.stage
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


def _describe(spec: ResidualSpec) -> str:
    return f"{spec.unit} w{spec.width}"


register_block(
    BlockFamily(
        spec=ResidualSpec,
        stage=residual_stage,
        out_channels=residual_out_channels,
        tally=_tally,
        describe=_describe,
        units=(_projection, ResidualBasicUnit, ResidualBottleneckUnit),
        downsamples=True,
    )
)
