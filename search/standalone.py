"""A searched model with nothing but torch: the source that ``export --format python`` copies.

This module imports only torch, so its text is written out as it is, followed
by the architecture as a dict literal and a ``build_model()`` that calls
``build``. Module names and parameter order equal ``evaluation.build_model``'s,
so weights saved from the search tool load into it unchanged (tests check
equal outputs). Memory-efficient checkpointing is left out: the arithmetic is
the same.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=bias)


def _pre_act(cin: int, width: int, cout: int, stride: int, groups: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        norm1=nn.BatchNorm2d(cin), relu1=nn.ReLU(inplace=True), conv1=_conv(cin, width, 1, bias=bias),
        norm2=nn.BatchNorm2d(width), relu2=nn.ReLU(inplace=True), conv2=_conv(width, width, 3, stride, groups, bias),
        norm3=nn.BatchNorm2d(width), relu3=nn.ReLU(inplace=True), conv3=_conv(width, cout, 1, bias=bias),
    ))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.bottleneck, self.dropout = bn_size > 0, dropout
        if self.bottleneck:
            self.conv1 = _conv(cin, bn_size * growth, 1, bias=bias)
            self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True)
            self.conv2 = _conv(bn_size * growth, growth, 3, bias=bias)
        else:
            self.conv1 = _conv(cin, growth, 3, bias=bias)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        if self.bottleneck:
            out = self.conv2(self.relu2(self.norm2(out)))
        return F.dropout(out, p=self.dropout, training=self.training) if self.dropout else out


class DenseBlock(nn.ModuleDict):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class ResidualUnit(nn.Module):
    def __init__(self, cin: int, width: int, bottleneck: bool, stride: int, bias: bool) -> None:
        super().__init__()
        cout = width * (4 if bottleneck else 1)
        self.bottleneck = bottleneck
        self.relu = nn.ReLU(inplace=True)
        if bottleneck:
            self.conv1, self.bn1 = _conv(cin, width, 1, bias=bias), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = _conv(width, width, 3, stride, bias=bias), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = _conv(width, cout, 1, bias=bias), nn.BatchNorm2d(cout)
        else:
            self.conv1, self.bn1 = _conv(cin, width, 3, stride, bias=bias), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = _conv(width, width, 3, bias=bias), nn.BatchNorm2d(width)
        self.downsample = (
            nn.Sequential(_conv(cin, cout, 1, stride, bias=bias), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        if self.bottleneck:
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
        else:
            out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResidualDenseUnit(nn.Module):
    def __init__(self, channels: int, reduction: int, bias: bool) -> None:
        super().__init__()
        self.body = _pre_act(channels, channels // reduction, channels, 1, 1, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x + self.body(x)], 1)


class DualPathUnit(nn.Module):
    def __init__(self, cin: int, knobs: dict[str, Any], first: bool, stride: int, bias: bool) -> None:
        super().__init__()
        width, growth = knobs["width"], knobs["growth_rate"]
        self.width = width
        self.projection = nn.Sequential(OrderedDict(
            norm=nn.BatchNorm2d(cin), relu=nn.ReLU(inplace=True), conv=_conv(cin, width + 2 * growth, 1, stride, bias=bias),
        )) if first else None
        self.body = _pre_act(cin, knobs["bottleneck_width"], width + growth, stride, knobs["groups"], bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = x if self.projection is None else self.projection(x)
        new = self.body(x)
        w = self.width
        return torch.cat([paths[:, :w] + new[:, :w], paths[:, w:], new[:, w:]], 1)


def _stage(stage: dict[str, Any], cin: int, bias: bool) -> tuple[nn.Module, int]:
    kind, depth, stride = stage["block"], stage["depth"], stage.get("stride", 1)
    if kind == "dense":
        k = stage["growth_rate"]
        block = DenseBlock()
        for i in range(depth):
            block[f"unit{i + 1}"] = DenseLayer(cin + i * k, k, stage["bn_size"], stage["dropout"], bias)
        return block, cin + depth * k
    units: list[nn.Module] = []
    if kind == "residual":
        cout = stage["width"] * (4 if stage["unit"] == "bottleneck" else 1)
        for i in range(depth):
            units.append(ResidualUnit(cin if i == 0 else cout, stage["width"], stage["unit"] == "bottleneck", stride if i == 0 else 1, bias))
    elif kind == "residual_dense":
        cout = cin * 2**depth
        units = [ResidualDenseUnit(cin * 2**i, stage["reduction"], bias) for i in range(depth)]
    elif kind == "dual_path":
        width, k = stage["width"], stage["growth_rate"]
        cout = width + (depth + 2) * k
        units = [DualPathUnit(cin if i == 0 else width + (i + 2) * k, stage, i == 0, stride if i == 0 else 1, bias) for i in range(depth)]
    else:
        raise ValueError(f"unknown block {kind!r}")
    return nn.Sequential(OrderedDict((f"unit{i + 1}", u) for i, u in enumerate(units))), cout


def build(architecture: dict[str, Any], in_channels: int, num_classes: int) -> nn.Sequential:
    """The network described by ``architecture`` (``Architecture.to_dict()`` form)."""
    bias = architecture.get("conv_bias", False)
    stem = architecture["stem"]
    imagenet = stem["style"] == "imagenet"
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["stem"] = nn.Sequential(OrderedDict(
        conv=_conv(in_channels, stem["width"], 7 if imagenet else 3, 2 if imagenet else 1, bias=bias),
        norm=nn.BatchNorm2d(stem["width"]), relu=nn.ReLU(inplace=True),
        pool=nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity(),
    ))
    channels = stem["width"]
    transitions = architecture.get("transitions", [])
    for i, stage in enumerate(architecture["stages"]):
        layers[f"stage{i + 1}"], channels = _stage(stage, channels, bias)
        transition = transitions[i] if i < len(transitions) else None
        if transition is not None:
            out = int(channels * transition["compression"])
            pool = {"avg": nn.AvgPool2d(2, 2), "max": nn.MaxPool2d(2, 2), "none": nn.Identity()}[transition["pooling"]]
            layers[f"transition{i + 1}"] = nn.Sequential(OrderedDict(
                norm=nn.BatchNorm2d(channels), relu=nn.ReLU(inplace=True), conv=_conv(channels, out, 1, bias=bias), pool=pool,
            ))
            channels = out
    head = architecture["head"]
    head_layers: list[tuple[str, nn.Module]] = []
    if head["norm"]:
        head_layers += [("norm", nn.BatchNorm2d(channels)), ("relu", nn.ReLU(inplace=True))]
    head_layers += [
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten(1)),
        ("dropout", nn.Dropout(head["dropout"]) if head["dropout"] else nn.Identity()),
        ("classifier", nn.Linear(channels, num_classes)),
    ]
    layers["head"] = nn.Sequential(OrderedDict(head_layers))
    return nn.Sequential(layers)
