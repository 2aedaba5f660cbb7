"""The layers every network shares: convolution helpers, stems, transitions,
heads, poolings, and ``assemble``, which puts a network together from its
dict form.

Everything below the marker is plain torch and is copied verbatim into the
files ``search export --format python`` writes, beside the units of the
blocks the exported network uses; ``build_model`` calls the same code, so the
exported model is this one, not a second implementation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

__all__ = [
    "POOLING_LAYERS",
    "StageFunctions",
    "assemble",
    "conv1x1",
    "conv3x3",
    "make_head",
    "make_stem",
    "make_transition",
    "norm_relu_conv",
    "preact_bottleneck",
    "transition_out_channels",
]

# --- standalone: everything below is copied verbatim by the standalone export ---


def conv1x1(in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=bias)


def conv3x3(in_channels: int, out_channels: int, *, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1, so stride 1 keeps the spatial size."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, groups=groups, bias=bias)


def norm_relu_conv(in_channels: int, conv: nn.Conv2d) -> nn.Sequential:
    """BN-ReLU-``conv``: DenseNet's pre-activation composite function (transitions, projections)."""
    return nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(in_channels), relu=nn.ReLU(inplace=True), conv=conv))


def preact_bottleneck(
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


# Poolings a transition may end with, all 2x2/2 but "none", which keeps the
# spatial size: the transition then only compresses channels, which lets small
# inputs (28x28) afford more stages than halvings.
POOLING_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "avg": lambda: nn.AvgPool2d(kernel_size=2, stride=2),
    "max": lambda: nn.MaxPool2d(kernel_size=2, stride=2),
    "none": nn.Identity,
}


def make_stem(in_channels: int, *, style: str, width: int, bias: bool) -> nn.Sequential:
    """ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) or small-image stem (3x3/1)."""
    if style == "imagenet":
        conv = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=bias)
        pool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    else:
        conv = conv3x3(in_channels, width, bias=bias)
        pool = nn.Identity()
    return nn.Sequential(OrderedDict(conv=conv, norm=nn.BatchNorm2d(width), relu=nn.ReLU(inplace=True), pool=pool))


def transition_out_channels(in_channels: int, compression: float) -> int:
    """Channels a transition keeps: ``compression`` of its input, rounded down."""
    return int(in_channels * compression)


def make_transition(in_channels: int, *, compression: float, pooling: str, bias: bool) -> nn.Sequential:
    """DenseNet transition: BN-ReLU-Conv1x1 compression, then the chosen pooling."""
    out_channels = transition_out_channels(in_channels, compression)
    layers = norm_relu_conv(in_channels, conv1x1(in_channels, out_channels, bias=bias))
    layers.add_module("pool", POOLING_LAYERS[pooling]())
    return layers


def make_head(in_channels: int, num_classes: int, *, norm: bool, dropout: float) -> nn.Sequential:
    """Optional BN-ReLU, global average pool, dropout, linear classifier."""
    layers: list[tuple[str, nn.Module]] = []
    if norm:
        layers += [("norm", nn.BatchNorm2d(in_channels)), ("relu", nn.ReLU(inplace=True))]
    layers += [
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten(1)),
        ("dropout", nn.Dropout(dropout) if dropout else nn.Identity()),
        ("classifier", nn.Linear(in_channels, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


# block kind -> (stage builder, output-channel rule), as the block families register them
StageFunctions = Mapping[str, tuple[Callable[..., nn.Module], Callable[..., int]]]


def assemble(
    architecture: Mapping[str, Any], in_channels: int, num_classes: int, stages: StageFunctions
) -> OrderedDict[str, nn.Module]:
    """The layers of the network ``architecture`` describes (``Architecture.to_dict()`` form).

    Names are ``stem``, ``stage1``, ``transition1``, ..., ``head``, so
    state-dict keys and per-module tables read like the architecture.
    """
    bias = architecture.get("conv_bias", False)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["stem"] = make_stem(in_channels, **architecture["stem"], bias=bias)
    channels = architecture["stem"]["width"]
    transitions = architecture.get("transitions", [])
    for i, stage in enumerate(architecture["stages"]):
        knobs = {key: value for key, value in stage.items() if key not in ("block", "depth", "stride")}
        build, out_channels = stages[stage["block"]]
        layers[f"stage{i + 1}"] = build(channels, stage["depth"], stage.get("stride", 1), bias, **knobs)
        channels = out_channels(channels, stage["depth"], **knobs)
        transition = transitions[i] if i < len(transitions) else None
        if transition is not None:
            layers[f"transition{i + 1}"] = make_transition(channels, **transition, bias=bias)
            channels = transition_out_channels(channels, transition["compression"])
    layers["head"] = make_head(channels, num_classes, **architecture["head"])
    return layers
