"""A search on a user's own images: folder and manifest sources through run, finalize and predict.

Real Fashion-MNIST images written out as PNG and JPEG files (``tests/image_files.py``),
few of them and tiny networks, so each search takes seconds. What must hold: a
space may take its input and classes from the data, or states them and is held to
them; the study records its data; every trained trial records class-balanced
scores on the validation images; finalize tests on the search's held-out images,
records the confusion matrix, and refuses data that changed since the search; the
finalised model's ``predict`` on the test files gives its test accuracy.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnx
import optuna
import pytest
import torch
from image_files import CLASSES, fashion_arrays, first_per_class, write_images, write_manifest
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, f1_score

from evaluation.data import DataError
from evaluation.images import SourceOptions
from evaluation.scores import SCORE_NAMES
from search.cli import main
from search.execution.run_data import DataSpec, load_run_data, open_run_data
from search.storage.studies import open_study
from spaces import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY_BODY = """\
objectives: {accuracy: maximize, macs: minimize}
training: {epochs: 1, train_fraction: 1.0, batch_size: 16, lr: 0.1, schedule: onecycle}
stem: {style: auto, width: {choice: [8, 12]}}
stages:
  count: 1
  each: {block: dense, depth: {low: 1, high: 2}, dense: {growth_rate: {choice: [8, 12]}, bn_size: 0}}
head: {norm: true}
"""


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Studies and decoded-image caches of this test go under ``tmp_path``."""
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(tmp_path / "studies"))
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _fashion_png_and_jpeg(root: Path, per_class: int) -> Path:
    """``per_class`` Fashion-MNIST training images of each class, half as PNG and half as JPEG files."""
    x, y, _, _ = fashion_arrays()
    chosen = first_per_class(y, per_class)
    half = per_class // 2
    write_images(root, x, y, [i for n, i in enumerate(chosen) if n % per_class < half], suffix=".png")
    write_images(root, x, y, [i for n, i in enumerate(chosen) if n % per_class >= half], suffix=".JPG")
    return root


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def _one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.removeprefix("error: ").rstrip("\n")


def _test_rows(cache: Path) -> list[tuple[int, str]]:
    """(label, name) of the cache's test rows, in their order in the test split."""
    with open(cache / "rows.csv", newline="") as handle:
        return [(int(label), name) for split, label, name in list(csv.reader(handle))[1:] if split == "test"]


@pytest.mark.parametrize("source", ["folder", "csv"])
def test_search_finalize_and_predict_on_png_and_jpeg_files(
    folders: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    root = _fashion_png_and_jpeg(folders / "fashion", per_class=40)
    if source == "folder":  # the space names its source (relative to its file) and leaves input and classes to it
        space = folders / "mine.yaml"
        space.write_text("description: d\ndataset: {source: 'folder:fashion', resolution: 28}\n" + TINY_BODY)
        args = ["--space", str(space)]
        dataset = f"folder:{root}"
    else:  # a space made for another data set, and --data with a manifest and the source flags
        manifest = write_manifest(root, folders / "labels.csv")
        space = folders / "digits.yaml"
        space.write_text("description: d\ndataset: digits\ninput: [1, 8, 8]\nnum_classes: 10\n" + TINY_BODY)
        args = ["--space", str(space), "--data", f"csv:{manifest}", "--resolution", "28", "--channels", "1"]
        dataset = f"csv:{manifest}"
    err = _run(capsys, "run", *args, "--study", "mine", "--trials", "2", "--no-report")
    assert err.startswith(f"data {dataset}: 10 classes, 280/40/80 train/val/test images, 28x28 px, 1 channel"), err

    study = open_study("mine")
    settings = study.user_attrs["settings"]
    cache = Path(settings["data_cache"])
    meta = json.loads((cache / "meta.json").read_text())
    expected_options = SourceOptions(resolution=28, channels=None if source == "folder" else 1)
    assert settings["dataset"] == dataset and settings["data_options"] == dataclasses.asdict(expected_options)
    assert settings["data_fingerprint"] == meta["fingerprint"] and settings["data_cache_key"] == meta["key"], settings
    assert (settings["input_size"], settings["num_classes"]) == ([1, 28, 28], 10), "the input is the data's"
    assert settings["data"]["classes"] == sorted(CLASSES) and settings["data"]["fingerprint"] == meta["fingerprint"]

    val_labels = np.array([int(label) for split, label, _ in _cache_rows(cache) if split == "val"])
    for trial in study.trials:
        attrs = trial.user_attrs
        assert attrs["outcome"] == "trained", attrs.get("reason")
        assert set(attrs["val_scores"]) == set(SCORE_NAMES) and attrs["val_scores"]["roc_auc"] is None, attrs
        per_class = attrs["per_class_accuracy"]
        assert len(per_class) == 10 and all(0 <= a <= 1 for a in per_class), per_class
        assert attrs["val_scores"]["balanced_accuracy"] == pytest.approx(np.mean(per_class)), "mean recall"
        # The trainer's own validation pass and the scores' pass agree on the same images.
        correct = sum(a * np.sum(val_labels == c) for c, a in enumerate(per_class))
        assert correct / len(val_labels) == pytest.approx(attrs["val_accuracy_per_epoch"][-1]), attrs

    _run(capsys, "finalize", "mine", "--top", "1", "--seeds", "1", "--epochs", "1")
    (model,) = sorted((folders / "studies" / "mine" / "final").glob("trial-*/seed-0"))
    result = json.loads((model / "result.json").read_text())
    tests = _test_rows(cache)
    assert result["test_images"] == len(tests) == 80, "tested on the search's held-out images"
    matrix = np.array(result["confusion_matrix"])
    truths = np.repeat(np.arange(10), matrix.sum(axis=1))
    guesses = np.concatenate([np.repeat(np.arange(10), row) for row in matrix])
    assert list(matrix.sum(axis=1)) == [sum(label == c for label, _ in tests) for c in range(10)], matrix
    assert np.trace(matrix) / matrix.sum() == result["test_accuracy"], (matrix, result["test_accuracy"])
    assert result["test_scores"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truths, guesses))
    assert result["test_scores"]["macro_f1"] == pytest.approx(f1_score(truths, guesses, average="macro"))
    mistakes = result["misclassified"]
    assert len(mistakes) == min(64, len(tests) - np.trace(matrix)), mistakes
    assert all(m["true"] != m["predicted"] and tests[m["index"]][0] == m["true"] for m in mistakes), mistakes
    assert [m["probability"] for m in mistakes] == sorted((m["probability"] for m in mistakes), reverse=True)
    # A model that answers one class for every image would make the agreement below trivial.
    assert np.count_nonzero(matrix.sum(axis=0)) >= 2, f"the model predicts one class only: {matrix}"

    files = folders / "test-files"
    for _, name in tests:
        (files / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy((root if source == "folder" else folders) / name, files / name)  # names are the listing's
    assert main(["predict", str(model), str(files)]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    hits = sum(Path(row["path"]).parent.name == row["class_1"] for row in rows)
    assert len(rows) == 80 and hits / len(rows) == result["test_accuracy"], (hits, result["test_accuracy"])


def _cache_rows(cache: Path) -> list[list[str]]:
    with open(cache / "rows.csv", newline="") as handle:
        return list(csv.reader(handle))[1:]


def _rgb_jpegs(root: Path, per_class: int, side: int) -> Path:
    """Two classes (trousers and bags) as colour JPEG photos of ``side`` px, as a user's 2-class set."""
    x, y, _, _ = fashion_arrays()
    for label, tint in ((1, (1.0, 0.6, 0.3)), (8, (0.3, 0.7, 1.0))):
        for i in np.flatnonzero(y == label)[:per_class]:
            grey = np.asarray(Image.fromarray(x[i]).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)
            colour = np.stack([grey * t for t in tint], axis=-1).astype(np.uint8)
            path = root / CLASSES[label] / f"{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(colour).save(path, quality=90)
    return root


def test_two_classes_at_224_px_search_with_the_imagenet_stem(folders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The J4 case: a 2-class folder of 224 px colour photos; the space names no data set, --data does."""
    root = _rgb_jpegs(folders / "photos", per_class=10, side=224)
    (root / "Bag" / "notes.png").write_text("not an image")  # a bad file: skipped, counted, listed
    space = folders / "photos.yaml"
    space.write_text("description: d\n" + TINY_BODY.replace("width: {choice: [8, 12]}", "width: 8"))
    err = _run(capsys, "run", "--space", str(space), "--data", f"folder:{root}", "--trials", "1", "--no-report")
    lines = err.splitlines()
    assert lines[0].startswith(f"data folder:{root}: 2 classes, 14/2/4 train/val/test images, 224x224 px, 3 channels")
    study = open_study("photos")
    cache = Path(study.user_attrs["settings"]["data_cache"])
    assert lines[1] == f"skipped 1 file that cannot be decoded; the list, with reasons: {cache / 'skipped.csv'}"
    assert [row[0] for row in _cache_rows_of(cache / "skipped.csv")] == ["Bag/notes.png"]
    (trial,) = study.trials
    attrs = trial.user_attrs
    assert attrs["outcome"] == "trained", attrs.get("reason")
    assert attrs["architecture"]["stem"] == {"style": "imagenet", "width": 8}, "224 px takes the ImageNet stem"
    assert study.user_attrs["settings"]["input_size"] == [3, 224, 224], study.user_attrs["settings"]
    assert 0 <= attrs["val_scores"]["roc_auc"] <= 1, f"two classes have a ROC AUC: {attrs['val_scores']}"
    out = folders / "export"
    _run(capsys, "export", "photos", "--top", "1", "--out", str(out), "--format", "onnx")
    metadata = {p.key: p.value for p in onnx.load(out / "best-1.onnx").metadata_props}
    assert json.loads(metadata["classes"]) == [CLASSES[8], CLASSES[1]], "the source's classes, sorted"
    assert json.loads(metadata["data"])["decoding"] == {"side": 224, "channels": 3, "resize": "crop", "background": 255}


def _cache_rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))[1:]


def _small_folder(root: Path, per_class: int = 8) -> Path:
    x, y, _, _ = fashion_arrays()
    write_images(root, x, y, [i for i in first_per_class(y, per_class) if y[i] in (0, 1)])
    return root


def test_changed_data_is_refused_by_finalize_and_resume(folders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _small_folder(folders / "two")
    space = folders / "two.yaml"
    space.write_text("description: d\ndataset: folder:two\n" + TINY_BODY)
    _run(capsys, "run", "--space", str(space), "--trials", "1", "--no-report")
    settings = open_study("two").user_attrs["settings"]
    recorded, cache = settings["data_fingerprint"], Path(settings["data_cache"])

    extra = root / CLASSES[0] / "added.png"
    shutil.copy(next((root / CLASSES[0]).iterdir()), extra)
    message = _one_line_error(capsys, "finalize", "two", "--top", "1", "--seeds", "1", "--epochs", "1")
    assert message.startswith(
        f"folder:{root} changed since study two searched it (1 file added, e.g. {CLASSES[0]}/added.png): "
        f"the search recorded data fingerprint {recorded[:12]}"
    ), message
    assert (cache / "images.npy").is_file(), "refused before decoding: the search's cache is kept"
    assert not (folders / "studies" / "two" / "final").exists(), "nothing trained"
    message = _one_line_error(capsys, "run", "--space", str(space), "--trials", "2", "--no-report")
    assert message.startswith(f"study two searched folder:{root} with data fingerprint {recorded[:12]}; "), message

    extra.unlink()  # the same files again, now at another path: accepted when names, labels and splits agree
    moved = folders / "moved"
    shutil.copytree(root, moved)
    _run(capsys, "finalize", "two", "--top", "1", "--seeds", "1", "--epochs", "1", "--data", f"folder:{moved}")
    (result,) = (folders / "studies" / "two" / "final").glob("trial-*/seed-0/result.json")
    assert json.loads(result.read_text())["data"]["dataset"] == f"folder:{moved}"
    (moved / CLASSES[1] / next((moved / CLASSES[1]).iterdir()).name).unlink()
    message = _one_line_error(
        capsys,
        "finalize",
        "two",
        "--top",
        "1",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--folder",
        "f2",
        "--data",
        f"folder:{moved}",
    )
    assert message.startswith(f"folder:{moved} is not the data set study two searched: data fingerprint "), message
    assert message.endswith(
        f", {recorded[:12]} recorded by the search (other files, labels or split); finalize tests only on the search's held-out images"
    ), message


def test_a_space_that_disagrees_with_its_data_is_one_line(folders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _small_folder(folders / "two")
    space = folders / "three.yaml"
    space.write_text("description: d\ndataset: folder:two\nnum_classes: 3\n" + TINY_BODY)
    message = _one_line_error(capsys, "run", "--space", str(space), "--trials", "1", "--no-report")
    assert message == (
        f"{space}: num_classes: the space states 3 classes, its data set folder:{root} has 2 "
        f"({CLASSES[0]}, {CLASSES[1]}); leave num_classes out to take the data's"
    ), message
    space.write_text("description: d\ndataset: {source: folder:two, channels: 1}\ninput: [3, 28, 28]\n" + TINY_BODY)
    message = _one_line_error(capsys, "run", "--space", str(space), "--trials", "1", "--no-report")
    assert message == (
        f"{space}: input: the space states 3 channels ([3, 28, 28]), its data set folder:{root} has 1 "
        f"(1x28x28 images); leave input out to take the data's"
    ), message
    message = _one_line_error(capsys, "run", "--space", "images", "--trials", "1", "--no-report")
    assert message.startswith("space images names no data set: pass --data folder:PATH"), message
    assert not (folders / "studies").exists() or not any((folders / "studies").iterdir()), "nothing created"


def test_a_search_without_validation_images_is_refused(folders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Trials are judged on validation images: without any, each would score 0 % accuracy and the
    search rank on its other objectives alone, as if it had chosen on accuracy."""
    root = _small_folder(folders / "two")
    space = folders / "two.yaml"
    space.write_text("description: d\ndataset: folder:two\n" + TINY_BODY)
    for args in (("--val-fraction", "0"), ("--data", f"folder:{root}", "--val-fraction", "0")):
        message = _one_line_error(capsys, "run", "--space", str(space), *args, "--trials", "1", "--no-report")
        assert message == (
            f"folder:{root} has no validation images, and a search chooses on them (the test images are read "
            f"once, at the end): give it a val/ split or a val_fraction above 0 (--val-fraction)"
        ), message
    assert not (folders / "studies").exists() or not any((folders / "studies").iterdir()), "nothing created"


def test_train_and_ablate_take_a_source_and_its_flags(folders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--data and the source flags on train and ablate (--fit: the resize policy; --resize PX stays the input side)."""
    root = _small_folder(folders / "two", per_class=10)
    arch = folders / "tiny.yaml"
    arch.write_text(
        "stem: {style: small, width: 8}\nstages:\n  - {block: dense, depth: 1, growth_rate: 8, bn_size: 0}\n"
    )
    run = folders / "run"
    flags = ["--data", f"folder:{root}", "--resolution", "20", "--fit", "pad", "--channels", "3", "--epochs", "1"]
    _run(capsys, "train", str(arch), *flags, "--resize", "24", "--out", str(run))
    result = json.loads((run / "result.json").read_text())
    assert result["data"]["decoding"] == {"side": 20, "channels": 3, "resize": "pad", "background": 255}, result
    assert result["input_size"] == [3, 24, 24] and result["test_images"] == 4, result
    assert len(result["confusion_matrix"]) == 2 and sum(map(sum, result["confusion_matrix"])) == 4, result
    out = folders / "ablation"
    _run(capsys, "ablate", str(arch), "--vary", "stem.width=4,8", "--seeds", "1", *flags, "--out", str(out))
    for variant in ("stem.width=4", "stem.width=8"):
        recorded = json.loads((out / variant / "seed-0" / "result.json").read_text())
        assert recorded["data"]["dataset"] == f"folder:{root}" and recorded["input_size"] == [3, 20, 20], recorded
    message = _one_line_error(capsys, "train", str(arch), "--data", "digits", "--resolution", "20")
    assert message.startswith("digits is a built-in data set of fixed images; resolution"), message


def test_workers_reopen_the_parents_cache_and_notice_a_change(folders: Path) -> None:
    """What a worker process receives (the resolved DataSpec, pickled) opens the finished cache; a changed file refuses."""
    root = _small_folder(folders / "two")
    space, spec, splits = open_run_data(load_space("images"), DataSpec(f"folder:{root}"), seed=0)
    assert space.input_size == (1, 28, 28) and space.num_classes == 2 and spec.fingerprint == splits.fingerprint
    assert spec.options == SourceOptions() and spec.dataset == f"folder:{root}", spec
    built = (splits.cache / "images.npy").stat().st_mtime_ns
    reopened = load_run_data(pickle.loads(pickle.dumps(spec)), seed=0)
    assert reopened.cache == splits.cache and (reopened.cache / "images.npy").stat().st_mtime_ns == built
    assert torch.equal(reopened.val[0], splits.val[0]) and torch.equal(reopened.test[1], splits.test[1])
    shutil.copy(next((root / CLASSES[0]).iterdir()), root / CLASSES[0] / "new.png")
    with pytest.raises(DataError, match=rf"^folder:{root} changed since the run began \(fingerprint "):
        load_run_data(spec, seed=0)
