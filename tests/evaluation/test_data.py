"""Dataset lookup order, the validation split, and the batch pipeline."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation import data as data_module
from evaluation.data import DATASETS, BatchPipeline, DataError, load_dataset

TRAIN_SIZE, TEST_SIZE = 40, 10


def _write_idx(path: Path, array: np.ndarray, *, compress: bool) -> None:
    """An IDX file: two zero bytes, type 0x08 (uint8), the rank, big-endian dims, data."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def _write_fake_mnist(directory: Path, marker: int, *, compress: bool = True) -> None:
    """IDX files whose pixel [0, 0] is ``marker`` (which copy was read) and whose
    pixels [1, 0] and [1, 1] number the image (train 0-39, test 100-109)."""
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, count, first in (("train", TRAIN_SIZE, 0), ("t10k", TEST_SIZE, 100)):
        images = np.zeros((count, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = marker
        images[:, 1, 0] = np.arange(first, first + count)
        labels = np.arange(count) % 10
        _write_idx(directory / f"{prefix}-images-idx3-ubyte", images, compress=compress)
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, compress=compress)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty stand-ins for every place the loader looks, and no network."""
    paths = {name: tmp_path / name for name in ("root", "env", "system", "cache_home")}
    monkeypatch.setenv("SEARCH_DATA_DIR", str(paths["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(paths["cache_home"]))
    spec = dataclasses.replace(DATASETS["fashion_mnist"], system_dirs=(paths["system"],))
    monkeypatch.setitem(DATASETS, "fashion_mnist", spec)

    def offline(torchvision_class: str, directory: Path) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(data_module, "_download", offline)
    data_module._load_raw.cache_clear()
    yield paths
    data_module._load_raw.cache_clear()


def _marker(root: Path | None = None) -> int:
    return int(load_dataset("fashion_mnist", root=root, validation_size=0).train[0][0, 0, 0, 0])


def test_load_dataset_lookup_order_prefers_root_then_env_then_system_then_cache(places: dict[str, Path]) -> None:
    _write_fake_mnist(places["root"], 1)
    _write_fake_mnist(places["env"], 2)
    _write_fake_mnist(places["system"], 3, compress=False)
    # torchvision's layout: <cache>/FashionMNIST/raw/, files extracted.
    _write_fake_mnist(places["cache_home"] / "torchvision" / "FashionMNIST" / "raw", 4, compress=False)
    assert _marker(places["root"]) == 1, "--data-root must win over every other place"
    assert _marker() == 2, "$SEARCH_DATA_DIR must come before the system copy and the cache"
    places["env"].rename(places["env"].with_name("env-gone"))
    data_module._load_raw.cache_clear()
    assert _marker() == 3, "the system copy must come before torchvision's cache"
    places["system"].rename(places["system"].with_name("system-gone"))
    data_module._load_raw.cache_clear()
    assert _marker() == 4, "torchvision's cache must be read when nothing else has the files"


def test_load_dataset_downloads_when_no_copy_exists(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[Path] = []

    def download(torchvision_class: str, directory: Path) -> None:
        fetched.append(directory)
        _write_fake_mnist(directory / "FashionMNIST" / "raw", 5)

    monkeypatch.setattr(data_module, "_download", download)
    assert _marker() == 5, "the downloaded copy must be read"
    assert fetched == [places["cache_home"] / "torchvision"], (
        f"download must go to torchvision's cache, went to {fetched}"
    )


def test_load_dataset_without_any_copy_raises_one_clear_error(places: dict[str, Path]) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("fashion_mnist")
    message = str(caught.value)
    assert "\n" not in message, f"the error must be one line, got {message!r}"
    for part in (
        "apt-get install dataset-fashion-mnist",
        "torchvision.datasets.FashionMNIST",
        "--data-root",
        "SEARCH_DATA_DIR",
        str(places["system"]),
        "network unreachable",
    ):
        assert part in message, f"the error must mention {part!r}, got {message!r}"


def test_load_dataset_rejects_unknown_name_with_the_known_ones() -> None:
    with pytest.raises(DataError, match="known datasets: fashion_mnist, mnist, cifar10, digits"):
        load_dataset("imagenet")


def test_load_dataset_rejects_validation_size_that_leaves_no_training_images() -> None:
    with pytest.raises(DataError, match="validation_size"):
        load_dataset("digits", validation_size=10_000)


def _ids(images: torch.Tensor) -> set[int]:
    return set(images[:, 0, 1, 0].tolist())


def test_load_dataset_split_is_deterministic_and_disjoint_from_test(places: dict[str, Path]) -> None:
    _write_fake_mnist(places["root"], 1)
    first = load_dataset("fashion_mnist", root=places["root"], validation_size=8, seed=3)
    again = load_dataset("fashion_mnist", root=places["root"], validation_size=8, seed=3)
    other = load_dataset("fashion_mnist", root=places["root"], validation_size=8, seed=4)
    train, val, test = _ids(first.train[0]), _ids(first.val[0]), _ids(first.test[0])
    assert len(val) == 8 and len(train) == TRAIN_SIZE - 8, f"sizes: train {len(train)}, val {len(val)}"
    assert not train & val, f"train and validation share images {train & val}"
    assert train | val == set(range(TRAIN_SIZE)), "train and validation must cover the training set"
    assert test == set(range(100, 100 + TEST_SIZE)) and not test & (train | val), "the test set must stay apart"
    assert _ids(again.val[0]) == val, "the same seed must give the same split"
    assert _ids(other.val[0]) != val, "another seed must give another split"
    assert torch.equal(first.train[1], (first.train[0][:, 0, 1, 0] % 10).long()), "labels must follow their images"


def test_load_dataset_fraction_validation_size_and_digits_shapes() -> None:
    splits = load_dataset("digits", validation_size=0.25, seed=0)
    total = len(splits.train[1]) + len(splits.val[1])
    assert len(splits.val[1]) == round(0.25 * total), f"validation holds {len(splits.val[1])} of {total}"
    assert splits.train[0].dtype == torch.uint8 and splits.train[0].shape[1:] == (1, 8, 8), "uint8 N,1,8,8 images"
    assert splits.train[1].dtype == torch.int64, "labels must be int64"


@pytest.mark.skipif(
    not (Path("/usr/share/datasets/fashion-mnist") / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (make data installs it)",
)
def test_load_dataset_reads_real_fashion_mnist() -> None:
    splits = load_dataset("fashion_mnist", validation_size=5000)
    sizes = [len(labels) for _, labels in (splits.train, splits.val, splits.test)]
    assert sizes == [55000, 5000, 10000], f"train/val/test sizes {sizes}"
    assert splits.input_size == (1, 28, 28) and splits.train[0].shape[1:] == (1, 28, 28), "28x28 grey images"
    assert torch.bincount(splits.test[1]).tolist() == [1000] * 10, "the test set has 1000 images per class"
    assert load_dataset("fashion_mnist").train[0] is not None, "a second load must come from the cache"


def _pipeline(**kwargs: object) -> BatchPipeline:
    return BatchPipeline(
        mean=(0.5,), std=(0.25,), device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), **kwargs
    )  # type: ignore[arg-type]


def test_batch_pipeline_without_augmentation_only_normalises() -> None:
    images = torch.randint(0, 256, (6, 1, 12, 12), dtype=torch.uint8)
    out = _pipeline()(images, augment=False)
    expected = (images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(out, expected, atol=1e-5), "without augmentation the batch is only normalised"
    assert out.is_contiguous(memory_format=torch.channels_last), "the batch must be channels_last"


def test_batch_pipeline_augmentation_is_a_padded_shift_or_flip_of_each_image() -> None:
    images = torch.randint(1, 256, (16, 1, 16, 16), dtype=torch.uint8)  # no zeros: padding is recognisable
    out = _pipeline(flip=True)(images, augment=True)
    low, high = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25
    assert out.shape == images.shape and out.dtype == torch.float32, f"shape {out.shape}, dtype {out.dtype}"
    assert out.min() >= low - 1e-5 and out.max() <= high + 1e-5, f"values {out.min()}..{out.max()} out of range"
    pad = 16 // 8
    padded = torch.nn.functional.pad(images.float() / 255, (pad,) * 4)
    flipped_any = shifted_any = False
    for image, result in zip(padded, out * 0.25 + 0.5):
        crops = {
            (dy, dx): image[:, dy : dy + 16, dx : dx + 16] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
        }
        matches = [
            (dy, dx, flip)
            for (dy, dx), crop in crops.items()
            for flip in (False, True)
            if torch.allclose(crop.flip(2) if flip else crop, result, atol=1e-5)
        ]
        assert matches, "every augmented image must be a crop of the padded image, maybe flipped"
        flipped_any |= any(flip for _, _, flip in matches) and not any(not flip for _, _, flip in matches)
        shifted_any |= all((dy, dx) != (pad, pad) for dy, dx, _ in matches)
    assert flipped_any and shifted_any, "16 images must include some flips and some shifts"


def test_batch_pipeline_without_flip_never_mirrors() -> None:
    images = torch.zeros(32, 1, 8, 8, dtype=torch.uint8)
    images[:, :, :, :4] = 255  # left half white: a mirror puts it on the right
    out = _pipeline(flip=False)(images, augment=True)
    left, right = out[..., :3].mean(), out[..., 5:].mean()
    assert left > right, f"digits must not be mirrored: left mean {left}, right mean {right}"


def test_batch_pipeline_resizes_to_the_asked_side() -> None:
    images = torch.full((3, 1, 8, 8), 255, dtype=torch.uint8)
    out = _pipeline(resize=20)(images, augment=True)
    assert out.shape == (3, 1, 20, 20), f"resize 20 must give 20x20 images, got {tuple(out.shape)}"


def test_batch_pipeline_resizes_a_large_batch_block_by_block_to_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big batch is converted to float and resized a block at a time (an evaluation batch of 512 at 224 px
    would otherwise hold 300 MB of floats at once): the same images as torch's resize of the whole batch."""
    images = torch.randint(0, 256, (37, 3, 40, 40), dtype=torch.uint8)
    monkeypatch.setattr(data_module, "_RESIZE_BLOCK", 5 * 3 * 40 * 40 * 4)  # 5 images a block: 8 blocks
    out = _pipeline(resize=24)(images, augment=False)
    whole = torch.nn.functional.interpolate(images.float(), size=(24, 24), mode="bilinear", align_corners=False)
    assert torch.equal(out, whole.sub(0.5 * 255).mul(1 / (0.25 * 255))), "block by block, bit for bit the same"


@pytest.mark.parametrize("flip", [True, False])
def test_batch_pipeline_crops_by_slices_and_by_gather_agree(flip: bool) -> None:
    """The CPU's slice per image and CUDA's one gather cut the same windows (both run here, on the CPU)."""
    padded = torch.randint(0, 256, (24, 3, 14, 14), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(3)
    offsets = torch.randint(0, 5, (2, 24), generator=generator)
    flips = torch.rand(24, generator=generator) < 0.5 if flip else None
    by_slices = data_module._crop_by_slices(padded, offsets, flips, (10, 10))
    by_gather = data_module._crop_by_gather(padded, offsets, flips, (10, 10))
    assert by_slices.shape == (24, 3, 10, 10) and torch.equal(by_slices, by_gather), "the same windows either way"
