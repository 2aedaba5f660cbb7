"""Exports that other runtimes load: an ONNX file checked in onnxruntime, and
which of torch's own formats (``torch.export``, TorchScript) take a network.

Every export is of the network as it infers: a copy in eval mode, on the CPU,
in fp32, so batch norm uses its running statistics and dropout is off; the
caller's model is left as it was (it may be mid-training on a GPU). The batch
dimension is dynamic and the image size fixed: the example batch has 2 images,
because ``torch.export`` specialises a dimension it sees as 0 or 1.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluation.atomic import atomic_write
from evaluation.data import DATASETS, DataSplits, describe_data
from evaluation.errors import ExportError
from evaluation.images import Decoding

__all__ = [
    "ATOL",
    "DEFAULT_OPSET",
    "INPUT_NAME",
    "OPSETS",
    "OUTPUT_NAME",
    "RTOL",
    "TORCH_FORMATS",
    "VERIFY_BATCHES",
    "dataset_metadata",
    "export_onnx",
    "inference_copy",
    "onnx_discrepancy",
    "torch_formats",
]

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"
# torch 2.14's dynamo exporter writes opset 20 by default; it implements 18 and up,
# and a lower or unknown opset silently falls back to 18 (version conversion fails).
DEFAULT_OPSET = 20
OPSETS = range(18, 24)
# An export reproduces the logits when |exported - torch| <= ATOL + RTOL * |torch| for
# every logit (numpy.allclose's rule), on seeded random batches of VERIFY_BATCHES images.
ATOL = 1e-4
RTOL = 1e-4
VERIFY_BATCHES = (1, 3)
_EXAMPLE_BATCH = 2


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode, on the CPU, in fp32: what every export is made from."""
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()


def dataset_metadata(dataset: str | DataSplits | Mapping[str, Any] | None) -> dict[str, str]:
    """What a runtime must do to images before the graph: the training pipeline's decoding and
    normalisation, which the graph leaves out, and the class names of its outputs.

    ``dataset``: the data (``DataSplits``), its description (``describe_data``'s
    mapping, as a run's result.json records it under ``data``), or the name of a
    built-in data set; any other name gives only the name, None nothing. The
    whole description is under ``data`` (JSON), which ``search predict`` reads.
    """
    if isinstance(dataset, DataSplits):
        described: Mapping[str, Any] = describe_data(dataset)
    elif isinstance(dataset, Mapping):
        described = dataset
    elif dataset in DATASETS:
        described = describe_data(_builtin_description(dataset))
    else:
        return {} if dataset is None else {"dataset": str(dataset)}
    return {
        "dataset": str(described["dataset"]),
        "mean": json.dumps(list(described["mean"])),
        "std": json.dumps(list(described["std"])),
        "classes": json.dumps(list(described["classes"])),
        "preprocessing": (
            f"{INPUT_NAME}: float32 (batch, C, H, W), each channel (pixel / 255 - mean) / std; "
            f"files decoded as 'decoding' in 'data' says (evaluation.images.decode)"
        ),
        "data": json.dumps(dict(described)),
    }


def _builtin_description(name: str) -> DataSplits:
    """A built-in data set's description without its images (none are read)."""
    spec = DATASETS[name]
    empty = (torch.zeros(0, *spec.input_size, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    return DataSplits(
        name=name,
        train=empty,
        val=empty,
        test=empty,
        num_classes=spec.num_classes,
        input_size=spec.input_size,
        mean=spec.mean,
        std=spec.std,
        flip=spec.flip,
        class_names=spec.class_names,
        decoding=Decoding(side=spec.input_size[1], channels=spec.input_size[0]),
    )


def _batch_dim() -> dict[int, torch.export.Dim]:
    return {0: torch.export.Dim(BATCH_AXIS)}


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_shape: tuple[int, int, int],
    *,
    opset: int = DEFAULT_OPSET,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model`` to ``path`` as an ONNX file and check it in onnxruntime.

    The graph takes ``images`` of shape (batch, C, H, W) for ``input_shape``
    (C, H, W) and returns ``logits`` (batch, classes). The weights are inside
    the file (past 2 GB torch writes them beside it, as ONNX requires).
    ``metadata`` goes into the file's metadata_props, where a runtime can read
    what the graph does not say (the input normalisation, where the weights
    come from). ``ExportError`` when ``opset`` is not one of ``OPSETS``, or when
    onnxruntime's logits differ from PyTorch's beyond ATOL/RTOL (the file is
    then not written, so no unchecked file is left to be mistaken for a good one).
    """
    if opset not in OPSETS:
        raise ExportError(f"ONNX opset must be {OPSETS.start}-{OPSETS.stop - 1}, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = inference_copy(model)
    program = torch.onnx.export(
        model,
        (torch.zeros(_EXAMPLE_BATCH, *input_shape),),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=(_batch_dim(),),
        opset_version=opset,
        verbose=False,
    )
    assert program is not None, "the dynamo exporter (torch's default) returns its program"
    program.model.metadata_props.update(metadata or {})
    # Checked before it takes the name, so no partial or unchecked file is left under it.
    with atomic_write(path) as temporary:
        program.save(temporary, external_data=False)
        onnx_discrepancy(temporary, model, input_shape)
    return path


def onnx_discrepancy(
    path: str | Path,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    batch_sizes: Sequence[int] = VERIFY_BATCHES,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> float:
    """The largest |onnxruntime - PyTorch| logit over seeded random batches of ``batch_sizes``.

    Runs the file on onnxruntime's CPU provider, as a deployment would.
    ``ExportError`` when the file does not take ``images``, or a logit is
    beyond ``atol + rtol * |torch|``.
    """
    # onnxruntime's native library loads here, not in every process that imports evaluation (search workers).
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if names != [INPUT_NAME]:
        raise ExportError(f"{path}: the graph takes {names}, not [{INPUT_NAME!r}]")
    model = inference_copy(model)
    largest = 0.0
    for images in _random_batches(input_shape, batch_sizes):
        with torch.no_grad():
            expected = model(images).numpy()
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
        largest = max(largest, _check_close(logits, expected, atol, rtol, f"{path}: onnxruntime"))
    return largest


def _random_batches(input_shape: tuple[int, int, int], batch_sizes: Sequence[int]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(n, *input_shape, generator=generator) for n in batch_sizes]


def _check_close(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float, what: str) -> float:
    """The largest absolute difference; ``ExportError`` when the shapes or any value disagree."""
    if actual.shape != expected.shape:
        raise ExportError(f"{what} gives logits of shape {actual.shape}, PyTorch {expected.shape}")
    difference = float(np.abs(actual - expected).max(initial=0.0))
    if not np.allclose(actual, expected, atol=atol, rtol=rtol):
        raise ExportError(f"{what} logits differ from PyTorch's by up to {difference:.3g} (atol {atol}, rtol {rtol})")
    return difference


def _torch_export(model: nn.Module, example: torch.Tensor) -> nn.Module:
    program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    return torch.export.load(buffer).module()


def _jit_round_trip(module: torch.jit.ScriptModule) -> nn.Module:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


# format -> (model, example batch) -> the module loaded back from the saved format
TORCH_FORMATS: dict[str, Callable[[nn.Module, torch.Tensor], nn.Module]] = {
    "torch.export": _torch_export,
    "torch.jit.trace": lambda model, example: _jit_round_trip(torch.jit.trace(model, (example,))),
    "torch.jit.script": lambda model, example: _jit_round_trip(torch.jit.script(model)),
}


def torch_formats(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, str | None]:
    """For each of ``TORCH_FORMATS``: None where it works, else why not, in one line.

    Works means: the format captures the inference copy, saves to bytes, loads
    back, and reproduces the eager logits within ATOL/RTOL on batch sizes other
    than the example's. TorchScript is deprecated in torch 2.14 (its warnings
    are silenced here, since asking is the point).
    """
    model = inference_copy(model)
    batches = _random_batches(input_shape, VERIFY_BATCHES)
    with torch.no_grad():
        expected = [model(images).numpy() for images in batches]
    results: dict[str, str | None] = {}
    for name, capture in TORCH_FORMATS.items():
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
                loaded = capture(model, torch.zeros(_EXAMPLE_BATCH, *input_shape))
                with torch.no_grad():
                    for images, logits in zip(batches, expected):
                        _check_close(loaded(images).numpy(), logits, ATOL, RTOL, name)
        except Exception as error:  # any failure of a format is its answer, not ours
            results[name] = _one_line(error)
        else:
            results[name] = None
    return results


def _one_line(error: Exception) -> str:
    """``Type: first line of the message``: TorchScript's and torch.export's errors run to pages."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
