"""``build_model``: an Architecture becomes an ``nn.Module``.

The network is an ``nn.Sequential`` of ``stem``, ``stage1``, ``transition1``,
..., ``head``, so state-dict keys and per-module tables stay readable. Shapes
come from ``evaluation.shapes.trace``, which refuses an architecture whose
feature map would vanish before any layer is allocated.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from evaluation.architecture import Architecture, Stage, Stem, Transition
from evaluation.blocks import build_stage, make_head, make_stem, make_transition
from evaluation.shapes import trace

__all__ = ["Network", "build_model"]


class Network(nn.Sequential):
    """The built model; ``architecture`` is the plain data it was built from."""

    def __init__(self, architecture: Architecture, layers: OrderedDict[str, nn.Module]) -> None:
        super().__init__(layers)
        self.architecture = architecture


def build_model(arch: Architecture, input_size: tuple[int, int, int], num_classes: int) -> Network:
    """Build ``arch`` for inputs of shape (C, H, W) and ``num_classes`` outputs.

    Takes its arguments as ``count`` does. H and W are only used to refuse
    architectures whose feature map would shrink below 1x1; the model itself
    accepts any size that works.
    """
    bias = arch.conv_bias
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for step in trace(arch, input_size):
        part = step.part
        if isinstance(part, Stem):
            layers[step.name] = make_stem(part, step.in_channels, bias=bias)
        elif isinstance(part, Stage):
            layers[step.name] = build_stage(
                part.block, step.in_channels, part.depth, stride=part.stride, bias=bias
            )
        elif isinstance(part, Transition):
            layers[step.name] = make_transition(part, step.in_channels, step.out_channels, bias=bias)
        else:
            layers[step.name] = make_head(part, step.in_channels, num_classes)
    model = Network(arch, layers)
    _initialise(model)
    return model


def _initialise(model: nn.Module) -> None:
    """He initialisation for convolutions (He et al., 2015, as torchvision's
    ResNet), unit scale and zero shift for BN, zero classifier bias."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
