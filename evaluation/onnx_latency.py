"""ONNX Runtime latency: the network as a deployment runs it, exported and timed on the CPU.

The latency a deployer sees is that of the exported graph in its runtime, not
of eager PyTorch (Archai searches on ONNX latency for this reason): the
runtime fuses batch norm into convolutions, plans memory once and skips
Python. Here the model goes through ``evaluation.deploy.export_onnx`` (torch's
dynamo exporter, the file checked against PyTorch's logits in onnxruntime)
into a temporary file, which onnxruntime's CPU provider then runs on one
image at a time, timed as ``evaluation.profile.time_calls`` times (rounds
until their medians agree; with one thread in the thread's CPU time, as
``evaluation.profile.latency_clock`` chooses), so load on the machine cannot
pass as the model's latency.

Threads: onnxruntime would take every core; here it takes as many as torch
(``torch.get_num_threads()``, which ``OMP_NUM_THREADS`` sets), so the two
latencies of one trial are comparable and parallel workers do not fight
over cores. The export costs seconds, many times the timing: worth paying
in a search only when its space names ``onnx_latency_ms``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from evaluation.deploy import DEFAULT_OPSET, INPUT_NAME, export_onnx
from evaluation.profile import Latency, Timing, latency_clock, time_calls

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["onnx_latency", "onnx_latency_ms", "onnx_session", "session_latency"]


def onnx_session(
    model: nn.Module, input_size: tuple[int, int, int], *, threads: int | None = None, opset: int = DEFAULT_OPSET
) -> onnxruntime.InferenceSession:
    """``model`` exported (``export_onnx``: checked against PyTorch's logits) and loaded in
    onnxruntime's CPU provider with ``threads`` intra-op threads (torch's count when None).

    ``ExportError`` when the network does not export or its export computes other
    logits; the model itself is left as it was, the file is removed once loaded.
    """
    # onnxruntime's native library loads here, not in every process that imports evaluation.
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory(prefix="onnx-latency-") as folder:
        path = export_onnx(model, Path(folder) / "model.onnx", input_size, opset=opset)
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_latency(
    session: onnxruntime.InferenceSession,
    input_size: tuple[int, int, int],
    *,
    timing: Timing | None = None,
    clock: Callable[[], float] | None = None,
) -> Latency:
    """One image through ``session``, timed as ``time_calls`` times (rounds until their medians
    agree); ``clock``: ``latency_clock``'s choice for the session's threads when None."""
    image = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0)).numpy()
    feed = {INPUT_NAME: image}
    threads = session.get_session_options().intra_op_num_threads
    return time_calls(
        lambda: session.run(None, feed), timing, clock=clock or latency_clock(threads=threads, cuda=False)
    )


def onnx_latency(
    model: nn.Module,
    input_size: tuple[int, int, int],
    *,
    threads: int | None = None,
    timing: Timing | None = None,
    opset: int = DEFAULT_OPSET,
) -> Latency:
    """The onnxruntime CPU latency of ``model`` at batch 1, in milliseconds, and how steady it was:
    ``onnx_session`` then ``session_latency``. ``ExportError`` as ``onnx_session``."""
    return session_latency(onnx_session(model, input_size, threads=threads, opset=opset), input_size, timing=timing)


def onnx_latency_ms(
    model: nn.Module,
    input_size: tuple[int, int, int],
    *,
    threads: int | None = None,
    timing: Timing | None = None,
) -> float:
    """``onnx_latency``'s milliseconds: the value of the ``onnx_latency_ms`` metric."""
    return onnx_latency(model, input_size, threads=threads, timing=timing).ms
