"""CSP dense stages (Wang et al., "CSPNet: A New Backbone that can Enhance
Learning Capability of CNN", 2020, the CSPDenseNet variant).

The stage's input is split along channels: a fraction ``split`` goes through
dense layers, the rest bypasses them; the two parts are concatenated and
fused. The paper compares where the 1x1 transitions sit (its Figure 3):
``fusion: both`` is CSPDenseNet itself, a partial transition on the dense
path and a fusion transition after the concatenation; ``first`` keeps only
the one after it ("fusion first"), ``last`` only the one before it ("fusion
last": the dense path's gradients are not reused by the bypass; the paper
found it kept accuracy at lower cost, where fusion first lost some). The transitions are BN-ReLU-Conv1x1 that keep
the width, so the stage leaves ``in_channels + depth * growth_rate`` channels
like a dense stage; downsampling is left to the architecture's transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from evaluation.blocks._layers import conv1x1, norm_relu_conv
from evaluation.blocks._registry import BlockFamily, BlockSpec, bounded, register_block
from evaluation.blocks.dense import DenseBlock, DenseLayer, tally_dense_layers

if TYPE_CHECKING:
    from evaluation.counts import Tally
    from evaluation.shapes import Step

__all__ = ["CSPDenseSpec", "CSPDenseStage", "csp_dense_out_channels", "csp_dense_stage"]

FUSIONS = ("both", "first", "last")


@dataclass(frozen=True)
class CSPDenseSpec(BlockSpec):
    """A dense path on ``split`` of the input channels (rounded down), the
    rest bypassing it; ``fusion`` places the 1x1 transitions (see the module)."""

    kind: ClassVar[str] = "csp_dense"
    split: float = bounded(0.5, minimum=0.0, maximum=1.0, minimum_open=True, maximum_open=True)
    growth_rate: int = bounded(32, minimum=1)
    bn_size: int = bounded(4, minimum=0)
    fusion: str = bounded("both", choices=FUSIONS)


def _transition(channels: int, bias: bool) -> nn.Sequential:
    """BN-ReLU-Conv1x1 keeping the width: CSPNet's partial and fusion transitions."""
    return norm_relu_conv(channels, conv1x1(channels, channels, bias=bias))


class CSPDenseStage(nn.Module):
    """Bypass part and dense part of the input, concatenated and fused."""

    def __init__(
        self,
        in_channels: int,
        depth: int,
        *,
        split: float,
        growth_rate: int,
        bn_size: int,
        fusion: str,
        bias: bool,
    ) -> None:
        super().__init__()
        dense_channels = int(in_channels * split)
        self.bypass_channels = in_channels - dense_channels
        dense_out = dense_channels + depth * growth_rate
        self.dense = DenseBlock(dense_channels, depth, growth_rate=growth_rate, bn_size=bn_size, bias=bias)
        self.partial_transition = _transition(dense_out, bias) if fusion in ("both", "last") else None
        self.fusion_transition = (
            _transition(self.bypass_channels + dense_out, bias) if fusion in ("both", "first") else None
        )

    def forward(self, x: Tensor) -> Tensor:
        bypass, dense = x[:, : self.bypass_channels], x[:, self.bypass_channels :]
        out = self.dense(dense)
        if self.partial_transition is not None:
            out = self.partial_transition(out)
        out = torch.cat([bypass, out], 1)
        if self.fusion_transition is not None:
            out = self.fusion_transition(out)
        return out


def csp_dense_stage(
    in_channels: int,
    depth: int,
    stride: int,
    bias: bool,
    *,
    split: float,
    growth_rate: int,
    bn_size: int,
    fusion: str,
) -> nn.Module:
    """A CSP dense stage; it never strides (a transition downsamples)."""
    return CSPDenseStage(
        in_channels, depth, split=split, growth_rate=growth_rate, bn_size=bn_size, fusion=fusion, bias=bias
    )


def csp_dense_out_channels(in_channels: int, depth: int, *, growth_rate: int, **_: object) -> int:
    """Both parts together, the dense one grown by ``growth_rate`` per layer."""
    return in_channels + depth * growth_rate


def _check_input(spec: CSPDenseSpec, in_channels: int) -> str | None:
    if int(in_channels * spec.split) < 1:
        return f"split {spec.split:g} leaves no channels for the dense path of {in_channels} input channels"
    return None


def _tally(t: Tally, spec: CSPDenseSpec, step: Step) -> None:
    dense_channels = int(step.in_channels * spec.split)
    depth = step.stage.depth
    tally_dense_layers(t, dense_channels, depth, spec.growth_rate, spec.bn_size, step)
    dense_out = dense_channels + depth * spec.growth_rate
    for channels, present in ((dense_out, spec.fusion != "first"), (step.out_channels, spec.fusion != "last")):
        if present:
            t.norm(channels)
            t.conv(channels, channels, 1, step.in_size)


def _describe(spec: CSPDenseSpec) -> str:
    bottleneck = f" bn{spec.bn_size}" if spec.bn_size else " plain"
    return f"k{spec.growth_rate}{bottleneck} split {spec.split:g}, fusion {spec.fusion}"


register_block(
    BlockFamily(
        spec=CSPDenseSpec,
        stage=csp_dense_stage,
        out_channels=csp_dense_out_channels,
        tally=_tally,
        describe=_describe,
        units=(DenseLayer, DenseBlock, _transition, CSPDenseStage),
        check_input=_check_input,
    )
)
