"""Dual path stages (Chen et al., "Dual Path Networks", 2017): each unit's
bottleneck output splits into channels added to a residual path and channels
appended to a dense path, so one unit both refines and grows its features.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from evaluation.blocks._layers import conv1x1, norm_relu_conv, preact_bottleneck
from evaluation.blocks._registry import BlockFamily, BlockSpec, KnobValues, bounded, register_block

if TYPE_CHECKING:
    from evaluation.counts import Tally
    from evaluation.shapes import Step

__all__ = ["DualPathSpec", "DualPathUnit", "dual_path_out_channels", "dual_path_stage"]


@dataclass(frozen=True)
class DualPathSpec(BlockSpec):
    """Dual path network units: a pre-activation 1x1-3x3(grouped)-1x1
    bottleneck whose output is split into ``width`` channels added to the
    residual path and ``growth_rate`` channels concatenated to the dense path.
    The first unit of a stage projects its input to ``width + 2 * growth_rate``
    channels, as DPN does."""

    kind: ClassVar[str] = "dual_path"
    width: int = bounded(64, minimum=1)
    growth_rate: int = bounded(16, minimum=1)
    bottleneck_width: int = bounded(64, minimum=1)
    groups: int = bounded(1, minimum=1)

    def check(self) -> str | None:
        if self.bottleneck_width % self.groups:
            return f"bottleneck_width must be divisible by groups ({self.groups}), got {self.bottleneck_width}"
        return None


class DualPathUnit(nn.Module):
    """DPN unit: the bottleneck's output splits into ``width`` channels added to
    the residual path and ``growth_rate`` channels appended to the dense path.

    The first unit of a stage projects its input (BN-ReLU-Conv1x1, strided when
    the stage downsamples) to ``width + 2 * growth_rate`` channels, which then
    seed the residual and the dense path.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        width: int,
        growth_rate: int,
        bottleneck_width: int,
        groups: int,
        first: bool,
        stride: int,
        bias: bool,
    ) -> None:
        super().__init__()
        self.width = width
        self.projection = (
            norm_relu_conv(in_channels, conv1x1(in_channels, width + 2 * growth_rate, stride=stride, bias=bias))
            if first
            else None
        )
        self.body = preact_bottleneck(
            in_channels, bottleneck_width, width + growth_rate, stride=stride, groups=groups, bias=bias
        )

    def forward(self, x: Tensor) -> Tensor:
        paths = x if self.projection is None else self.projection(x)
        residual, dense = paths[:, : self.width], paths[:, self.width :]
        new = self.body(x)
        return torch.cat([residual + new[:, : self.width], dense, new[:, self.width :]], 1)


def dual_path_stage(
    in_channels: int,
    depth: int,
    stride: int,
    bias: bool,
    *,
    width: int,
    growth_rate: int,
    bottleneck_width: int,
    groups: int,
) -> nn.Module:
    """``depth`` units; the first projects (and strides), each adds ``growth_rate`` dense channels."""
    knobs = dict(width=width, growth_rate=growth_rate, bottleneck_width=bottleneck_width, groups=groups)
    units = [DualPathUnit(in_channels, **knobs, first=True, stride=stride, bias=bias)]
    for i in range(1, depth):
        channels = width + (i + 2) * growth_rate
        units.append(DualPathUnit(channels, **knobs, first=False, stride=1, bias=bias))
    return nn.Sequential(OrderedDict((f"unit{i + 1}", u) for i, u in enumerate(units)))


def dual_path_out_channels(in_channels: int, depth: int, *, width: int, growth_rate: int, **_: object) -> int:
    """The residual path plus the projection's and every unit's dense channels."""
    return width + (depth + 2) * growth_rate


def _tally(t: Tally, spec: DualPathSpec, step: Step) -> None:
    r, k = spec.width, spec.growth_rate
    t.norm(step.in_channels)
    t.conv(step.in_channels, r + 2 * k, 1, step.out_size)
    cin, size_in = step.in_channels, step.in_size
    for i in range(step.stage.depth):
        t.preact_bottleneck(cin, spec.bottleneck_width, r + k, size_in, step.out_size, groups=spec.groups)
        cin, size_in = r + (i + 3) * k, step.out_size


def _describe(spec: DualPathSpec) -> str:
    return f"w{spec.width} k{spec.growth_rate} b{spec.bottleneck_width} g{spec.groups}"


def _check_knobs(knobs: Mapping[str, KnobValues]) -> tuple[str, str] | None:
    """Grouped 3x3 convolutions need every groups value to divide every bottleneck_width."""
    groups, width = knobs["groups"], knobs["bottleneck_width"]
    widths = list(width.values())
    for g in groups.values():
        if any(w % g for w in widths):
            return groups.path, f"groups {g} does not divide every bottleneck_width ({width.path}: {width.describe()})"
    return None


register_block(
    BlockFamily(
        spec=DualPathSpec,
        stage=dual_path_stage,
        out_channels=dual_path_out_channels,
        tally=_tally,
        describe=_describe,
        units=(DualPathUnit,),
        downsamples=True,
        check_knobs=_check_knobs,
    )
)
