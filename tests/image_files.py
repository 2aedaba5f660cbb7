"""Real images on disk for the data-source tests: Fashion-MNIST written out as PNG and JPEG files.

A few images per class, taken in order from the real data set (Debian's
copy, or wherever ``load_dataset`` finds it), so the tests decode real
photographs of clothes through the same files a user would have.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.data import DATASETS, DataError, load_dataset

CLASSES = tuple(name.replace("/", "-") for name in DATASETS["fashion_mnist"].class_names)


@functools.lru_cache(maxsize=1)
def fashion_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST's train and test images (N, 28, 28) and labels; skips the test when it is missing."""
    try:
        data = load_dataset("fashion_mnist", validation_size=0)
    except DataError as error:
        pytest.skip(f"Fashion-MNIST is not installed ({error})")
    return data.train[0][:, 0].numpy(), data.train[1].numpy(), data.test[0][:, 0].numpy(), data.test[1].numpy()


def first_per_class(labels: np.ndarray, count: int) -> list[int]:
    """Indices of the first ``count`` images of each class, class by class."""
    return [int(i) for label in range(10) for i in np.flatnonzero(labels == label)[:count]]


def write_images(
    folder: Path,
    images: np.ndarray,
    labels: np.ndarray,
    indices: list[int],
    *,
    suffix: str = ".png",
    side: int | None = None,
    prefix: str = "",
) -> list[Path]:
    """Each chosen image as ``folder/<class>/<prefix><index><suffix>``, enlarged to ``side`` when given."""
    written = []
    for i in indices:
        path = folder / CLASSES[labels[i]] / f"{prefix}{i:05d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(images[i])
        if side is not None:
            image = image.resize((side, side), Image.Resampling.BICUBIC)
        image.save(path, quality=90) if suffix.lower() in (".jpg", ".jpeg") else image.save(path)
        written.append(path)
    return written


def fashion_folder(root: Path, *, per_class: int, suffix: str = ".png", side: int | None = None) -> Path:
    """``per_class`` training images of each class as one folder per class."""
    x, y, _, _ = fashion_arrays()
    write_images(root, x, y, first_per_class(y, per_class), suffix=suffix, side=side)
    return root


def fashion_split_folder(root: Path, *, train: int, test: int, val: int = 0) -> Path:
    """train/, val/ (when ``val``) and test/ folders of class folders: the user's own split."""
    x, y, tx, ty = fashion_arrays()
    chosen = first_per_class(y, train + val)
    per_class = train + val
    train_idx = [i for n, i in enumerate(chosen) if n % per_class < train]
    val_idx = [i for n, i in enumerate(chosen) if n % per_class >= train]
    write_images(root / "train", x, y, train_idx)
    if val:
        write_images(root / "val", x, y, val_idx, suffix=".jpg")
    write_images(root / "test", tx, ty, first_per_class(ty, test))
    return root


def write_manifest(folder: Path, manifest: Path, *, split: dict[str, str] | None = None) -> Path:
    """A CSV manifest of every image below ``folder`` (class = its folder), paths relative to the manifest."""
    rows = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            name = path.relative_to(manifest.parent).as_posix()
            rows.append([name, path.parent.name, *([split.get(name, "train")] if split is not None else [])])
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", *(["split"] if split is not None else [])])
        writer.writerows(rows)
    return manifest
