"""DenseNet stages (Huang et al., 2017): every layer adds ``growth_rate`` feature
maps, concatenated to all the earlier ones.

Submodule names follow torchvision's ``_DenseLayer`` (``norm1``/``conv1``/
``norm2``/``conv2``) so that its weights load and per-module tables read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from evaluation.blocks._layers import conv1x1, conv3x3
from evaluation.blocks._registry import BlockFamily, BlockSpec, KnobValues, bounded, register_block

if TYPE_CHECKING:
    from evaluation.counts import Tally
    from evaluation.shapes import Step

__all__ = ["DenseBlock", "DenseLayer", "DenseSpec", "dense_out_channels", "dense_stage"]


@dataclass(frozen=True)
class DenseSpec(BlockSpec):
    """DenseNet layers: each adds ``growth_rate`` channels by concatenation.

    ``bn_size`` 0 is the plain BN-ReLU-Conv3x3 layer of the d2l book; k > 0 puts
    a BN-ReLU-Conv1x1 bottleneck to ``k * growth_rate`` channels first, as in
    DenseNet-BC and torchvision. ``memory_efficient`` recomputes that
    bottleneck in the backward pass instead of storing it.
    """

    kind: ClassVar[str] = "dense"
    growth_rate: int = bounded(32, minimum=1)
    bn_size: int = bounded(4, minimum=0)
    dropout: float = bounded(0.0, minimum=0.0, maximum=1.0, maximum_open=True)
    memory_efficient: bool = False

    def check(self) -> str | None:
        if self.memory_efficient and self.bn_size == 0:
            return f"memory_efficient needs a bottleneck (bn_size > 0), got bn_size {self.bn_size}"
        return None


class DenseLayer(nn.Module):
    """One DenseNet layer: new ``growth_rate`` feature maps from all earlier ones.

    With ``bn_size`` > 0 it is DenseNet-BC's BN-ReLU-Conv1x1 bottleneck then
    BN-ReLU-Conv3x3 (torchvision's ``_DenseLayer``); with 0 it is the plain
    BN-ReLU-Conv3x3 of the d2l book. Like torchvision it takes the list of
    earlier feature maps and concatenates inside the bottleneck, so that the
    memory-efficient variant can recompute concatenation, BN and the 1x1 conv
    in the backward pass instead of storing them (Pleiss et al., 2017).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        growth_rate: int,
        bn_size: int,
        dropout: float,
        memory_efficient: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        if bn_size > 0:
            width = bn_size * growth_rate
            self.conv1 = conv1x1(in_channels, width, bias=bias)
            self.norm2 = nn.BatchNorm2d(width)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(width, growth_rate, bias=bias)
        else:
            self.conv1 = conv3x3(in_channels, growth_rate, bias=bias)
        self.bottleneck = bn_size > 0
        self.dropout = dropout
        self.memory_efficient = memory_efficient

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

    def __init__(
        self,
        in_channels: int,
        depth: int,
        *,
        growth_rate: int,
        bn_size: int,
        dropout: float = 0.0,
        memory_efficient: bool = False,
        bias: bool,
    ) -> None:
        super().__init__()
        for i in range(depth):
            layer = DenseLayer(
                in_channels + i * growth_rate,
                growth_rate=growth_rate,
                bn_size=bn_size,
                dropout=dropout,
                memory_efficient=memory_efficient,
                bias=bias,
            )
            self.add_module(f"unit{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


def dense_stage(
    in_channels: int,
    depth: int,
    stride: int,
    bias: bool,
    *,
    growth_rate: int,
    bn_size: int,
    dropout: float,
    memory_efficient: bool,
) -> nn.Module:
    """A dense stage; it never strides (a transition downsamples)."""
    return DenseBlock(
        in_channels,
        depth,
        growth_rate=growth_rate,
        bn_size=bn_size,
        dropout=dropout,
        memory_efficient=memory_efficient,
        bias=bias,
    )


def dense_out_channels(in_channels: int, depth: int, *, growth_rate: int, **_: object) -> int:
    """The input plus ``growth_rate`` new maps per layer."""
    return in_channels + depth * growth_rate


def tally_dense_layers(t: Tally, in_channels: int, depth: int, growth_rate: int, bn_size: int, step: Step) -> None:
    """Params and MACs of ``depth`` dense layers on maps of the stage's input size."""
    size = step.in_size
    for i in range(depth):
        cin = in_channels + i * growth_rate
        t.norm(cin)
        if bn_size:
            t.conv(cin, bn_size * growth_rate, 1, size)
            t.norm(bn_size * growth_rate)
            t.conv(bn_size * growth_rate, growth_rate, 3, size)
        else:
            t.conv(cin, growth_rate, 3, size)


def _tally(t: Tally, spec: DenseSpec, step: Step) -> None:
    tally_dense_layers(t, step.in_channels, step.stage.depth, spec.growth_rate, spec.bn_size, step)


def _describe(spec: DenseSpec) -> str:
    return f"k{spec.growth_rate}" + (f" bn{spec.bn_size}" if spec.bn_size else " plain")


def _check_knobs(knobs: Mapping[str, KnobValues]) -> tuple[str, str] | None:
    """A memory-efficient dense layer recomputes its bottleneck, so it needs one."""
    flag, bn_size = knobs["memory_efficient"], knobs["bn_size"]
    if flag.contains(True) and bn_size.contains(0):
        return (
            flag.path,
            f"memory_efficient may be true while bn_size may be 0 ({bn_size.path}); it needs bn_size > 0",
        )
    return None


register_block(
    BlockFamily(
        spec=DenseSpec,
        stage=dense_stage,
        out_channels=dense_out_channels,
        tally=_tally,
        describe=_describe,
        units=(DenseLayer, DenseBlock),
        check_knobs=_check_knobs,
    )
)
