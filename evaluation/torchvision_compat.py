"""Load torchvision DenseNet and ResNet weights into the matching preset model.

Our networks name their parts ``stem``, ``stageN.unitM``, ``transitionN`` and
``head``; inside units the names are torchvision's own. So a handful of
renaming rules map every torchvision key, and loading is strict: every tensor
of the state_dict is used and every tensor of the model is filled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from torch import Tensor, nn

__all__ = ["load_torchvision_state_dict", "torchvision_key"]

# (pattern, replacement) applied in order; the first that matches wins.
_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # DenseNet
    (re.compile(r"^features\.conv0\."), "stem.conv."),
    (re.compile(r"^features\.norm0\."), "stem.norm."),
    (re.compile(r"^features\.denseblock(\d+)\.denselayer(\d+)\."), r"stage\1.unit\2."),
    (re.compile(r"^features\.transition(\d+)\."), r"transition\1."),
    (re.compile(r"^features\.norm5\."), "head.norm."),
    (re.compile(r"^classifier\."), "head.classifier."),
    # ResNet: torchvision numbers units from 0 in a Sequential, we from 1.
    (re.compile(r"^conv1\."), "stem.conv."),
    (re.compile(r"^bn1\."), "stem.norm."),
    (re.compile(r"^layer(\d+)\.(\d+)\."), lambda m: f"stage{m[1]}.unit{int(m[2]) + 1}."),
    (re.compile(r"^fc\."), "head.classifier."),
]


def torchvision_key(key: str) -> str:
    """Our name for the torchvision state-dict ``key``."""
    for pattern, replacement in _RULES:
        renamed, found = pattern.subn(replacement, key, count=1)
        if found:
            return renamed
    raise KeyError(f"no rule maps torchvision key {key!r}")


def load_torchvision_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Load a torchvision DenseNet/ResNet ``state_dict`` into ``model`` (strictly)."""
    model.load_state_dict({torchvision_key(k): v for k, v in state_dict.items()}, strict=True)
