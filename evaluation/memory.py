"""Training memory of an Architecture in closed form, to refuse a model before it is built.

A dense stage of depth 5000 and growth 4096 at 224 px grows a process past
20 GB before the kernel kills it; this estimate needs no tensor at all, so
``search profile``, ``search train`` and every search trial call
``check_memory`` first and refuse what cannot fit, in one line.

The estimate is meant to be an upper bound of one training step in fp32:

- weights, gradients and optimizer state: ``BYTES_PER_PARAMETER`` = 16 (fp32
  weight and gradient, two state slots as Adam keeps; SGD with momentum keeps one);
- activations saved for backward: for every convolution, its input and its
  output at the output's resolution (``Tally.feature_elements``), times
  ``SAVED_PER_FEATURE`` = 2 (BN keeps the convolution's output, the next
  convolution BN's; DenseNet's concatenation is rebuilt in every layer and
  lands in the layer's input); plus every part's input once (the batch itself,
  what poolings, additions and the head keep); 4 bytes each, times the batch;
- during backward, ``BACKWARD_COPIES`` = 3 times the saved activations (their
  gradients, and the blocks the allocator keeps).

Measured (``tests/evaluation/test_memory.py`` and peak RSS of two SGD steps
in a fresh process): the activation term is 1.3x to 1.9x autograd's saved
tensors (``evaluation.profile.activation_bytes``) on the presets, never
below them on random architectures; the total is 1.3x (resnet18, 64 px,
batch 32) to 2.3x (resnet50, 128 px, batch 8) the growth of peak RSS.
Memory-efficient dense layers and bf16 autocast keep less, so it only grows
more conservative there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evaluation.architecture import Architecture
from evaluation.counts import tally
from evaluation.errors import ToolkitError
from evaluation.shapes import trace

__all__ = ["MemoryEstimate", "MemoryRefused", "check_memory", "estimate_memory", "machine_memory_bytes"]

BYTES_PER_PARAMETER = 16
SAVED_PER_FEATURE = 2
BYTES_PER_ELEMENT = 4  # fp32
# The backward pass holds the gradients of the activations beside them, and the CPU
# allocator keeps freed blocks: peak RSS of a step measured 1.4x to 3.5x the saved tensors.
BACKWARD_COPIES = 3
GB = 1e9


class MemoryRefused(ToolkitError):
    """A model whose estimated training memory exceeds the limit; nothing was built."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step: ``state`` (weights, gradients, optimizer), ``activations``
    (the batch's tensors saved for backward), ``total`` (with the backward pass's copies)."""

    params: int
    state: int
    activations: int

    @property
    def total(self) -> int:
        return self.state + BACKWARD_COPIES * self.activations


def estimate_memory(
    arch: Architecture, input_size: tuple[int, int, int], num_classes: int, *, batch_size: int
) -> MemoryEstimate:
    """The conservative training memory of ``arch`` for batches of ``batch_size`` inputs (C, H, W)."""
    t = tally(arch, input_size, num_classes)
    # Each part's input once more: what poolings, additions and the head keep between convolutions.
    between = sum(step.in_channels * step.in_size[0] * step.in_size[1] for step in trace(arch, input_size))
    batch_elements = SAVED_PER_FEATURE * t.feature_elements + between
    return MemoryEstimate(
        params=t.params,
        state=t.params * BYTES_PER_PARAMETER,
        activations=batch_elements * batch_size * BYTES_PER_ELEMENT,
    )


def machine_memory_bytes(device: str = "cpu") -> int:
    """Memory a model may use on ``device``: the CUDA device's total, else the RAM (or the cgroup's limit)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info(torch.device(device))[1]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min(ram, _cgroup_limit() or ram)


def _cgroup_limit() -> int | None:
    """cgroup v2's ``memory.max`` for this process, when one is set (containers, CI runners)."""
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def check_memory(
    arch: Architecture,
    input_size: tuple[int, int, int],
    num_classes: int,
    *,
    batch_size: int,
    limit_bytes: float | None = None,
    device: str = "cpu",
) -> MemoryEstimate:
    """The estimate, or ``MemoryRefused`` when it exceeds ``limit_bytes`` (default: the machine's memory)."""
    limit = machine_memory_bytes(device) if limit_bytes is None else limit_bytes
    estimate = estimate_memory(arch, input_size, num_classes, batch_size=batch_size)
    if estimate.total > limit:
        what = (
            f"an estimated {estimate.total / GB:,.1f} GB ({estimate.params:,} parameters: "
            f"{estimate.state / GB:,.1f} GB with gradients and optimizer state; activations in backward {BACKWARD_COPIES * estimate.activations / GB:,.1f} GB)"
        )
        shape = "x".join(map(str, input_size))
        raise MemoryRefused(
            f"training this model at batch {batch_size} on {shape} inputs needs {what}, more than the "
            f"{limit / GB:,.1f} GB limit; not built (raise the limit with --memory-limit GB, or shrink the model or batch)"
        )
    return estimate
