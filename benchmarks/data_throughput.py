"""Input throughput of a folder source: the decode-once cache against torchvision's ImageFolder + DataLoader.

What a user would write for a folder of images is torchvision's ``ImageFolder``
with ``Resize`` + ``CenterCrop`` (the same resize as the cache's ``crop``
policy, to the pixel), ``RandomCrop(padding=side // 8)`` and
``RandomHorizontalFlip`` (the same augmentation as ``BatchPipeline``), and a
shuffling ``DataLoader(num_workers=2)``. Both read the same folders of real
Fashion-MNIST images, written out as PNG at 28 px, JPEG at 96 px and (a
smaller set) JPEG at 224 px, in one run of this script:

- (a) the input pipeline alone: training-ready batches (augmented,
  normalised, on the training device) with no model, images per second;
- (b) a whole training epoch of the default space's ``small_dense`` at 28 px,
  the same model, optimiser and batch size in both (fp32, channels_last);
- (c) building the cache against one DataLoader epoch without augmentation:
  both decode every file once;
- (d) the same training epoch from the folder's cache and from the built-in
  in-memory Fashion-MNIST (the same number of images): a folder source should
  cost what the built-in set costs.

Each figure is the best of ``--rounds`` (other processes only ever slow a run
down). Prints JSON and writes it to ``--out``.

    python benchmarks/data_throughput.py --images 20000 --large-images 2000
    python benchmarks/data_throughput.py --images 2000 --large-images 300 --rounds 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's packages, and the tests' image writer
from image_files import fashion_arrays, first_per_class, write_images  # noqa: E402

from evaluation import TrainConfig, build_model, resolve_device, train  # noqa: E402
from evaluation.data import BatchPipeline, DataSplits, load_dataset  # noqa: E402
from evaluation.feeding import batches_of, place_images  # noqa: E402
from evaluation.images import SourceOptions, list_source, open_cache  # noqa: E402
from spaces import load_space  # noqa: E402

BATCH = 128
LOADER_WORKERS = 2
MOMENTUM, WEIGHT_DECAY, LR = 0.9, 5e-4, 0.05


def write_sets(work: Path, images: int, large_images: int) -> dict[str, tuple[Path, int]]:
    """The three folders: (folder, side) by name."""
    x, y, _, _ = fashion_arrays()
    per_class = max(1, images // 10)
    chosen = first_per_class(y, per_class)
    large = first_per_class(y, max(1, large_images // 10))
    sets = {
        "png28": (work / "png28", 28, ".png", chosen),
        "jpeg96": (work / "jpeg96", 96, ".jpg", chosen),
        "jpeg224": (work / "jpeg224", 224, ".jpg", large),
    }
    for folder, side, suffix, indices in sets.values():
        write_images(folder, x, y, indices, suffix=suffix, side=None if side == 28 else side)
    return {name: (folder, side) for name, (folder, side, _, _) in sets.items()}


def best(rounds: int, measure) -> float:
    return min(measure() for _ in range(rounds))


# --- the toolkit's path --------------------------------------------------------------


def build_cache(folder: Path, cache: Path) -> float:
    """Seconds to decode ``folder`` into a fresh cache (listing included)."""
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    options = SourceOptions(val_fraction=0.0)
    open_cache(list_source(f"folder:{folder}", options), options, cache_dir=cache, progress=False)
    return time.perf_counter() - start


def cache_data(folder: Path, cache: Path) -> DataSplits:
    """Every image of the folder for training (its carved test split too): the same images as ImageFolder's."""
    return load_dataset(
        f"folder:{folder}", options=SourceOptions(val_fraction=0.0), validation_size=0, cache_dir=cache, progress=False
    )


def cache_pipeline_epoch(data: DataSplits, device: torch.device) -> float:
    """Seconds for one epoch of training-ready batches from the cache: gather, augment, normalise."""
    start = time.perf_counter()
    images = place_images(data.train[0], device)
    pipeline = BatchPipeline(mean=data.mean, std=data.std, device=device, flip=True)
    order = torch.randperm(len(images))
    indices = [order[first : first + BATCH] for first in range(0, len(images) - BATCH + 1, BATCH)]
    for batch in batches_of(images, [index.to(device) for index in indices]):
        pipeline(batch, augment=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


# --- what a user would write --------------------------------------------------------------


def loader(folder: Path, side: int, data: DataSplits, *, augment: bool) -> DataLoader:
    """ImageFolder + DataLoader with the cache's resize and BatchPipeline's augmentation."""
    steps = [T.Grayscale(1), T.Resize(side), T.CenterCrop(side)]
    if augment:
        steps += [T.RandomCrop(side, padding=max(1, side // 8)), T.RandomHorizontalFlip()]
    steps += [T.ToTensor(), T.Normalize(data.mean, data.std)]
    dataset = ImageFolder(str(folder), transform=T.Compose(steps))
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=LOADER_WORKERS, drop_last=True)


def loader_epoch(batches: DataLoader, device: torch.device) -> float:
    start = time.perf_counter()
    for images, _ in batches:
        images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def loader_train_epoch(model: nn.Module, batches: DataLoader, device: torch.device) -> float:
    """One epoch of plain SGD on the DataLoader's batches: the user's loop."""
    model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    start = time.perf_counter()
    for images, labels in batches:
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(images), labels.to(device), label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def toolkit_train_epoch(model: nn.Module, data: DataSplits, device: torch.device) -> float:
    config = TrainConfig(epochs=1, batch_size=BATCH, lr=LR, schedule="constant", precision="fp32", device=device.type)
    return train(model, data, config).train_seconds


def builtin_like(data: DataSplits) -> DataSplits:
    """The built-in in-memory Fashion-MNIST, cut to the folder's number of images."""
    builtin = load_dataset("fashion_mnist", validation_size=0)
    count = len(data.train[1])
    return DataSplits(
        name="fashion_mnist",
        train=(builtin.train[0][:count], builtin.train[1][:count]),
        val=(builtin.train[0][:0], builtin.train[1][:0]),
        test=builtin.test,
        num_classes=10,
        input_size=builtin.input_size,
        mean=builtin.mean,
        std=builtin.std,
        flip=True,
    )


def measure_set(folder: Path, side: int, cache: Path, device: torch.device, rounds: int) -> dict:
    """Every figure of one folder; the training figures (b, d) for the 28 px set only."""
    build = best(rounds, lambda: build_cache(folder, cache))
    data = cache_data(folder, cache)
    count = len(data.train[1]) // BATCH * BATCH  # whole batches: what both pipelines serve
    if count == 0:
        raise SystemExit(f"{folder}: fewer than {BATCH} images; ask for more")
    plain = loader(folder, side, data, augment=False)
    augmented = loader(folder, side, data, augment=True)
    decode_epoch = best(rounds, lambda: loader_epoch(plain, device))
    ours = best(rounds, lambda: cache_pipeline_epoch(data, device))
    theirs = best(rounds, lambda: loader_epoch(augmented, device))
    result = {
        "images": len(data.train[1]),
        "images_per_epoch": count,
        "side": side,
        "a_pipeline_images_per_s": {"cache": count / ours, "dataloader": count / theirs, "ratio": theirs / ours},
        "c_cache_build_s": build,
        "c_dataloader_epoch_s": decode_epoch,
        "c_ratio": decode_epoch / build,
    }
    if side != 28:
        return result
    arch = load_space("densenet_hybrid").baseline("small_dense")

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return build_model(arch, data.input_size, data.num_classes)

    ours_train = best(rounds, lambda: toolkit_train_epoch(fresh(), data, device))
    theirs_train = best(rounds, lambda: loader_train_epoch(fresh(), augmented, device))
    builtin = builtin_like(data)
    builtin_train = best(rounds, lambda: toolkit_train_epoch(fresh(), builtin, device))
    result["b_train_epoch_images_per_s"] = {
        "cache": count / ours_train,
        "dataloader": count / theirs_train,
        "ratio": theirs_train / ours_train,
    }
    result["d_folder_vs_builtin_train_s"] = {
        "folder": ours_train,
        "builtin": builtin_train,
        "ratio": ours_train / builtin_train,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20000, help="Images of the 28 px and 96 px sets.")
    parser.add_argument("--large-images", type=int, default=2000, help="Images of the 224 px set.")
    parser.add_argument("--rounds", type=int, default=2, help="Best of this many runs of each figure.")
    parser.add_argument("--device", default="auto", help="Training device: auto, cpu or cuda.")
    parser.add_argument("--out", type=Path, default=None, help="Write the JSON here too.")
    args = parser.parse_args()
    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix="data-throughput-"))
    try:
        started = time.perf_counter()
        sets = write_sets(work, args.images, args.large_images)
        results = {
            name: measure_set(folder, side, work / f"cache-{name}", device, args.rounds)
            for name, (folder, side) in sets.items()
        }
        report = {
            "machine": {
                "device": str(device),
                "cpus": len(os.sched_getaffinity(0)),
                "torch_threads": torch.get_num_threads(),
                "load_average_at_end": os.getloadavg(),
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            "settings": {"batch": BATCH, "loader_workers": LOADER_WORKERS, "rounds": args.rounds},
            "seconds": time.perf_counter() - started,
            "sets": results,
        }
        text = json.dumps(report, indent=2)
        print(text)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
