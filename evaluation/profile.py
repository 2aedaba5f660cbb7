"""Profile a model: parameters, MACs (two independent counters), latency, memory.

MACs follow fvcore's convention (one fused multiply-add is one MAC) and count
convolutions and linear layers only, as torchvision's published GFLOPS do:
batch norm, activations, pooling, element-wise adds and concatenation are not
counted. fvcore would count batch norm and adaptive pooling by default, so
its analysis is given only its convolution and matrix-product handlers. ``macs_torch`` is the same quantity from
torch's own ``FlopCounterMode`` (which counts FLOPs, 2 per MAC), halved.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["Profile", "activation_bytes", "count_macs", "count_macs_torch", "measure_latency_ms", "profile_model"]


@dataclass(frozen=True)
class Profile:
    params: int
    macs: int
    macs_torch: int
    latency_ms: float
    latency_batch_ms: float
    latency_batch_size: int
    activation_mb: float
    peak_train_mb: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _example(model: nn.Module, input_size: tuple[int, int, int], batch_size: int) -> torch.Tensor:
    parameter = next(model.parameters())
    return torch.randn(batch_size, *input_size, device=parameter.device)


def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """MACs of one forward pass on one input, by fvcore (eval mode)."""
    with warnings.catch_warnings():
        # fvcore's import runs torch.jit.script, which torch 2.14 deprecates.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis, jit_handles

    mac_handles = {
        "aten::_convolution": jit_handles.conv_flop_jit,
        "aten::addmm": jit_handles.addmm_flop_jit,
        "aten::linear": jit_handles.linear_flop_jit,
        "aten::matmul": jit_handles.matmul_flop_jit,
        "aten::bmm": jit_handles.bmm_flop_jit,
    }

    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, _example(model, input_size, 1))
        analysis.clear_op_handles().set_op_handle(**mac_handles)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())
    finally:
        model.train(was_training)


def count_macs_torch(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """MACs of one forward pass on one input, by torch's FlopCounterMode (FLOPs / 2)."""
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(_example(model, input_size, 1))
        return counter.get_total_flops() // 2
    finally:
        model.train(was_training)


def measure_latency_ms(
    model: nn.Module, input_size: tuple[int, int, int], *, batch_size: int = 1, repeats: int = 10, warmup: int = 2
) -> float:
    """Median wall time of a forward pass in eval mode, in milliseconds."""
    x = _example(model, input_size, batch_size)
    cuda = x.is_cuda
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model(x)
                if cuda:
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.train(was_training)
    return statistics.median(times)


def activation_bytes(model: nn.Module, input_size: tuple[int, int, int], *, batch_size: int = 8) -> int:
    """Bytes of activations kept for the backward pass of one training step.

    Counted exactly on any device with autograd's saved-tensor hooks: every
    tensor saved for backward, each storage once, parameters excluded. This is
    the part of training memory that depends on the architecture and that
    checkpointing (``memory_efficient``) trades for recomputation.
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(_example(model, input_size, batch_size).requires_grad_(False)).sum()
    finally:
        model.train(was_training)
    return sum(seen.values())


def _peak_train_mb(model: nn.Module, input_size: tuple[int, int, int], batch_size: int) -> float | None:
    """Peak CUDA memory of one forward and backward pass; None off CUDA."""
    parameter = next(model.parameters())
    if not parameter.is_cuda:
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(parameter.device)
    was_training = model.training
    model.train()
    try:
        model(_example(model, input_size, batch_size)).sum().backward()
        model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return torch.cuda.max_memory_allocated(parameter.device) / 2**20


def profile_model(
    model: nn.Module, input_size: tuple[int, int, int], *, batch_size: int = 16, repeats: int = 10
) -> Profile:
    """Params, MACs (fvcore and torch), median latency at batch 1 and ``batch_size``, memory."""
    return Profile(
        params=sum(p.numel() for p in model.parameters()),
        macs=count_macs(model, input_size),
        macs_torch=count_macs_torch(model, input_size),
        latency_ms=measure_latency_ms(model, input_size, batch_size=1, repeats=repeats),
        latency_batch_ms=measure_latency_ms(model, input_size, batch_size=batch_size, repeats=max(1, repeats // 2)),
        latency_batch_size=batch_size,
        activation_mb=activation_bytes(model, input_size, batch_size=batch_size) / 2**20,
        peak_train_mb=_peak_train_mb(model, input_size, batch_size),
    )
