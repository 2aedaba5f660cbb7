"""Profile a model: parameters, MACs (two independent counters), latency, memory.

MACs follow fvcore's convention (one fused multiply-add is one MAC) and count
convolutions and linear layers only, as torchvision's published GFLOPS do:
batch norm, activations, pooling, element-wise adds and concatenation are not
counted. fvcore would count batch norm and adaptive pooling by default, so
its analysis is given only its convolution and matrix-product handlers. ``macs_torch`` is the same quantity from
torch's own ``FlopCounterMode`` (which counts FLOPs, 2 per MAC), halved.

Latency is timed so that an outlier cannot pass (``time_calls``): after a
warm-up, rounds of repeated calls, each round reduced to its median; the
answer is the median of the last ``rounds`` round medians once their
interquartile range is within ``max_spread`` of their median, re-measuring a
round at a time until it is, up to ``max_rounds``. A burst of load on a shared
machine (another worker training, a garbage collection) inflates a few rounds,
which then fall out of the window; the spread says how steady the answer was.

Load that lasts the whole measurement raises every round alike, so the
clock matters too (``latency_clock``): when the forward pass runs on the
calling thread alone (the CPU, one thread, as each of several workers runs)
it is timed in that thread's CPU time, which does not count the time the
thread waits for a core another process holds; otherwise (several threads,
a GPU) in wall time. On the fidelity panel at a load of about 10 on 2 cores
(``benchmarks/latency_panel.py``), two passes over the 24 models minutes
apart differed by up to 10.5 times per model in wall time with the spread
check (8 models by more than 1.5 times), by up to 1.47 in thread CPU time.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "LATENCY_MAX_ROUNDS",
    "LATENCY_MAX_SPREAD",
    "LATENCY_ROUNDS",
    "Latency",
    "Profile",
    "Timing",
    "activation_bytes",
    "count_macs",
    "count_macs_torch",
    "latency_clock",
    "measure_latency",
    "profile_model",
    "time_calls",
]

# Rounds whose medians must agree, the agreement asked (interquartile range over median),
# and the rounds after which the measurement stops and reports itself unsettled. A tenth:
# two runs of one model on an idle core differ by a few percent; the outlier that
# prompted the check was a 23 M-MAC model at 206 ms beside peers at 1.4 to 6.3 ms.
LATENCY_ROUNDS = 5
LATENCY_MAX_SPREAD = 0.10
LATENCY_MAX_ROUNDS = 20


@dataclass(frozen=True)
class Timing:
    """How ``time_calls`` times: ``warmup`` untimed calls, then rounds of ``repeats`` timed
    calls, until the medians of the last ``rounds`` rounds agree within ``max_spread``
    (interquartile range over median) or ``max_rounds`` rounds are in."""

    repeats: int = 10
    warmup: int = 2
    rounds: int = LATENCY_ROUNDS
    max_rounds: int = LATENCY_MAX_ROUNDS
    max_spread: float = LATENCY_MAX_SPREAD

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.rounds < 1 or self.max_rounds < self.rounds:
            raise ValueError(
                f"need repeats >= 1 and 1 <= rounds <= max_rounds, got {self.repeats}, {self.rounds}, {self.max_rounds}"
            )

    @classmethod
    def total(cls, repeats: int) -> Timing:
        """``repeats`` timed calls in all, over up to ``LATENCY_ROUNDS`` rounds, and the cap on rounds
        that keeps ``LATENCY_MAX_ROUNDS``' ratio to them."""
        rounds = max(1, min(LATENCY_ROUNDS, repeats))
        return cls(
            repeats=math.ceil(max(1, repeats) / rounds),
            rounds=rounds,
            max_rounds=rounds * LATENCY_MAX_ROUNDS // LATENCY_ROUNDS,
        )


@dataclass(frozen=True)
class Latency:
    """A latency in milliseconds and how steady it was.

    ``spread`` is the interquartile range of the round medians the answer is the
    median of, over that median (0.05: the middle half of the rounds within 5%);
    ``settled`` says it came within ``max_spread`` before ``max_rounds``; if not,
    ``ms`` and ``spread`` are over every round.
    """

    ms: float
    spread: float
    rounds: int
    settled: bool


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
    latency_spread: float  # of latency_ms: interquartile range of its round medians over their median

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


def latency_clock(*, threads: int, cuda: bool) -> Callable[[], float]:
    """The clock a forward pass is timed with: the calling thread's CPU time when the pass runs
    on that thread alone (on the CPU with one thread) and the platform's thread clock is fine
    enough to time it (Linux, macOS: nanoseconds), else wall time (``time.perf_counter``)."""
    if threads == 1 and not cuda and time.get_clock_info("thread_time").resolution <= 1e-6:
        return time.thread_time
    return time.perf_counter


def _relative_spread(values: list[float]) -> float:
    """Interquartile range over median; 0 for a single value."""
    if len(values) < 2:
        return 0.0
    first, median, third = statistics.quantiles(values, n=4, method="inclusive")
    return (third - first) / median if median > 0 else 0.0


def time_calls(
    run: Callable[[], object], timing: Timing | None = None, *, clock: Callable[[], float] = time.perf_counter
) -> Latency:
    """The time of ``run()`` in milliseconds, measured so that an outlier cannot pass.

    ``timing.warmup`` calls first, untimed; then rounds of ``timing.repeats``
    timed calls, each round reduced to its median. Once ``timing.rounds``
    rounds are in, the answer is the median of the last ones if their spread
    is at most ``timing.max_spread``; otherwise one more round, until
    ``timing.max_rounds``. ``clock`` (seconds) is wall time by default, as
    ``timeit``'s timer; ``latency_clock`` chooses for a forward pass, tests
    pass a scripted one.
    """
    timing = timing or Timing()
    for _ in range(timing.warmup):
        run()
    medians: list[float] = []
    while True:
        times = []
        for _ in range(timing.repeats):
            start = clock()
            run()
            times.append((clock() - start) * 1000.0)
        medians.append(statistics.median(times))
        if len(medians) >= timing.rounds:
            window = medians[-timing.rounds :]
            spread = _relative_spread(window)
            if spread <= timing.max_spread:
                return Latency(statistics.median(window), spread, len(medians), settled=True)
            if len(medians) >= timing.max_rounds:
                return Latency(statistics.median(medians), _relative_spread(medians), len(medians), settled=False)


def measure_latency(
    model: nn.Module,
    input_size: tuple[int, int, int],
    *,
    batch_size: int = 1,
    timing: Timing | None = None,
    clock: Callable[[], float] | None = None,
) -> Latency:
    """The time of a forward pass in eval mode without autograd (``time_calls``: rounds of
    timed calls until their medians agree), and how steady it was.

    ``clock``: ``latency_clock``'s choice when None (the thread's CPU time with one
    torch thread on the CPU, else wall time); ``time.perf_counter`` forces wall time.
    """
    x = _example(model, input_size, batch_size)
    was_training = model.training
    model.eval()

    def forward() -> None:
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()

    try:
        with torch.inference_mode():
            if x.is_cuda:
                torch.cuda.synchronize()
            return time_calls(
                forward, timing, clock=clock or latency_clock(threads=torch.get_num_threads(), cuda=x.is_cuda)
            )
    finally:
        model.train(was_training)


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
    """Params, MACs (fvcore and torch), latency at batch 1 (with its spread) and ``batch_size``, memory.

    ``repeats`` timed passes at batch 1 (half as many at ``batch_size``), in up to
    ``LATENCY_ROUNDS`` rounds; rounds that disagree add rounds, up to four times as many.
    """
    latency = measure_latency(model, input_size, batch_size=1, timing=Timing.total(repeats))
    return Profile(
        params=sum(p.numel() for p in model.parameters()),
        macs=count_macs(model, input_size),
        macs_torch=count_macs_torch(model, input_size),
        latency_ms=latency.ms,
        latency_batch_ms=measure_latency(
            model, input_size, batch_size=batch_size, timing=Timing.total(repeats // 2)
        ).ms,
        latency_batch_size=batch_size,
        activation_mb=activation_bytes(model, input_size, batch_size=batch_size) / 2**20,
        peak_train_mb=_peak_train_mb(model, input_size, batch_size),
        latency_spread=latency.spread,
    )
