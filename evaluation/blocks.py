"""The building blocks: dense, residual, residual-dense and dual-path units,
transitions, stems and heads, as small ``nn.Module``s.

Submodule names follow torchvision (``norm1``/``conv1`` in dense layers,
``conv1``/``bn1``/``downsample`` in residual units) so that state-dict keys and
per-module FLOP tables read the same as theirs. Each block type registers a
stage factory in ``STAGE_BUILDERS``; each pooling in ``POOLING_LAYERS``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from evaluation.architecture import (
    BlockSpec,
    DenseSpec,
    DualPathSpec,
    Head,
    ResidualDenseSpec,
    ResidualSpec,
    Stem,
    Transition,
)

__all__ = [
    "DenseBlock",
    "DenseLayer",
    "DualPathUnit",
    "POOLING_LAYERS",
    "ResidualBasicUnit",
    "ResidualBottleneckUnit",
    "ResidualDenseUnit",
    "STAGE_BUILDERS",
    "conv1x1",
    "conv3x3",
    "make_head",
    "make_stem",
    "make_transition",
]


def conv1x1(in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=bias)


def conv3x3(
    in_channels: int, out_channels: int, *, stride: int = 1, groups: int = 1, bias: bool = False
) -> nn.Conv2d:
    """3x3 convolution with padding 1, so stride 1 keeps the spatial size."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size=3, stride=stride, padding=1, groups=groups, bias=bias
    )


def _norm_relu_conv(in_channels: int, conv: nn.Conv2d) -> list[tuple[str, nn.Module]]:
    return [("norm", nn.BatchNorm2d(in_channels)), ("relu", nn.ReLU(inplace=True)), ("conv", conv)]


# --- poolings -------------------------------------------------------------

POOLING_LAYERS: dict[str, Callable[[], nn.Module]] = {}


def register_pooling(name: str) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register a transition pooling under ``name``; all halve H and W but ``none``."""

    def register(factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        POOLING_LAYERS[name] = factory
        return factory

    return register


@register_pooling("avg")
def _avg_pool() -> nn.Module:
    return nn.AvgPool2d(kernel_size=2, stride=2)


@register_pooling("max")
def _max_pool() -> nn.Module:
    return nn.MaxPool2d(kernel_size=2, stride=2)


@register_pooling("none")
def _no_pool() -> nn.Module:
    return nn.Identity()


# --- stem, transition, head ----------------------------------------------


def make_stem(stem: Stem, in_channels: int, *, bias: bool) -> nn.Sequential:
    """ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) or small-image stem (3x3/1)."""
    if stem.style == "imagenet":
        conv = nn.Conv2d(in_channels, stem.width, kernel_size=7, stride=2, padding=3, bias=bias)
        pool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    else:
        conv = conv3x3(in_channels, stem.width, bias=bias)
        pool = nn.Identity()
    return nn.Sequential(
        OrderedDict(
            conv=conv, norm=nn.BatchNorm2d(stem.width), relu=nn.ReLU(inplace=True), pool=pool
        )
    )


def make_transition(
    transition: Transition, in_channels: int, out_channels: int, *, bias: bool
) -> nn.Sequential:
    """DenseNet transition: BN-ReLU-Conv1x1 compression, then the chosen pooling."""
    layers = _norm_relu_conv(in_channels, conv1x1(in_channels, out_channels, bias=bias))
    return nn.Sequential(OrderedDict([*layers, ("pool", POOLING_LAYERS[transition.pooling]())]))


def make_head(head: Head, in_channels: int, num_classes: int) -> nn.Sequential:
    """Optional BN-ReLU, global average pool, dropout, linear classifier."""
    layers: list[tuple[str, nn.Module]] = []
    if head.norm:
        layers += [("norm", nn.BatchNorm2d(in_channels)), ("relu", nn.ReLU(inplace=True))]
    layers += [
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("dropout", nn.Dropout(head.dropout) if head.dropout else nn.Identity()),
        ("classifier", nn.Linear(in_channels, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


# --- dense ------------------------------------------------------------------


class DenseLayer(nn.Module):
    """One DenseNet layer: new ``growth_rate`` feature maps from all earlier ones.

    With ``bn_size`` > 0 it is DenseNet-BC's BN-ReLU-Conv1x1 bottleneck then
    BN-ReLU-Conv3x3 (torchvision's ``_DenseLayer``); with 0 it is the plain
    BN-ReLU-Conv3x3 of the d2l book. Like torchvision it takes the list of
    earlier feature maps and concatenates inside the bottleneck, so that the
    memory-efficient variant can recompute concatenation, BN and the 1x1 conv
    in the backward pass instead of storing them (Pleiss et al., 2017).
    """

    def __init__(self, in_channels: int, spec: DenseSpec, *, bias: bool) -> None:
        super().__init__()
        growth = spec.growth_rate
        if spec.bn_size > 0:
            width = spec.bn_size * growth
            self.norm1 = nn.BatchNorm2d(in_channels)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = conv1x1(in_channels, width, bias=bias)
            self.norm2 = nn.BatchNorm2d(width)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(width, growth, bias=bias)
        else:
            self.norm1 = nn.BatchNorm2d(in_channels)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = conv3x3(in_channels, growth, bias=bias)
        self.bottleneck = spec.bn_size > 0
        self.dropout = spec.dropout
        self.memory_efficient = spec.memory_efficient

    def _first_conv(self, *features: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    def forward(self, features: list[Tensor]) -> Tensor:
        if self.memory_efficient and self.training and any(f.requires_grad for f in features):
            out = cp.checkpoint(self._first_conv, *features, use_reentrant=False)
        else:
            out = self._first_conv(*features)
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        if self.dropout:
            out = F.dropout(out, p=self.dropout, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``depth`` dense layers; the output concatenates the input and every layer's features."""

    def __init__(self, in_channels: int, depth: int, spec: DenseSpec, *, bias: bool) -> None:
        super().__init__()
        for i in range(depth):
            layer = DenseLayer(in_channels + i * spec.growth_rate, spec, bias=bias)
            self.add_module(f"unit{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


# --- residual ---------------------------------------------------------------


def _projection(in_channels: int, out_channels: int, stride: int, bias: bool) -> nn.Module | None:
    """ResNet's 1x1 projection shortcut, needed when the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        conv1x1(in_channels, out_channels, stride=stride, bias=bias), nn.BatchNorm2d(out_channels)
    )


class ResidualBasicUnit(nn.Module):
    """ResNet basic unit: conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU."""

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


# --- hybrids ------------------------------------------------------------------


def _preact_bottleneck(
    in_channels: int,
    width: int,
    out_channels: int,
    *,
    stride: int = 1,
    groups: int = 1,
    bias: bool,
) -> nn.Sequential:
    """BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1 (He et al., 2016, identity mappings)."""
    return nn.Sequential(
        OrderedDict(
            norm1=nn.BatchNorm2d(in_channels),
            relu1=nn.ReLU(inplace=True),
            conv1=conv1x1(in_channels, width, bias=bias),
            norm2=nn.BatchNorm2d(width),
            relu2=nn.ReLU(inplace=True),
            conv2=conv3x3(width, width, stride=stride, groups=groups, bias=bias),
            norm3=nn.BatchNorm2d(width),
            relu3=nn.ReLU(inplace=True),
            conv3=conv1x1(width, out_channels, bias=bias),
        )
    )


class ResidualDenseUnit(nn.Module):
    """Residual unit whose result is concatenated with its input: cat(x, x + F(x)).

    F is a pre-activation bottleneck to ``channels // reduction``; the unit
    keeps the input (dense connectivity) and adds a refined copy (residual
    learning), so it doubles the channel count.
    """

    def __init__(self, channels: int, spec: ResidualDenseSpec, *, bias: bool) -> None:
        super().__init__()
        self.body = _preact_bottleneck(channels, channels // spec.reduction, channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, x + self.body(x)], 1)


class DualPathUnit(nn.Module):
    """DPN unit: the bottleneck's output splits into ``width`` channels added to
    the residual path and ``growth_rate`` channels appended to the dense path.

    The first unit of a stage projects its input (BN-ReLU-Conv1x1, strided when
    the stage downsamples) to ``width + 2 * growth_rate`` channels, which then
    seed the residual and the dense path (Chen et al., 2017).
    """

    def __init__(
        self, in_channels: int, spec: DualPathSpec, *, first: bool, stride: int, bias: bool
    ) -> None:
        super().__init__()
        self.width = spec.width
        self.projection = (
            nn.Sequential(
                OrderedDict(
                    _norm_relu_conv(
                        in_channels,
                        conv1x1(in_channels, spec.width + 2 * spec.growth_rate, stride=stride, bias=bias),
                    )
                )
            )
            if first
            else None
        )
        self.body = _preact_bottleneck(
            in_channels,
            spec.bottleneck_width,
            spec.width + spec.growth_rate,
            stride=stride,
            groups=spec.groups,
            bias=bias,
        )

    def forward(self, x: Tensor) -> Tensor:
        paths = x if self.projection is None else self.projection(x)
        residual, dense = paths[:, : self.width], paths[:, self.width :]
        new = self.body(x)
        return torch.cat([residual + new[:, : self.width], dense, new[:, self.width :]], 1)


# --- stages -----------------------------------------------------------------

StageBuilder = Callable[..., nn.Module]
STAGE_BUILDERS: dict[str, StageBuilder] = {}


def register_stage(kind: str) -> Callable[[StageBuilder], StageBuilder]:
    """Register how a stage of block ``kind`` is built (see ``build_stage``)."""

    def register(builder: StageBuilder) -> StageBuilder:
        STAGE_BUILDERS[kind] = builder
        return builder

    return register


def _units(units: list[nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict((f"unit{i + 1}", unit) for i, unit in enumerate(units)))


@register_stage("dense")
def _dense_stage(spec: DenseSpec, in_channels: int, depth: int, stride: int, bias: bool) -> nn.Module:
    return DenseBlock(in_channels, depth, spec, bias=bias)


@register_stage("residual")
def _residual_stage(
    spec: ResidualSpec, in_channels: int, depth: int, stride: int, bias: bool
) -> nn.Module:
    unit = ResidualBottleneckUnit if spec.unit == "bottleneck" else ResidualBasicUnit
    out_channels = spec.width * spec.expansion
    return _units(
        [unit(in_channels, spec.width, stride=stride, bias=bias)]
        + [unit(out_channels, spec.width, stride=1, bias=bias) for _ in range(depth - 1)]
    )


@register_stage("residual_dense")
def _residual_dense_stage(
    spec: ResidualDenseSpec, in_channels: int, depth: int, stride: int, bias: bool
) -> nn.Module:
    return _units([ResidualDenseUnit(in_channels * 2**i, spec, bias=bias) for i in range(depth)])


@register_stage("dual_path")
def _dual_path_stage(
    spec: DualPathSpec, in_channels: int, depth: int, stride: int, bias: bool
) -> nn.Module:
    units = [DualPathUnit(in_channels, spec, first=True, stride=stride, bias=bias)]
    for i in range(1, depth):
        channels = spec.width + (i + 2) * spec.growth_rate
        units.append(DualPathUnit(channels, spec, first=False, stride=1, bias=bias))
    return _units(units)


def build_stage(spec: BlockSpec, in_channels: int, depth: int, *, stride: int, bias: bool) -> nn.Module:
    """The module for one stage of ``depth`` units of block ``spec``."""
    return STAGE_BUILDERS[spec.kind](spec, in_channels, depth, stride, bias)
