"""``search onnx``: a trained run (what ``search train`` writes) as an ONNX file."""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import torch

from evaluation import build_model, export_onnx, load_architecture, onnx_discrepancy
from evaluation.deploy import (
    ATOL,
    DEFAULT_OPSET,
    INPUT_NAME,
    OPSETS,
    OUTPUT_NAME,
    RTOL,
    VERIFY_BATCHES,
    dataset_metadata,
)
from evaluation.errors import show
from search.commands._common import checked_number, input_size
from search.errors import UsageError
from search.post.full_training import WEIGHTS_FILE

_CLASSIFIER = "head.classifier.weight"


class OnnxCommand:
    help = "Export a trained run (weights.pt + architecture.yaml) as ONNX, checked in onnxruntime."
    description = (
        "Export the trained model in RUN_DIR, a folder written by 'search train'\n"
        "(architecture.yaml, weights.pt, result.json), as one ONNX file (default:\n"
        f"RUN_DIR/model.onnx). The graph takes '{INPUT_NAME}' of shape (batch, C, H, W), the\n"
        f"batch dynamic, C, H, W those the run trained on, and returns '{OUTPUT_NAME}' (batch,\n"
        "classes), in eval mode and fp32; images are normalised as in training (the\n"
        "data set's mean and std), which the graph does not do. onnxruntime (CPU) runs\n"
        f"it on random batches of {' and '.join(map(str, VERIFY_BATCHES))} images before the command succeeds:\n"
        f"every logit within atol {ATOL} + rtol {RTOL} x |PyTorch's|.\n\n"
        "Untrained graphs of a study's best architectures: 'search export STUDY --format onnx'."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="A folder written by 'search train'.")
        parser.add_argument(
            "--input",
            type=input_size,
            default=None,
            metavar="C,H,W",
            help="Input shape of one image (default: input_size in RUN_DIR/result.json).",
        )
        parser.add_argument(
            "--opset",
            type=checked_number(int, lambda v: v in OPSETS, f"an opset from {OPSETS.start} to {OPSETS.stop - 1}"),
            default=DEFAULT_OPSET,
            metavar="N",
            help=f"ONNX opset, {OPSETS.start}-{OPSETS.stop - 1} (default: {DEFAULT_OPSET}).",
        )
        parser.add_argument(
            "--out", type=Path, default=None, metavar="FILE", help="Where to write (default: RUN_DIR/model.onnx)."
        )

    def run(self, args: argparse.Namespace) -> int:
        run_dir: Path = args.run_dir
        arch = load_architecture(_required(run_dir, "architecture.yaml"))
        weights = _load_weights(_required(run_dir, WEIGHTS_FILE))
        result = _result(run_dir / "result.json")
        shape = args.input or _recorded_input_size(run_dir / "result.json", result)
        classifier = weights.get(_CLASSIFIER)
        if not isinstance(classifier, torch.Tensor) or classifier.ndim != 2:
            raise UsageError(f"{run_dir / 'weights.pt'}: no {_CLASSIFIER}; not a state_dict of this toolkit's network")
        model = build_model(arch, shape, classifier.shape[0])
        try:
            model.load_state_dict(weights)
        except RuntimeError as error:
            # torch's first line only names the model; the second says what differs.
            lines = [line.strip() for line in str(error).strip().splitlines()]
            problem = lines[min(1, len(lines) - 1)]
            problem = problem if len(problem) <= 200 else problem[:197] + "..."
            raise UsageError(
                f"{run_dir / 'weights.pt'} does not fit {run_dir / 'architecture.yaml'}: {problem}"
            ) from None
        metadata = dataset_metadata(result.get("data") or result.get("dataset"))
        path = export_onnx(model, args.out or run_dir / "model.onnx", shape, opset=args.opset, metadata=metadata)
        difference = onnx_discrepancy(path, model, shape)
        print(path)
        print(
            f"onnxruntime reproduces the PyTorch logits: largest difference {difference:.2g} "
            f"(allowed: atol {ATOL} + rtol {RTOL} x |logit|)",
            file=sys.stderr,
        )
        return 0


def _required(run_dir: Path, name: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise UsageError(f"{run_dir}: no {name}; expected a folder written by 'search train'")
    return path


def _load_weights(path: Path) -> dict[str, Any]:
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise UsageError(f"{path}: not a readable state_dict ({type(error).__name__})") from None
    if not isinstance(weights, dict):
        raise UsageError(f"{path}: holds a {type(weights).__name__}, not a state_dict")
    return weights


def _result(path: Path) -> dict[str, Any]:
    """``search train``'s result.json; empty when there is none (``--input`` then gives the shape)."""
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: not readable JSON ({type(error).__name__})") from None
    if not isinstance(result, dict):
        raise UsageError(f"{path}: holds a {type(result).__name__}, not an object")
    return result


def _recorded_input_size(path: Path, result: dict[str, Any]) -> tuple[int, int, int]:
    """``input_size`` from result.json; its absence asks for --input."""
    if "input_size" not in result:
        raise UsageError(f"{path} is missing or records no input_size: give the input shape with --input C,H,W")
    value = result["input_size"]
    try:
        return input_size(",".join(str(v) for v in value))
    except (argparse.ArgumentTypeError, TypeError):
        raise UsageError(f"{path}: input_size {show(value)} is not [C, H, W]: give --input C,H,W") from None
