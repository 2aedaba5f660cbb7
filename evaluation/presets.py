"""Named architectures, in the same Architecture language as searched ones.

A registry of factories: ``@register_preset`` adds one, ``preset(name)``
returns it, an unknown name fails with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Callable

from evaluation.architecture import Architecture, ArchitectureError, Head, Stage, Stem, Transition
from evaluation.blocks import DenseSpec, ResidualDenseSpec, ResidualSpec

__all__ = ["PRESETS", "preset", "preset_names", "register_preset"]

PRESETS: dict[str, Callable[[], Architecture]] = {}


def register_preset(factory: Callable[[], Architecture]) -> Callable[[], Architecture]:
    """Register ``factory`` under its function name."""
    PRESETS[factory.__name__] = factory
    return factory


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset(name: str) -> Architecture:
    """The named architecture; ``ArchitectureError`` lists the names if unknown."""
    if name not in PRESETS:
        raise ArchitectureError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    return PRESETS[name]()


def _torchvision_densenet(growth_rate: int, block_config: tuple[int, ...], width: int) -> Architecture:
    """DenseNet-BC as torchvision builds it (Huang et al., 2017): bn_size 4,
    transitions halving channels with 2x2 average pooling, BN-ReLU head."""
    return Architecture(
        stem=Stem(style="imagenet", width=width),
        stages=tuple(Stage(block=DenseSpec(growth_rate=growth_rate, bn_size=4), depth=depth) for depth in block_config),
        transitions=(Transition(compression=0.5, pooling="avg"),) * (len(block_config) - 1),
        head=Head(norm=True),
    )


def _torchvision_resnet(unit: str, layers: tuple[int, ...]) -> Architecture:
    """ResNet as torchvision builds it (He et al., 2016): widths 64-512,
    stages 2-4 downsample in their first unit, no transitions, no head norm."""
    return Architecture(
        stem=Stem(style="imagenet", width=64),
        stages=tuple(
            Stage(block=ResidualSpec(unit=unit, width=64 * 2**i), depth=depth, stride=1 if i == 0 else 2)
            for i, depth in enumerate(layers)
        ),
        transitions=(None,) * (len(layers) - 1),
        head=Head(norm=False),
    )


@register_preset
def densenet121() -> Architecture:
    return _torchvision_densenet(32, (6, 12, 24, 16), 64)


@register_preset
def densenet161() -> Architecture:
    return _torchvision_densenet(48, (6, 12, 36, 24), 96)


@register_preset
def densenet169() -> Architecture:
    return _torchvision_densenet(32, (6, 12, 32, 32), 64)


@register_preset
def densenet201() -> Architecture:
    return _torchvision_densenet(32, (6, 12, 48, 32), 64)


@register_preset
def resnet18() -> Architecture:
    return _torchvision_resnet("basic", (2, 2, 2, 2))


@register_preset
def resnet34() -> Architecture:
    return _torchvision_resnet("basic", (3, 4, 6, 3))


@register_preset
def resnet50() -> Architecture:
    return _torchvision_resnet("bottleneck", (3, 4, 6, 3))


@register_preset
def d2l_densenet() -> Architecture:
    """The d2l book's DenseNet for Fashion-MNIST (Dive into Deep Learning, 8.7):
    64-wide 7x7/2 stem with max pool, four blocks of 4 plain BN-ReLU-Conv3x3
    layers of growth 32, transitions halving channels and size, BN-ReLU head.
    The book keeps PyTorch's default conv biases."""
    return Architecture(
        stem=Stem(style="imagenet", width=64),
        stages=(Stage(block=DenseSpec(growth_rate=32, bn_size=0), depth=4),) * 4,
        transitions=(Transition(compression=0.5, pooling="avg"),) * 3,
        head=Head(norm=True),
        conv_bias=True,
    )


@register_preset
def densenet_residual_hybrid() -> Architecture:
    """The residual-dense hybrid: 64-wide ImageNet stem, four residual_dense
    stages of 2, 4, 3, 2 units, transitions with compression 0.5 and average
    pooling, BN-ReLU after the last stage, convolutions without bias."""
    return Architecture(
        stem=Stem(style="imagenet", width=64),
        stages=tuple(Stage(block=ResidualDenseSpec(), depth=d) for d in (2, 4, 3, 2)),
        transitions=(Transition(compression=0.5, pooling="avg"),) * 3,
        head=Head(norm=True),
        conv_bias=False,
    )
