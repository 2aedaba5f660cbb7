"""The source of a Python file that builds one architecture with torch alone.

The file is not a second implementation: it is the source of the shared
layers (``evaluation/blocks/_layers.py`` below its marker) and of the units,
stage builders and channel rules of the block families the architecture uses,
copied as they are, then the architecture as a dict literal and a
``build_model()``. Module names and parameter order are ``build_model``'s,
so weights saved by the search tool load into it unchanged.
"""

from __future__ import annotations

import inspect
import pprint
from typing import Any

from evaluation.architecture import Architecture
from evaluation.blocks import BLOCKS, _layers

__all__ = ["standalone_source"]

_MARKER = "# --- standalone: everything below is copied verbatim by the standalone export ---\n"
_HEADER = '''\
"""A network found by the densenet-search toolkit, with nothing but torch.

``build_model()`` returns it randomly initialised; load a state_dict saved by
the toolkit (``weights.pt``) to use trained weights.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn
'''


def standalone_source(architecture: Architecture | dict[str, Any], in_channels: int, num_classes: int) -> str:
    """A Python file whose ``build_model()`` builds ``architecture`` for ``in_channels`` and ``num_classes``."""
    arch = architecture if isinstance(architecture, Architecture) else Architecture.from_dict(architecture)
    kinds = list(dict.fromkeys(stage.block.kind for stage in arch.stages))
    layers = inspect.getsource(_layers)
    parts = [_HEADER, layers[layers.index(_MARKER) + len(_MARKER) :].rstrip() + "\n"]
    copied: set[int] = set()
    for kind in kinds:
        family = BLOCKS[kind]
        for obj in (*family.units, family.stage, family.out_channels):
            if id(obj) not in copied:
                copied.add(id(obj))
                parts.append(inspect.getsource(obj))
    stages = ", ".join(
        f"{kind!r}: ({BLOCKS[kind].stage.__name__}, {BLOCKS[kind].out_channels.__name__})" for kind in kinds
    )
    parts.append(
        f"STAGES = {{{stages}}}\n"
        f"ARCHITECTURE = {pprint.pformat(arch.to_dict(), sort_dicts=False)}\n"
        f"IN_CHANNELS = {in_channels}\n"
        f"NUM_CLASSES = {num_classes}\n"
    )
    parts.append(
        "def build_model() -> nn.Sequential:\n"
        '    """The exported network, randomly initialised; load its state_dict to use trained weights."""\n'
        "    return nn.Sequential(assemble(ARCHITECTURE, IN_CHANNELS, NUM_CLASSES, STAGES))\n"
    )
    return "\n\n".join(parts)
