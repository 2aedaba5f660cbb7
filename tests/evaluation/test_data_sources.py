"""Sources of a user's images: listing, the cache (decode once, re-read on change), the split, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from image_files import CLASSES, fashion_arrays, fashion_folder, fashion_split_folder, write_manifest
from PIL import Image

from evaluation import Architecture, TrainConfig, build_model, train
from evaluation import data as data_module
from evaluation.data import DataError, load_dataset
from evaluation.images import SourceOptions, list_source, open_cache
from evaluation.images import cache as cache_module
from evaluation.images.cache import AUTO_RESOLUTION_LIMIT

CACHE_FILES = ("images.npy", "labels.npy", "meta.json", "rows.csv", "skipped.csv")


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fashion-MNIST, 20 training images per class, as folders of PNG files."""
    return fashion_folder(tmp_path_factory.mktemp("fashion") / "png", per_class=20)


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fashion-MNIST, 12 images per class, enlarged to 48 px, as JPEG files."""
    return fashion_folder(tmp_path_factory.mktemp("fashion") / "jpeg", per_class=12, suffix=".jpg", side=48)


def _load(source: str, cache: Path, **options: object) -> data_module.DataSplits:
    return load_dataset(source, options=SourceOptions(**options), cache_dir=cache, workers=1)


def test_folder_source_reads_real_fashion_mnist_pngs_exactly(png_folder: Path, tmp_path: Path) -> None:
    data = _load(f"folder:{png_folder}", tmp_path)
    assert data.class_names == tuple(sorted(CLASSES)), data.class_names
    assert data.input_size == (1, 28, 28), f"28 px grey PNGs give 1x28x28, got {data.input_size}"
    sizes = [len(labels) for _, labels in (data.train, data.val, data.test)]
    assert sizes == [140, 20, 40], f"10% validation and 20% test of 20 images per class: {sizes}"
    for _, labels in (data.train, data.val, data.test):
        counts = torch.bincount(labels, minlength=10).tolist()
        assert len(set(counts)) == 1, f"the split is stratified: every class equally represented, got {counts}"
    x, y, _, _ = fashion_arrays()
    originals: dict[bytes, set[str]] = {}  # each original image to its class names (a few images recur)
    for i in range(2000):
        originals.setdefault(x[i].tobytes(), set()).add(CLASSES[y[i]])
    for images, labels in (data.train, data.val, data.test):
        assert all(image[0].numpy().tobytes() in originals for image in images), "PNG decoding is lossless"
        named = [data.class_names[int(label)] for label in labels]
        found = [originals[image[0].numpy().tobytes()] for image in images]
        assert all(name in names for name, names in zip(named, found)), "each image keeps its own class"
    assert 0.2 < data.mean[0] < 0.4 and 0.25 < data.std[0] < 0.45, (
        f"Fashion-MNIST-like statistics: {data.mean}, {data.std}"
    )


def test_jpeg_folder_chooses_the_median_side_and_grey_channels(jpeg_folder: Path, tmp_path: Path) -> None:
    data = _load(f"folder:{jpeg_folder}", tmp_path)
    assert data.input_size == (1, 48, 48), f"48 px grey JPEGs: {data.input_size}"
    asked = _load(f"folder:{jpeg_folder}", tmp_path, resolution=32, channels=3)
    assert asked.input_size == (3, 32, 32) and asked.train[0].shape[1:] == (3, 32, 32), asked.input_size
    image = asked.train[0][0]
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]), "grey files in RGB: equal channels"


def test_csv_manifest_gives_the_same_cache_as_the_folder(png_folder: Path, tmp_path: Path) -> None:
    manifest = write_manifest(png_folder, png_folder / "labels.csv")
    folder = open_cache(list_source(f"folder:{png_folder}", SourceOptions()), SourceOptions(), cache_dir=tmp_path)
    listed = open_cache(list_source(f"csv:{manifest}", SourceOptions()), SourceOptions(), cache_dir=tmp_path)
    for name in ("images.npy", "labels.npy", "rows.csv"):
        assert (folder.directory / name).read_bytes() == (listed.directory / name).read_bytes(), (
            f"{name}: the same files, labels and names must give the same cache"
        )
    manifest.unlink()


def test_npz_source_keeps_its_test_arrays_and_carves_validation(tmp_path: Path) -> None:
    x, y, tx, ty = fashion_arrays()
    archive = tmp_path / "fashion.npz"
    np.savez(archive, x_train=x[:300], y_train=y[:300], x_test=tx[:50], y_test=ty[:50])
    data = _load(f"npz:{archive}", tmp_path / "cache")
    assert len(data.test[1]) == 50, "x_test is the user's test split"
    assert sorted(image.numpy().tobytes() for image in data.test[0][:, 0]) == sorted(t.tobytes() for t in tx[:50])
    assert len(data.train[1]) + len(data.val[1]) == 300 and len(data.val[1]) > 0, "validation carved from x_train"
    assert data.class_names == tuple(str(i) for i in range(10)), data.class_names


def test_npz_listing_reads_image_headers_only_and_decoding_reads_the_arrays(tmp_path: Path) -> None:
    """Every run lists its source, also when the cache exists: an archive's images are read only to decode."""
    x, y, _, _ = fashion_arrays()
    archive = tmp_path / "channels.npz"
    np.savez(archive, x_train=x[:200, None], y_train=y[:200])  # (N, 1, H, W): channels first
    listing = list_source(f"npz:{archive}", SourceOptions())
    assert listing.arrays is not None and dict(listing.arrays.loaded) == {}, "no image array read by the listing"
    assert len(listing.entries) == 200
    data = _load(f"npz:{archive}", tmp_path / "cache")
    originals = {image.tobytes() for image in x[:200]}
    assert data.input_size == (1, 28, 28) and all(i[0].numpy().tobytes() in originals for i in data.train[0])
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((4, 2, 5, 5), np.uint8), y_train=np.arange(4))
    with pytest.raises(DataError, match=r"x_train has shape \(4, 2, 5, 5\); expected"):
        list_source(f"npz:{tmp_path / 'bad.npz'}", SourceOptions())


def test_user_split_folders_are_kept(tmp_path: Path) -> None:
    root = fashion_split_folder(tmp_path / "split", train=8, val=3, test=4)
    data = _load(f"folder:{root}", tmp_path / "cache")
    sizes = [len(labels) for _, labels in (data.train, data.val, data.test)]
    assert sizes == [80, 30, 40], f"train/, val/ and test/ as the user split them: {sizes}"
    _, _, tx, _ = fashion_arrays()
    test_set = {t.tobytes() for t in tx[:2000]}
    assert all(image[0].numpy().tobytes() in test_set for image in data.test[0]), "test/ holds the test images"
    merged = load_dataset(f"folder:{root}", validation_size=0, cache_dir=tmp_path / "cache", workers=1)
    assert len(merged.train[1]) == 110 and len(merged.val[1]) == 0, "validation_size 0 trains on val/ too"


def test_split_is_seeded_and_the_fingerprint_follows_it(png_folder: Path, tmp_path: Path) -> None:
    first = _load(f"folder:{png_folder}", tmp_path)
    again = _load(f"folder:{png_folder}", tmp_path)
    other = _load(f"folder:{png_folder}", tmp_path, split_seed=1)
    assert first.fingerprint == again.fingerprint, "the same files and split give the same fingerprint"
    assert other.fingerprint != first.fingerprint, "another split seed moves files: another fingerprint"
    assert not torch.equal(first.test[0], other.test[0]), "another split seed draws other test images"


def test_second_open_reads_the_cache_without_decoding(png_folder: Path, tmp_path: Path, monkeypatch) -> None:
    first = _load(f"folder:{png_folder}", tmp_path)

    class NoDecoding:
        def __init__(self, *args: object) -> None:
            raise AssertionError("a second open must not decode")

    monkeypatch.setattr(cache_module, "_Decoder", NoDecoding)
    second = _load(f"folder:{png_folder}", tmp_path)
    assert torch.equal(first.train[0], second.train[0]) and first.cache == second.cache


def test_a_changed_file_rebuilds_the_cache(tmp_path: Path) -> None:
    root = fashion_folder(tmp_path / "data", per_class=5)
    first = _load(f"folder:{root}", tmp_path / "cache")
    changed = sorted((root / CLASSES[0]).iterdir())[0]
    Image.new("L", (28, 28), 255).save(changed)
    os.utime(changed, ns=(1, 1))  # a new mtime even on a coarse clock
    second = _load(f"folder:{root}", tmp_path / "cache")
    assert second.fingerprint != first.fingerprint and second.cache != first.cache, "a changed file is a new key"
    white = [(images == 255).all().item() for split in (second.train, second.val, second.test) for images in split[0]]
    assert sum(white) == 1, "the changed file's new pixels are in the new cache"
    assert not first.cache.exists(), "the cache of the old contents is removed"


def test_a_half_built_cache_is_never_read(png_folder: Path, tmp_path: Path) -> None:
    cache = _load(f"folder:{png_folder}", tmp_path).cache
    (cache / "meta.json").unlink()  # as if the publication had not happened
    rebuilt = _load(f"folder:{png_folder}", tmp_path)
    assert all((rebuilt.cache / name).is_file() for name in CACHE_FILES), "a cache without meta.json is rebuilt"


def _bad_files(folder: Path) -> dict[str, str]:
    """A class of good files plus one of each kind of bad file; the reason each must get."""
    (folder / "text.png").write_text("hello\n")
    jpeg = folder / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])  # the header whole, the pixels cut
    Image.new("1", (12_000, 12_000)).save(folder / "bomb.png")
    (folder / "ghost.png").symlink_to(folder / "missing.png")
    return {
        "text.png": "not an image Pillow can read",
        "cut.jpg": "decode,OSError: image file is truncated",
        "bomb.png": "decompression bomb",
        "ghost.png": "cannot read: No such file or directory",
    }


def test_bad_files_are_skipped_with_reasons_and_strict_refuses(tmp_path: Path) -> None:
    root = fashion_folder(tmp_path / "data", per_class=6)
    reasons = {f"{CLASSES[3]}/{name}": reason for name, reason in _bad_files(root / CLASSES[3]).items()}
    with pytest.raises(DataError) as caught:
        _load(f"folder:{root}", tmp_path / "cache", strict=True)
    message = str(caught.value)
    assert "3 files cannot be decoded and --strict refuses" in message and "\n" not in message, message
    assert not (tmp_path / "cache").exists(), "the files without a header are refused before anything is written"
    data = _load(f"folder:{root}", tmp_path / "cache")
    assert data.skipped == 4 and sum(len(split[1]) for split in (data.train, data.val, data.test)) == 60
    rows = (data.cache / "skipped.csv").read_text().splitlines()
    assert rows[0] == "name,stage,reason" and len(rows) == 5, rows
    for name, reason in reasons.items():
        assert any(row.startswith(name + ",") and reason in row for row in rows), f"{name}: {reason!r} not in {rows}"
    with pytest.raises(DataError, match="4 files cannot be decoded and --strict refuses"):
        _load(f"folder:{root}", tmp_path / "cache", strict=True)


def test_modes_sizes_nesting_case_and_hidden_files(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    (root / "cats" / "indoor" / "deep").mkdir(parents=True)
    (root / "dogs").mkdir()
    (root / ".thumbnails").mkdir()
    Image.new("RGB", (64, 48), (250, 0, 0)).save(root / "cats" / "a.JPG")
    Image.new("RGBA", (30, 60), (0, 0, 255, 255)).save(root / "cats" / "indoor" / "b.PNG")
    Image.new("P", (40, 40)).save(root / "cats" / "indoor" / "deep" / "c.gif")
    Image.new("CMYK", (50, 70)).save(root / "dogs" / "d.jpeg")
    Image.fromarray(np.full((44, 44), 40000, dtype=np.uint16)).save(root / "dogs" / "e.png")
    Image.new("L", (36, 52)).save(root / "dogs" / "f.bmp")
    Image.new("RGB", (8, 8)).save(root / "dogs" / ".hidden.png")
    Image.new("RGB", (8, 8)).save(root / ".thumbnails" / "g.png")
    (root / "dogs" / "README.txt").write_text("notes")
    listing = list_source(f"folder:{root}", SourceOptions())
    assert sorted(e.name for e in listing.entries) == [
        "cats/a.JPG",
        "cats/indoor/b.PNG",
        "cats/indoor/deep/c.gif",
        "dogs/d.jpeg",
        "dogs/e.png",
        "dogs/f.bmp",
    ], "nested folders and upper-case extensions are listed; hidden files, folders and text are not"
    options = SourceOptions(val_fraction=0.0, test_fraction=0.34)
    cache = open_cache(listing, options, cache_dir=tmp_path / "cache", workers=1)
    assert cache.meta["skipped"] == 0 and cache.images.shape[1] == 3, "4 of 6 files are colour: 3 channels"
    assert cache.decoding.side == 42, f"the median shorter side of 48, 30, 40, 50, 44, 36 is 42: {cache.decoding}"
    assert sorted(cache.meta["modes"]) == sorted(["RGB", "RGBA", "P", "CMYK", "I;16", "L"]), cache.meta["modes"]


def test_resolution_is_capped_for_large_photos(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (600, 400), (i * 40, 0, 0)).save(tmp_path / "data" / name / f"{i}.jpg")
    cache = open_cache(
        list_source(f"folder:{tmp_path / 'data'}", SourceOptions()),
        SourceOptions(val_fraction=0.0, test_fraction=0.34),
        cache_dir=tmp_path / "cache",
        workers=1,
    )
    assert cache.decoding.side == AUTO_RESOLUTION_LIMIT, f"400 px shorter sides are capped: {cache.decoding}"
    assert "capped" in cache.meta["resolution_reason"], cache.meta["resolution_reason"]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"cats": 3, "dogs": 0}, "class folder holds no images"),
        ({"cats": 5}, "1 class (cats); a classifier needs at least 2"),
        ({"cats": 5, "dogs": 2}, "class 'dogs' has 2 usable training images; the split needs at least 3"),
    ],
    ids=["empty-class", "single-class", "class-too-small"],
)
def test_folder_layout_errors_are_one_line_and_write_nothing(tmp_path: Path, layout: dict, message: str) -> None:
    for name, count in layout.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (8, 8), i * 20).save(tmp_path / "data" / name / f"{i}.png")
    with pytest.raises(DataError) as caught:
        _load(f"folder:{tmp_path / 'data'}", tmp_path / "cache")
    assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert not (tmp_path / "cache").exists(), "nothing is written for a refused data set"


def _split_folders(root: Path, layout: dict[str, str]) -> None:
    """One 8x8 image per class folder: ``layout`` maps each split folder to its classes' names (one letter each)."""
    for split, classes in layout.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            Image.new("L", (8, 8)).save(root / split / name / "0.png")


def test_a_class_outside_the_class_list_is_named_by_its_own_folder(tmp_path: Path) -> None:
    """Split folders may be named Training/ or Validation/: the message names the folder there is, not val/."""
    root = tmp_path / "data"
    _split_folders(root, {"Training": "ab", "Validation": "abz"})
    with pytest.raises(DataError) as caught:
        list_source(f"folder:{root}", SourceOptions())
    assert str(caught.value) == f"{root / 'Validation' / 'z'}: class 'z' is not in the class list (a, b)", caught.value


def test_two_folders_of_one_split_are_refused_not_one_dropped(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _split_folders(root, {"train": "ab", "Training": "ab", "val": "ab"})
    with pytest.raises(DataError) as caught:
        list_source(f"folder:{root}", SourceOptions())
    message = f"{root}: Training/ and train/ name the same split (train); put its images in one folder"
    assert str(caught.value) == message, "train/'s images would be dropped unseen"
    (root / "Training").rename(tmp_path / "elsewhere")
    listing = list_source(f"folder:{root}", SourceOptions())
    assert sorted(e.name for e in listing.entries) == ["train/a/0.png", "train/b/0.png", "val/a/0.png", "val/b/0.png"]


def test_training_reads_a_mapped_cache_as_it_reads_memory(png_folder: Path, tmp_path: Path, monkeypatch) -> None:
    in_memory = _load(f"folder:{png_folder}", tmp_path)
    monkeypatch.setattr(data_module, "HOST_SHARE", 0.0)  # as if the cache were larger than the memory
    mapped = _load(f"folder:{png_folder}", tmp_path)
    assert in_memory.train[0].data_ptr() != mapped.train[0].data_ptr(), "two copies: one in memory, one mapped"
    config = TrainConfig(epochs=1, batch_size=32, precision="fp32", lr=0.05)
    weights = []
    for data in (in_memory, mapped):
        torch.manual_seed(0)
        model = build_model(_tiny_arch(), data.input_size, data.num_classes)
        result = train(model, data, config)
        weights.append((result.val_accuracies, [p.detach().clone() for p in model.parameters()]))
    assert weights[0][0] == weights[1][0], "the same validation accuracy from memory and from the mapping"
    assert all(torch.equal(a, b) for a, b in zip(weights[0][1], weights[1][1])), "the same weights, to the bit"


def _tiny_arch() -> Architecture:
    return Architecture.from_dict(
        {
            "stem": {"style": "small", "width": 8},
            "stages": [{"block": "dense", "depth": 1, "growth_rate": 4, "bn_size": 0}],
        }
    )
