"""``build_model``: an Architecture becomes an ``nn.Module``.

The network is an ``nn.Sequential`` of ``stem``, ``stage1``, ``transition1``,
..., ``head``, so state-dict keys and per-module tables stay readable.
``evaluation.shapes.trace`` runs first and refuses an architecture whose
feature map would vanish before any layer is allocated; then the layers are
assembled by the same torch-only code the standalone export copies.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from evaluation.architecture import Architecture
from evaluation.blocks import BLOCKS
from evaluation.blocks._layers import assemble
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
    trace(arch, input_size)
    stages = {kind: (family.stage, family.out_channels) for kind, family in BLOCKS.items()}
    model = Network(arch, assemble(arch.to_dict(), input_size[0], num_classes, stages))
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
