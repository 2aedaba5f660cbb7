"""``search predict``: a trained model on new image files, as a CSV of its top classes.

The files go through the training's own steps: decoded as the training images
were (``evaluation.images.decode`` with the data's ``Decoding``: channels,
resolution, resize policy, background), then ``BatchPipeline`` without
augmentation (the resize to the network's input, the normalisation).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluation import build_model, load_architecture, resolve_device
from evaluation.atomic import atomic_write
from evaluation.data import DATASETS, BatchPipeline, describe_data, load_dataset
from evaluation.deploy import INPUT_NAME, dataset_metadata
from evaluation.errors import DataError, show
from evaluation.images import Decoding, ImageUnreadable, decode_file, is_source
from evaluation.images.decode import image_extensions
from evaluation.training import DEVICES
from search.commands._common import positive_int
from search.commands.onnx import _load_weights, _required, _result
from search.errors import UsageError
from search.post.full_training import WEIGHTS_FILE

__all__ = ["PredictCommand", "collect_images"]

Scorer = Callable[[torch.Tensor], np.ndarray]  # normalised batch -> class probabilities


class PredictCommand:
    help = "Classify image files with a trained run or an ONNX file; a CSV of the top classes."
    description = (
        "Apply a trained model to image files (or folders of them, searched at any depth)\n"
        "and write a CSV: path, then the top classes with their probabilities.\n\n"
        "MODEL is a folder written by 'search train' (architecture.yaml, weights.pt,\n"
        "result.json) or an ONNX file written by 'search onnx' (or by finalize).\n"
        "Each file is prepared exactly as the training images were: decoded with the\n"
        "data set's channels, resolution and resize policy (EXIF orientation applied),\n"
        "resized to the network's input, normalised with the training mean and std;\n"
        "the run's result.json or the ONNX file's metadata says how. A file that cannot\n"
        "be decoded is reported on stderr and left out."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", metavar="MODEL", type=Path, help="A run folder or a .onnx file.")
        parser.add_argument("images", metavar="IMAGES", type=Path, nargs="+", help="Image files or folders.")
        parser.add_argument("--top", type=positive_int, default=3, help="Classes per image (default: 3).")
        parser.add_argument(
            "--out", type=Path, default=None, metavar="FILE", help="Write the CSV here (default: stdout)."
        )
        parser.add_argument("--batch-size", type=positive_int, default=64, help="Images per batch (default: 64).")
        parser.add_argument(
            "--device",
            choices=DEVICES,
            default="cpu",
            help="Where a run's model runs (default: cpu; ONNX: always cpu).",
        )

    def run(self, args: argparse.Namespace) -> int:
        files = collect_images(args.images)
        if args.model.suffix.lower() == ".onnx" and args.model.is_file():
            described, shape, scorer = _onnx_model(args.model)
        elif args.model.is_dir():
            described, shape, scorer = _run_model(args.model, resolve_device(args.device))
        else:
            raise UsageError(f"{args.model}: neither a run folder (written by 'search train') nor an .onnx file")
        decoding = Decoding(**described["decoding"])
        classes = list(described["classes"])
        pipeline = BatchPipeline(
            mean=tuple(described["mean"]),
            std=tuple(described["std"]),
            device=torch.device("cpu"),
            resize=None if shape[1] == decoding.side else shape[1],
            channels_last=False,
        )
        top = min(args.top, len(classes))
        header = ["path"] + [f"{kind}_{rank}" for rank in range(1, top + 1) for kind in ("class", "probability")]
        rows, skipped = [], 0
        for paths, batch in _decoded_batches(files, decoding, args.batch_size):
            if not paths:
                skipped += 1
                continue
            probabilities = scorer(pipeline(batch, augment=False))
            for path, row in zip(paths, probabilities):
                best = np.argsort(-row, kind="stable")[:top]
                rows.append([str(path)] + [v for i in best for v in (classes[i], f"{row[i]:.6f}")])
        if not rows:
            raise UsageError(f"none of the {len(files)} files could be decoded (reasons above)")
        _write_rows(args.out, header, rows)
        print(f"{len(rows):,} images classified" + (f", {skipped:,} skipped" if skipped else ""), file=sys.stderr)
        return 0


def collect_images(arguments: list[Path]) -> list[Path]:
    """The files named, and the image files at any depth below the folders named (hidden ones left out)."""
    extensions = image_extensions()
    files: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            found = sorted(
                path
                for path in argument.rglob("*")
                if path.is_file()
                and path.suffix.lower() in extensions
                and not any(part.startswith(".") for part in path.relative_to(argument).parts)
            )
            if not found:
                raise UsageError(f"{argument}: no image files in this folder")
            files += found
        elif argument.exists() or argument.is_symlink():
            files.append(argument)
        else:
            raise UsageError(f"{argument}: no such file or folder")
    return files


def _decoded_batches(
    files: list[Path], decoding: Decoding, batch_size: int
) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Batches of (paths, uint8 images); a file that fails yields ([], empty) after its reason on stderr."""
    paths: list[Path] = []
    images: list[np.ndarray] = []
    for path in files:
        try:
            images.append(decode_file(path, decoding))
            paths.append(path)
        except ImageUnreadable as error:
            print(f"skipped {path}: {error}", file=sys.stderr)
            yield [], torch.empty(0)
        if len(paths) == batch_size:
            yield paths, torch.from_numpy(np.stack(images))
            paths, images = [], []
    if paths:
        yield paths, torch.from_numpy(np.stack(images))


def _write_rows(out: Path | None, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if out is None:
        sys.stdout.write(buffer.getvalue())
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as temporary:
        temporary.write_text(buffer.getvalue())
    print(f"wrote {out}", file=sys.stderr)


# --- what the model was trained on --------------------------------------------------------


def _description(recorded: Mapping[str, Any] | None, dataset: str | None, where: Path) -> dict[str, Any]:
    """The data description recorded with the model; else the built-in's, or the source's (opened again)."""
    if recorded:
        return dict(recorded)
    if dataset in DATASETS:
        return json.loads(dataset_metadata(dataset)["data"])
    if dataset and is_source(dataset):
        try:
            return describe_data(load_dataset(dataset, validation_size=0))
        except DataError as error:
            raise UsageError(
                f"{where} records no data description and its source cannot be read again: {error}"
            ) from None
    raise UsageError(f"{where}: records no data set (got {show(dataset)}); cannot tell how to prepare images")


def _run_model(run_dir: Path, device: torch.device) -> tuple[dict[str, Any], tuple[int, int, int], Scorer]:
    """A run folder's model, its input shape and its data description."""
    arch = load_architecture(_required(run_dir, "architecture.yaml"))
    weights = _load_weights(_required(run_dir, WEIGHTS_FILE))
    result = _result(_required(run_dir, "result.json"))
    described = _description(result.get("data"), result.get("dataset"), run_dir / "result.json")
    shape = _input_shape(result.get("input_size") or described["input_size"], run_dir / "result.json")
    model = build_model(arch, shape, len(described["classes"]))
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        raise UsageError(f"{run_dir / WEIGHTS_FILE} does not fit {run_dir / 'architecture.yaml'}") from None
    model.to(device).eval()

    def score(batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(model(batch.to(device)).float(), dim=1).cpu().numpy()

    return described, shape, score


def _onnx_model(path: Path) -> tuple[dict[str, Any], tuple[int, int, int], Scorer]:
    """An ONNX file's session, its input shape and the data description in its metadata."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for unreadable files
        raise UsageError(f"{path}: not a readable ONNX file ({type(error).__name__})") from None
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [INPUT_NAME]:
        raise UsageError(f"{path}: the graph takes {[i.name for i in inputs]}, not [{INPUT_NAME!r}]")
    metadata = session.get_modelmeta().custom_metadata_map
    recorded = json.loads(metadata["data"]) if "data" in metadata else None
    described = _description(recorded, metadata.get("dataset"), path)
    shape = _input_shape(inputs[0].shape[1:], path)

    def score(batch: torch.Tensor) -> np.ndarray:
        (logits,) = session.run(None, {INPUT_NAME: batch.numpy()})
        return torch.softmax(torch.from_numpy(logits).float(), dim=1).numpy()

    return described, shape, score


def _input_shape(values: Sequence[Any], where: Path) -> tuple[int, int, int]:
    """The (C, H, W) a model takes, as ``where`` records it; any other shape (a free dimension of
    an ONNX graph included) is a one-line error, not a failure in the first batch."""
    if len(values) != 3 or not all(type(v) is int and v > 0 for v in values):
        raise UsageError(f"{where}: the model's input is {list(values)}; expected 3 positive integers [C, H, W]")
    channels, height, width = values
    return channels, height, width
