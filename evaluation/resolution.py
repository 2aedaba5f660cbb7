"""The input resolution an architecture needs, found by the closed-form count.

Networks with an ImageNet stem downsample so fast that small images vanish
before the head; the command line resizes to the smallest side they can take
instead of refusing them.
"""

from __future__ import annotations

from evaluation.architecture import Architecture
from evaluation.counts import count
from evaluation.errors import ArchitectureError

__all__ = ["smallest_input_side"]

# Sides are tried up to this multiple of the input's: far beyond what any stem needs.
_MAX_UPSCALE = 16


def smallest_input_side(arch: Architecture, input_size: tuple[int, int, int], num_classes: int) -> int:
    """The smallest square side, from the input's larger side up, that ``arch`` can take.

    ``input_size`` is ``(C, H, W)`` as ``count`` and ``build_model`` take it.
    ImageNet-stem networks such as the d2l DenseNet halve 28 px to nothing (the
    book resizes to 96 px for this reason); 29 px is their floor. When no side
    fits, the ``ArchitectureError`` for the input's own side is raised.
    """
    channels, height, width = input_size
    side = max(height, width)
    for candidate in range(side, _MAX_UPSCALE * side + 1):
        try:
            count(arch, (channels, candidate, candidate), num_classes)
        except ArchitectureError:
            continue
        return candidate
    count(arch, (channels, side, side), num_classes)  # raises the error for the input's own side
    raise AssertionError("unreachable: count raised above")
