"""Residual-dense stages: a pre-activation bottleneck residual unit whose
result is concatenated with its input, ``cat(x, x + F(x))``: the unit keeps
its input (dense connectivity) and adds a refined copy (residual learning),
so every unit doubles the channels.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from evaluation.blocks._layers import preact_bottleneck
from evaluation.blocks._registry import BlockFamily, BlockSpec, bounded, register_block

if TYPE_CHECKING:
    from evaluation.counts import Tally
    from evaluation.shapes import Step

__all__ = ["ResidualDenseSpec", "ResidualDenseUnit", "residual_dense_out_channels", "residual_dense_stage"]


@dataclass(frozen=True)
class ResidualDenseSpec(BlockSpec):
    """The residual-dense hybrid: a pre-activation bottleneck residual unit
    (BN-ReLU-1x1 to c/``reduction``, BN-ReLU-3x3, BN-ReLU-1x1 back to c)
    whose output is concatenated with its input, doubling the channels."""

    kind: ClassVar[str] = "residual_dense"
    reduction: int = bounded(4, minimum=1)


class ResidualDenseUnit(nn.Module):
    """``cat(x, x + F(x))`` with F a pre-activation bottleneck to ``channels // reduction``."""

    def __init__(self, channels: int, *, reduction: int, bias: bool) -> None:
        super().__init__()
        self.body = preact_bottleneck(channels, channels // reduction, channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, x + self.body(x)], 1)


def residual_dense_stage(in_channels: int, depth: int, stride: int, bias: bool, *, reduction: int) -> nn.Module:
    """``depth`` units, each on twice the channels of the one before; never strides."""
    units = [ResidualDenseUnit(in_channels * 2**i, reduction=reduction, bias=bias) for i in range(depth)]
    return nn.Sequential(OrderedDict((f"unit{i + 1}", u) for i, u in enumerate(units)))


def residual_dense_out_channels(in_channels: int, depth: int, *, reduction: int) -> int:
    """Each unit doubles its input."""
    return in_channels * 2**depth


def _check_input(spec: ResidualDenseSpec, in_channels: int) -> str | None:
    if in_channels // spec.reduction < 1:
        return f"reduction {spec.reduction} leaves no bottleneck channels for {in_channels} input channels"
    return None


def _tally(t: Tally, spec: ResidualDenseSpec, step: Step) -> None:
    for i in range(step.stage.depth):
        c = step.in_channels * 2**i
        t.preact_bottleneck(c, c // spec.reduction, c, step.in_size, step.in_size)


def _describe(spec: ResidualDenseSpec) -> str:
    return f"r{spec.reduction}"


register_block(
    BlockFamily(
        spec=ResidualDenseSpec,
        stage=residual_dense_stage,
        out_channels=residual_dense_out_channels,
        tally=_tally,
        describe=_describe,
        units=(ResidualDenseUnit,),
        check_input=_check_input,
    )
)
