"""ONNX Runtime latency: the exported network timed on the CPU, and its metric."""

from __future__ import annotations

import copy

import torch

from evaluation import Architecture, Head, Stage, Stem, Transition, build_model
from evaluation.blocks import DenseSpec
from evaluation.metrics import METRICS
from evaluation.onnx_latency import onnx_latency, onnx_latency_ms
from evaluation.profile import LATENCY_MAX_SPREAD, LATENCY_ROUNDS, Timing


def _dense(width: int, growth: int) -> Architecture:
    return Architecture(
        stem=Stem(style="small", width=width),
        stages=(
            Stage(DenseSpec(growth_rate=growth, bn_size=2), depth=2),
            Stage(DenseSpec(growth_rate=growth), depth=2),
        ),
        transitions=(Transition(compression=0.5, pooling="avg"),),
        head=Head(norm=True),
    )


def test_onnx_latency_of_two_exports_ranks_the_larger_slower_and_leaves_the_models_alone() -> None:
    torch.manual_seed(0)
    small = build_model(_dense(4, 2), (1, 28, 28), 10).train()
    large = build_model(_dense(48, 32), (1, 28, 28), 10)
    state = copy.deepcopy(small.state_dict())
    fast = onnx_latency(small, (1, 28, 28), threads=1, timing=Timing(repeats=3))
    assert fast.ms > 0 and fast.rounds >= LATENCY_ROUNDS, fast
    assert fast.settled == (fast.spread <= LATENCY_MAX_SPREAD), fast
    assert small.training and all(torch.equal(state[k], v) for k, v in small.state_dict().items()), "model untouched"
    slow = onnx_latency_ms(large, (1, 28, 28), threads=1)
    assert slow > 2 * fast.ms, f"217 times the MACs: {slow:.3f} ms against {fast.ms:.3f} ms"


def test_onnx_latency_metric_reads_its_record_field() -> None:
    metric = METRICS["onnx_latency_ms"]
    assert (metric.direction, metric.source, metric.constraint) == (
        "minimize",
        "onnx_latency_ms",
        "max_onnx_latency_ms",
    )
    assert metric.value({"onnx_latency_ms": 0.8}) == 0.8 and metric.value({}) is None, "a trial not exported has none"
    assert metric.format(0.8) == "0.80 ms", metric.format(0.8)
