"""Training throughput of ``evaluation.train`` against a plain d2l-style loop, on Fashion-MNIST.

The baseline is the loop of the d2l book (``train_ch6``): torchvision's
``FashionMNIST`` with ``Resize`` and ``ToTensor``, a shuffling ``DataLoader``
with the book's 4 workers, fp32, contiguous memory, and the book's per-batch
accuracy bookkeeping. Both loops train the same model (same initial weights),
batch size and optimiser (SGD with momentum) in this process, on the same
subset of images. Each loop runs ``--rounds`` times, alternating, and the best
epoch of each counts: other processes on a shared machine only ever slow a
run down.

Prints JSON: per model both rates and their ratio, ``ratio`` (the smallest of
the models' ratios), the training GFLOP/s achieved (6 x MACs per image: one
forward and two backward passes), and this machine's fp32 and bf16 matmul
GFLOP/s. With ``--accuracy-epochs E`` it also trains both loops for E epochs
on the whole training split and reports their validation accuracies.

    python benchmarks/train_throughput.py                      # throughput only
    python benchmarks/train_throughput.py --accuracy-epochs 2  # plus accuracy
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset

from evaluation import (
    Architecture,
    TrainConfig,
    build_model,
    count,
    evaluate,
    load_architecture,
    train,
)
from evaluation.data import DATASETS, DataSplits, load_dataset
from spaces import load_space

MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` square matmul rate: the machine's ceiling for this dtype."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def torchvision_copy(directory: Path) -> Path:
    """Extract the gz IDX files into torchvision's layout: its dataset classes read only extracted files."""
    source = DATASETS["fashion_mnist"].system_dirs[0]
    raw = directory / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        if (source / f"{stem}.gz").is_file():
            with gzip.open(source / f"{stem}.gz", "rb") as packed, open(raw / stem, "wb") as plain:
                shutil.copyfileobj(packed, plain)
        else:
            shutil.copy(source / stem, raw / stem)
    return directory


def d2l_loader(
    root: Path, indices: list[int], side: int, batch_size: int, workers: int, train: bool = True
) -> DataLoader:
    """``d2l.load_data_fashion_mnist``: Resize (when needed) and ToTensor per image, a DataLoader."""
    steps = [torchvision.transforms.Resize(side)] if side != 28 else []
    transform = torchvision.transforms.Compose([*steps, torchvision.transforms.ToTensor()])
    dataset = torchvision.datasets.FashionMNIST(str(root), train=train, transform=transform)
    return DataLoader(Subset(dataset, indices), batch_size, shuffle=train, num_workers=workers)


def model_architecture(name: str) -> Architecture:
    """A preset or YAML file, or ``SPACE:BASELINE`` / ``SPACE:example`` of a built-in space."""
    if ":" not in name:
        return load_architecture(name)
    space_name, member = name.split(":", 1)
    space = load_space(space_name)
    return space.example() if member == "example" else space.baseline(member)


def d2l_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    """One epoch of the book's ``train_ch6`` loop (fp32, per-batch metric syncs); returns images/s."""
    model.train()
    start, seen = time.perf_counter(), 0
    metric = [0.0, 0.0, 0]
    for x, y in loader:
        optimizer.zero_grad()
        y_hat = model(x)
        loss = F.cross_entropy(y_hat, y)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            metric[0] += float(loss) * x.shape[0]
            metric[1] += float((y_hat.argmax(1) == y).sum())
            metric[2] += x.shape[0]
        seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def d2l_accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def subset(data: DataSplits, images: int) -> DataSplits:
    """The first ``images`` training images, and those same images for the baseline."""
    return dataclasses.replace(data, train=(data.train[0][:images], data.train[1][:images]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["d2l_densenet", "resnet18", "densenet_hybrid:small_dense"],
        help="Presets, YAML files, or SPACE:BASELINE / SPACE:example for a built-in space's architectures.",
    )
    parser.add_argument("--side", type=int, default=32, help="Image side both loops train at (default 32).")
    parser.add_argument("--images", type=int, default=2048, help="Training images per timed epoch.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=4, help="Baseline DataLoader workers (d2l uses 4).")
    parser.add_argument("--rounds", type=int, default=3, help="Timed epochs per loop, alternating; the best counts.")
    parser.add_argument("--accuracy-epochs", type=int, default=0, help="Also compare accuracy after this many epochs.")
    parser.add_argument(
        "--accuracy-images", type=int, default=55000, help="Training images for the accuracy comparison."
    )
    args = parser.parse_args()

    data = load_dataset("fashion_mnist", validation_size=5000, seed=0)
    # The baseline reads the same images: load_dataset's split keeps the training order, so map back.
    order = torch.randperm(60000, generator=torch.Generator().manual_seed(0))
    train_indices = order[5000:].sort().values.tolist()
    val_indices = order[:5000].sort().values.tolist()
    report: dict[str, object] = {
        "side": args.side,
        "images": args.images,
        "batch_size": args.batch_size,
        "baseline_workers": args.workers,
        "threads": torch.get_num_threads(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_copy(Path(tmp))
        for name in args.models:
            arch = model_architecture(name)
            macs = count(arch, (1, args.side, args.side), 10).macs
            config = TrainConfig(
                epochs=1,
                batch_size=args.batch_size,
                lr=args.lr,
                resize=args.side if args.side != 28 else None,
                device="cpu",
                schedule="cosine",
            )
            loader = d2l_loader(root, train_indices[: args.images], args.side, args.batch_size, args.workers)
            torch.manual_seed(0)
            ours_model = build_model(arch, (1, args.side, args.side), 10)
            torch.manual_seed(0)
            base_model = build_model(arch, (1, args.side, args.side), 10)
            base_optimizer = torch.optim.SGD(
                base_model.parameters(), lr=args.lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
            )
            small = subset(data, args.images)
            small = dataclasses.replace(small, val=(small.val[0][:0], small.val[1][:0]))  # time training only
            ours_rates, base_rates = [], []
            train(ours_model, small, config)  # warm-up: oneDNN picks its kernels on first use
            d2l_epoch(base_model, loader, base_optimizer)
            for _ in range(args.rounds):
                base_rates.append(d2l_epoch(base_model, loader, base_optimizer))
                result = train(ours_model, small, config)
                ours_rates.append(args.images // args.batch_size * args.batch_size / result.train_seconds)
            ours, base = max(ours_rates), max(base_rates)
            report["models"][name] = {  # type: ignore[index]
                "macs": macs,
                "ours_images_per_s": round(ours, 1),
                "baseline_images_per_s": round(base, 1),
                "ratio": round(ours / base, 2),
                "ours_train_gflops": round(6 * macs * ours / 1e9, 1),
                "baseline_train_gflops": round(6 * macs * base / 1e9, 1),
                "precision": result.precision,
                "all_ours": [round(r, 1) for r in ours_rates],
                "all_baseline": [round(r, 1) for r in base_rates],
            }
            if args.accuracy_epochs:
                report["models"][name]["accuracy"] = compare_accuracy(  # type: ignore[index]
                    arch, data, root, train_indices[: args.accuracy_images], val_indices, args
                )
        report["ratio"] = min(m["ratio"] for m in report["models"].values())  # type: ignore[union-attr]
        report["matmul_gflops_fp32"] = round(matmul_gflops(torch.float32), 1)
        report["matmul_gflops_bf16"] = round(matmul_gflops(torch.bfloat16), 1)
        # Other processes on the machine: above the core count, every rate here is depressed.
        report["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


def compare_accuracy(
    arch: Architecture,
    data: DataSplits,
    root: Path,
    train_indices: list[int],
    val_indices: list[int],
    args: argparse.Namespace,
) -> dict[str, object]:
    """Same model, same epochs and images: our loop's defaults against the d2l loop (fp32,
    constant rate, no augmentation); both validated on the same held-out images."""
    side = args.side
    torch.manual_seed(0)
    ours_model = build_model(arch, (1, side, side), 10)
    torch.manual_seed(0)
    base_model = build_model(arch, (1, side, side), 10)
    config = TrainConfig(
        epochs=args.accuracy_epochs,
        batch_size=args.batch_size,
        resize=side if side != 28 else None,
        device="cpu",
    )
    start = time.perf_counter()
    result = train(ours_model, subset(data, len(train_indices)), config)
    ours_seconds = time.perf_counter() - start
    loader = d2l_loader(root, train_indices, side, args.batch_size, args.workers)
    optimizer = torch.optim.SGD(base_model.parameters(), lr=args.lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    start = time.perf_counter()
    for _ in range(args.accuracy_epochs):
        d2l_epoch(base_model, loader, optimizer)
    base_seconds = time.perf_counter() - start
    val_loader = d2l_loader(root, val_indices, side, 512, args.workers)
    return {
        "epochs": args.accuracy_epochs,
        "train_images": len(train_indices),
        "ours_val_accuracy": result.val_accuracies[-1],
        "ours_val_accuracy_fp32_eval": evaluate(
            ours_model,
            *data.val,
            TrainConfig(resize=config.resize, precision="fp32", device="cpu"),
            mean=data.mean,
            std=data.std,
        ),
        "baseline_val_accuracy": d2l_accuracy(base_model, val_loader),
        "ours_seconds": round(ours_seconds, 1),
        "baseline_seconds": round(base_seconds, 1),
        "ours_settings": {
            "lr": config.lr,
            "schedule": config.schedule,
            "label_smoothing": config.label_smoothing,
            "augment": config.augment,
            "precision": result.precision,
        },
    }


if __name__ == "__main__":
    main()
