"""Datasets as in-memory uint8 tensors, and the batch pipeline that feeds training.

A dataset is read once per process (``load_dataset`` caches the raw arrays), kept
as ``uint8`` tensors of shape (N, C, H, W), and split into train / validation /
test. The validation split is carved from the training set with a seed; the
test set is only for final evaluation. ``BatchPipeline`` turns a uint8 batch
into the network's input on the training device (resize, random crop with
padding, horizontal flip, normalisation), so the training loop does no
per-image Python work.

Files are looked for in this order: ``root`` (``--data-root``),
``$SEARCH_DATA_DIR``, the system copy (Debian's ``dataset-fashion-mnist``
installs ``/usr/share/datasets/fashion-mnist/*.gz``), torchvision's cache, then
a download into that cache. When all fail, ``DataError`` says how to get it.

Beside the built-in names, ``load_dataset`` takes a user's source
(``folder:PATH``, ``csv:FILE``, ``npz:FILE``; ``evaluation.images``): decoded
once into a cache whose rows are train, then validation, then test, so its
splits are slices. A cache that fits in memory is read into it; a larger one
stays memory-mapped (each split a view of the file) and training pages from disk.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.errors import DataError
from evaluation.feeding import HOST_SHARE, available_memory
from evaluation.images import Decoding, SourceOptions, is_source, list_source, open_cache

__all__ = [
    "DATASETS",
    "BatchPipeline",
    "DataError",
    "DataSplits",
    "DatasetSpec",
    "describe_data",
    "load_dataset",
    "torchvision_cache",
]


Pair = tuple[torch.Tensor, torch.Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)


@dataclass(frozen=True)
class DatasetSpec:
    """What the loader needs to know about one dataset.

    ``flip``: whether a horizontal flip is a label-preserving augmentation
    (clothes and CIFAR objects, yes; digits, no). ``torchvision_class``: the
    dataset class that downloads it (None: nothing to download).
    ``system_dirs``: where a distribution package installs the files.
    """

    name: str
    title: str
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool
    read: Callable[[Path], tuple[Pair, Pair] | None]
    torchvision_class: str | None
    system_dirs: tuple[Path, ...] = ()
    apt_package: str | None = None
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataSplits:
    """Train, validation and test sets as (uint8 images, int64 labels) pairs.

    ``class_names``: one per label. ``decoding``: how a new image file becomes
    one of these images (what ``search predict`` repeats). ``fingerprint``: a
    hash of a source's files and split, None for a built-in data set (fixed
    files); ``cache``: the folder a source's images are mapped from.
    """

    name: str
    train: Pair
    val: Pair
    test: Pair
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool
    class_names: tuple[str, ...] = ()
    decoding: Decoding | None = None
    fingerprint: str | None = None
    cache: Path | None = None
    skipped: int = 0  # files of a source that could not be decoded, listed in cache / "skipped.csv"


# --- readers -------------------------------------------------------------------

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format), gzipped or not: big-endian dims, then data.

    A truncated or corrupt file is a ``DataError`` naming it, not a traceback.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        reason = f"{type(error).__name__}: {' '.join(str(error).split())}".rstrip(": ")
        raise DataError(f"{path}: not a readable IDX file ({reason}); replace it with a whole copy") from None
    ndim = data[3] if len(data) >= 4 else 0
    if len(data) < 4 + 4 * ndim or ndim == 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of bytes (header {data[:4].hex() or 'empty'}); replace it")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(
            f"{path}: truncated IDX file ({len(data):,} bytes, its header promises {expected:,}); "
            f"replace it with a whole copy"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(dims))


def _find_idx(directory: Path, stem: str, folder: str) -> Path | None:
    """``stem`` or ``stem.gz`` in ``directory`` or in torchvision's ``folder/raw`` layout."""
    for base in (directory, directory / folder / "raw"):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    return None


def _idx_reader(folder: str) -> Callable[[Path], tuple[Pair, Pair] | None]:
    """A reader for MNIST-format IDX files; ``folder`` is torchvision's class name."""

    def read(directory: Path) -> tuple[Pair, Pair] | None:
        parts = []
        for split in ("train", "test"):
            found = [_find_idx(directory, stem, folder) for stem in _IDX_FILES[split]]
            paths = [path for path in found if path is not None]
            if len(paths) < len(found):
                return None
            images, labels = (_read_idx(path) for path in paths)
            parts.append((torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))))
        return parts[0], parts[1]

    return read


def _read_cifar10(directory: Path) -> tuple[Pair, Pair] | None:
    """CIFAR-10's python pickles (``cifar-10-batches-py``), as torchvision extracts them."""
    base = directory / "cifar-10-batches-py"
    batches = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    if not all((base / name).is_file() for names in batches.values() for name in names):
        return None
    parts = []
    for names in batches.values():
        images, labels = [], []
        for name in names:
            with open(base / name, "rb") as handle:
                entry = pickle.load(handle, encoding="latin1")
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry["labels"], dtype=np.int64))
        parts.append((torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))))
    return parts[0], parts[1]


def _read_digits(_: Path) -> tuple[Pair, Pair]:
    """scikit-learn's bundled 8x8 digits (1797 images, no files needed).

    Pixel values 0-16 are scaled to 0-255; a fixed 20% (seed 0, independent of
    the split seed) is the test set, so every run evaluates on the same images.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[: len(labels) // 5], order[len(labels) // 5 :]
    return (images[train], labels[train]), (images[test], labels[test])


def _download(torchvision_class: str, directory: Path) -> None:
    """Fetch a data set into ``directory`` with its torchvision class (which also extracts it)."""
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, torchvision_class)
    for train in (True, False):
        dataset_class(str(directory), train=train, download=True)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="fashion_mnist",
            title="Fashion-MNIST",
            num_classes=10,
            input_size=(1, 28, 28),
            mean=(0.2860,),
            std=(0.3530,),
            flip=True,
            read=_idx_reader("FashionMNIST"),
            torchvision_class="FashionMNIST",
            system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
            apt_package="dataset-fashion-mnist",
            class_names=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
        ),
        DatasetSpec(
            name="mnist",
            title="MNIST",
            num_classes=10,
            input_size=(1, 28, 28),
            mean=(0.1307,),
            std=(0.3081,),
            flip=False,
            read=_idx_reader("MNIST"),
            torchvision_class="MNIST",
            class_names=tuple("0123456789"),
        ),
        DatasetSpec(
            name="cifar10",
            title="CIFAR-10",
            num_classes=10,
            input_size=(3, 32, 32),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            flip=True,
            read=_read_cifar10,
            torchvision_class="CIFAR10",
            class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        ),
        DatasetSpec(
            name="digits",
            title="scikit-learn digits",
            num_classes=10,
            input_size=(1, 8, 8),
            mean=(0.3057,),
            std=(0.3759,),
            flip=False,
            read=_read_digits,
            torchvision_class=None,
            class_names=tuple("0123456789"),
        ),
    )
}


# --- lookup --------------------------------------------------------------------


def torchvision_cache() -> Path:
    """Where torchvision-style downloads go: ``$XDG_CACHE_HOME/torchvision`` or ``~/.cache/torchvision``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torchvision"


def _candidates(spec: DatasetSpec, root: str | None, search_dir: str | None) -> list[tuple[str, Path]]:
    """The places to look, in order, each with a label for the error message."""
    places: list[tuple[str, Path]] = []
    if root is not None:
        places.append(("--data-root", Path(root)))
    if search_dir:
        places.append(("$SEARCH_DATA_DIR", Path(search_dir)))
    places += [("system copy", directory) for directory in spec.system_dirs]
    places.append(("torchvision cache", torchvision_cache()))
    return places


@functools.lru_cache(maxsize=8)
def _load_raw(name: str, root: str | None, search_dir: str | None, download: bool = True) -> tuple[Pair, Pair]:
    """Train and test pairs of ``name``, read once per process and per place.

    ``search_dir`` is ``$SEARCH_DATA_DIR`` at call time, passed in so that it
    is part of the cache key. Without ``download``, files found nowhere are a
    ``DataError`` at once.
    """
    spec = DATASETS[name]
    places = _candidates(spec, root, search_dir)
    for _, directory in places:
        found = spec.read(directory)
        if found is not None:
            return found
    assert spec.torchvision_class is not None, f"{name}: a reader without files never returns None"
    if not download:
        looked = "; ".join(f"{label} {directory}" for label, directory in places)
        raise DataError(f"{spec.title} not found (looked in: {looked})")
    cache = torchvision_cache()
    try:
        _download(spec.torchvision_class, cache)
        found = spec.read(cache)
        failure = "the download left no readable files"
    except Exception as error:  # any network or file error: reported below as one message
        found, failure = None, f"{type(error).__name__}: {' '.join(str(error).split())}"
    if found is not None:
        return found
    looked = "; ".join(f"{label} {directory}" for label, directory in places)
    ways = []
    if spec.apt_package:
        ways.append(f"install Debian's package (sudo apt-get install {spec.apt_package})")
    ways.append(
        f'download it with torchvision (python -c "import torchvision; '
        f"torchvision.datasets.{spec.torchvision_class}('{cache}', download=True)\") "
        f"or put the files in a folder passed as --data-root or $SEARCH_DATA_DIR"
    )
    raise DataError(
        f"{spec.title} not found (looked in: {looked}) and the download into {cache} failed "
        f"({failure}); {' or '.join(ways)}"
    )


def load_dataset(
    name: str = "fashion_mnist",
    *,
    root: str | Path | None = None,
    validation_size: int | float = 5000,
    seed: int = 0,
    options: SourceOptions | None = None,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    download: bool = True,
) -> DataSplits:
    """``name`` split into train, validation and test sets.

    ``validation_size`` is a count of images or, below 1, a fraction of the
    training set; 0 keeps the whole training set for training. The split
    depends only on ``seed`` and the size, so repeated calls agree.

    ``name`` may also be a source (``folder:PATH``, ``csv:FILE``, ``npz:FILE``),
    read with ``options`` (resolution, channels, resize policy, split; see
    ``SourceOptions``) through the cache in ``cache_dir`` (default:
    ``evaluation.images.cache_root()``), decoded by ``workers`` processes with
    a progress bar when ``progress``. A source's split is its own, fixed by its
    options rather than by ``seed``, so every run and finalize of a study sees
    the same images: ``validation_size`` 0 trains on its validation images
    too, any other value keeps them for validation. ``root`` is for built-ins,
    and so is ``download``: False where fetching a missing data set would be
    wrong (the report only shows data that is there).
    """
    if is_source(name):
        return _load_source(name, options or SourceOptions(), validation_size, cache_dir, workers, progress)
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)} "
            f"(or a source: folder:PATH, csv:FILE, npz:FILE)"
        )
    if options not in (None, SourceOptions()):
        raise DataError(
            f"{name} is a built-in data set of fixed images; resolution, channels and split options "
            f"apply to folder:, csv: and npz: sources"
        )
    spec = DATASETS[name]
    (train_x, train_y), test = _load_raw(
        name, None if root is None else str(root), os.environ.get("SEARCH_DATA_DIR"), download
    )
    count = round(validation_size * len(train_y)) if isinstance(validation_size, float) else validation_size
    if not 0 <= count < len(train_y):
        raise DataError(
            f"validation_size must leave training images: between 0 and {len(train_y) - 1} "
            f"(or a fraction below 1), got {validation_size}"
        )
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:count].sort().values, order[count:].sort().values
    return DataSplits(
        name=name,
        train=(train_x[train_idx], train_y[train_idx]),
        val=(train_x[val_idx], train_y[val_idx]),
        test=test,
        num_classes=spec.num_classes,
        input_size=spec.input_size,
        mean=spec.mean,
        std=spec.std,
        flip=spec.flip,
        class_names=spec.class_names,
        decoding=Decoding(side=spec.input_size[1], channels=spec.input_size[0]),
    )


def _load_source(
    text: str,
    options: SourceOptions,
    validation_size: int | float,
    cache_dir: Path | None,
    workers: int | None,
    progress: bool | None,
) -> DataSplits:
    """A user's source as splits: views of its memory-mapped cache (rows train | val | test)."""
    listing = list_source(text, options)
    cache = open_cache(listing, options, cache_dir=cache_dir, workers=workers, progress=progress)
    # Read into memory when it fits comfortably (a gather from memory is faster than from a mapping);
    # else the splits stay views of the mapped file, and training pages from disk.
    fits = cache.images.nbytes <= HOST_SHARE * available_memory()
    images = torch.from_numpy(cache.read_images() if fits else cache.images)
    labels = torch.from_numpy(cache.labels)
    ranges = cache.ranges
    train_end = ranges["train"][1] if validation_size else ranges["val"][1]
    val = ranges["val"] if validation_size else (train_end, train_end)
    test = ranges["test"]
    decoding = cache.decoding
    return DataSplits(
        name=listing.source,
        train=(images[:train_end], labels[:train_end]),
        val=(images[val[0] : val[1]], labels[val[0] : val[1]]),
        test=(images[test[0] : test[1]], labels[test[0] : test[1]]),
        num_classes=len(listing.classes),
        input_size=(decoding.channels, decoding.side, decoding.side),
        mean=tuple(cache.meta["mean"]),
        std=tuple(cache.meta["std"]),
        flip=options.flip,
        class_names=listing.classes,
        decoding=decoding,
        fingerprint=cache.meta["fingerprint"],
        cache=cache.directory,
        skipped=cache.meta["skipped"],
    )


def describe_data(data: DataSplits) -> dict[str, Any]:
    """What a trained model needs to know of its data, as JSON: class names, normalisation, decoding.

    ``search predict`` reads it from a run's result.json or an ONNX file's
    metadata to prepare new images exactly as the training images were.
    """
    return {
        "dataset": data.name,
        "classes": list(data.class_names) or [str(i) for i in range(data.num_classes)],
        "input_size": list(data.input_size),
        "mean": list(data.mean),
        "std": list(data.std),
        "decoding": None if data.decoding is None else dataclasses.asdict(data.decoding),
        "fingerprint": data.fingerprint,
    }


# --- batches on the device -------------------------------------------------------

_RESIZE_BLOCK = 32 * 2**20  # bytes of float images resized at once


class BatchPipeline:
    """uint8 batch -> float input on the device: resize, augment, normalise.

    Augmentation is per batch with per-image randomness (Krizhevsky et al.'s
    random crop with padding and horizontal flip). The crop pads by 1/8 of the
    side (4 px at 32, as in the ResNet paper's CIFAR setting) with zeros, i.e.
    black as torchvision's ``RandomCrop(padding=...)``. Crop and flip work on
    the uint8 images (a quarter of the float bytes to move) and the float
    conversion happens once, into the output's memory format. On CUDA the
    crop is one gather, so no Python runs per image; on a CPU a slice per
    image is cheaper than gathering every pixel by index (twice as fast at
    96 px, more at 224). Both draw the same random numbers and give the same
    images.
    """

    def __init__(
        self,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        device: torch.device,
        resize: int | None = None,
        flip: bool = True,
        channels_last: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.scale = 1 / (torch.tensor(std, device=device).view(1, -1, 1, 1) * 255)
        self.resize = resize
        self.flip = flip
        self.channels_last = channels_last
        self.generator = generator

    def __call__(self, images: torch.Tensor, *, augment: bool) -> torch.Tensor:
        x = images
        if self.resize is not None and x.shape[-2:] != (self.resize, self.resize):
            x = _resized(x, self.resize)
        if augment:
            x = self._augment(x)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device, memory_format=memory_format)
        return out.copy_(x).sub_(self.mean).mul_(self.scale)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Each image shifted within its zero padding, and mirrored with probability 1/2 when ``flip``."""
        n, _, h, w = x.shape
        pad = max(1, min(h, w) // 8)
        offsets = torch.randint(0, 2 * pad + 1, (2, n), device=x.device, generator=self.generator)
        flips = torch.rand(n, device=x.device, generator=self.generator) < 0.5 if self.flip else None
        padded = F.pad(x, (pad, pad, pad, pad))
        crop = _crop_by_slices if x.device.type == "cpu" else _crop_by_gather
        return crop(padded, offsets, flips, (h, w))


def _resized(images: torch.Tensor, side: int) -> torch.Tensor:
    """``images`` resized to ``side`` px, bilinear as torchvision's Resize on PIL images in the d2l book.

    Converted to float and resized ``_RESIZE_BLOCK`` bytes of float input at
    a time: each image is resized alone, so the result is the same to the bit,
    and a 512-image evaluation batch at 224 px does not need 300 MB of floats
    at once (what broke a run under a 1 GiB memory limit).
    """
    n, channels = images.shape[:2]
    step = max(1, _RESIZE_BLOCK // max(1, images[:1].numel() * 4))
    if step >= n:
        return F.interpolate(images.float(), size=(side, side), mode="bilinear", align_corners=False)
    out = torch.empty((n, channels, side, side), dtype=torch.float32, device=images.device)
    for start in range(0, n, step):
        block = images[start : start + step].float()
        out[start : start + step] = F.interpolate(block, size=(side, side), mode="bilinear", align_corners=False)
    return out


def _crop_by_slices(
    padded: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None, size: tuple[int, int]
) -> torch.Tensor:
    """The (h, w) window of each padded image at its (row, column) offset, mirrored where ``flips``: a slice each."""
    h, w = size
    mirrored = flips.tolist() if flips is not None else [False] * len(padded)
    crops = [
        padded[i, :, dy : dy + h, dx : dx + w]
        for i, (dy, dx) in enumerate(zip(offsets[0].tolist(), offsets[1].tolist()))
    ]
    return torch.stack([crop.flip(2) if mirror else crop for crop, mirror in zip(crops, mirrored)])


def _crop_by_gather(
    padded: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor | None, size: tuple[int, int]
) -> torch.Tensor:
    """The same windows as ``_crop_by_slices``, as one gather: no Python per image, no host sync."""
    h, w = size
    n, device = len(padded), padded.device
    channels_last = padded.permute(0, 2, 3, 1)  # N, H+2p, W+2p, C
    rows = (offsets[0].view(n, 1) + torch.arange(h, device=device)).view(n, h, 1)
    cols = (offsets[1].view(n, 1) + torch.arange(w, device=device)).view(n, 1, w)
    crops = channels_last[torch.arange(n, device=device).view(n, 1, 1), rows, cols].permute(0, 3, 1, 2)
    return crops if flips is None else torch.where(flips.view(-1, 1, 1, 1), crops.flip(3), crops)
