"""``search predict``: a trained model on image files, prepared as in training; its accuracy is the test accuracy."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import onnx
import pytest
from image_files import CLASSES, fashion_folder

from evaluation import Architecture, TrainConfig
from evaluation.data import describe_data, load_dataset
from search.cli import main
from search.commands import predict
from search.post.full_training import train_and_test

TINY = {
    "stem": {"style": "small", "width": 8},
    "stages": [{"block": "dense", "depth": 1, "growth_rate": 8, "bn_size": 0}],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A folder source of real Fashion-MNIST PNGs, a model trained on it (with model.onnx), and its test files."""
    base = tmp_path_factory.mktemp("predict")
    root = fashion_folder(base / "fashion", per_class=30)
    data = load_dataset(f"folder:{root}", validation_size=0, cache_dir=base / "cache", workers=1)
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05, precision="fp32")
    run = base / "run"
    training = train_and_test(
        Architecture.from_dict(TINY), data, config, run, label="tiny", onnx=True, extra={"data": describe_data(data)}
    )
    tests = base / "test-files"
    with open(data.cache / "rows.csv", newline="") as handle:
        for split, _, name in list(csv.reader(handle))[1:]:
            if split == "test":
                (tests / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / name, tests / name)
    return run, tests, training.record


def _predictions(capsys, model: Path, *images: Path, extra: tuple[str, ...] = ()) -> tuple[list[dict], str]:
    code = main(["predict", str(model), *map(str, images), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return list(csv.DictReader(out.splitlines())), err


def _accuracy(rows: list[dict]) -> float:
    return sum(Path(row["path"]).parent.name == row["class_1"] for row in rows) / len(rows)


def test_predict_on_the_test_files_gives_the_test_accuracy(trained, capsys) -> None:
    run, tests, record = trained
    rows, err = _predictions(capsys, run, tests)
    assert len(rows) == record["test_images"] == 60, f"every test file classified: {len(rows)}"
    assert _accuracy(rows) == record["test_accuracy"], (
        f"predict's accuracy {_accuracy(rows)} must equal the training's test accuracy {record['test_accuracy']}"
    )
    assert list(rows[0]) == ["path", "class_1", "probability_1", "class_2", "probability_2", "class_3", "probability_3"]
    assert all(row["class_1"] in CLASSES for row in rows), "classes by name"
    for row in rows:
        probabilities = [float(row[f"probability_{k}"]) for k in (1, 2, 3)]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-5, row
    assert "60 images classified" in err, err


def test_predict_with_the_onnx_file_agrees(trained, capsys, tmp_path: Path) -> None:
    run, tests, record = trained
    torch_rows, _ = _predictions(capsys, run, tests)
    out = tmp_path / "onnx.csv"
    _predictions(capsys, run / "model.onnx", tests, extra=("--out", str(out), "--top", "1"))
    onnx_rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [row["class_1"] for row in onnx_rows] == [row["class_1"] for row in torch_rows], "the same top class"
    for ours, theirs in zip(onnx_rows, torch_rows):
        assert abs(float(ours["probability_1"]) - float(theirs["probability_1"])) < 1e-4, (ours, theirs)


def test_an_exported_onnx_file_carries_classes_and_preprocessing(trained, capsys, tmp_path: Path, monkeypatch) -> None:
    run, tests, _ = trained
    exported = tmp_path / "model.onnx"
    assert main(["onnx", str(run), "--out", str(exported)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    metadata = {p.key: p.value for p in onnx.load(exported).metadata_props}
    assert json.loads(metadata["classes"]) == sorted(CLASSES), metadata["classes"]
    described = json.loads(metadata["data"])
    assert described["decoding"] == {"side": 28, "channels": 1, "resize": "crop", "background": 255}, described
    assert described["fingerprint"] and len(described["mean"]) == 1, described

    def no_source(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file's metadata is enough; the source is not read again")

    monkeypatch.setattr(predict, "load_dataset", no_source)
    rows, _ = _predictions(capsys, exported, tests)
    torch_rows, _ = _predictions(capsys, run, tests)
    assert [row["class_1"] for row in rows] == [row["class_1"] for row in torch_rows], "the same top classes"


def test_predict_skips_a_bad_file_with_its_reason(trained, capsys, tmp_path: Path) -> None:
    run, tests, _ = trained
    bad = tmp_path / "broken.jpg"
    bad.write_text("not a jpeg")
    good = sorted(tests.rglob("*.png"))[:3]
    rows, err = _predictions(capsys, run, bad, *good)
    assert [row["path"] for row in rows] == [str(p) for p in good], rows
    assert f"skipped {bad}: not an image Pillow can read" in err and "3 images classified, 1 skipped" in err, err


def test_predict_mistakes_are_one_line(trained, capsys, tmp_path: Path) -> None:
    run, tests, _ = trained
    for args, message in (
        ([str(tmp_path / "nothing"), str(tests)], "neither a run folder"),
        ([str(run), str(tmp_path / "absent.png")], "no such file or folder"),
    ):
        code = main(["predict", *args])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err


def test_an_onnx_file_without_a_fixed_input_size_is_one_line(trained, capsys, tmp_path: Path) -> None:
    """Images are prepared at the size the model takes: a graph whose height is free gives none."""
    run, tests, _ = trained
    graph = onnx.load(run / "model.onnx")
    graph.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"  # in place of the fixed 28
    free = tmp_path / "free.onnx"
    onnx.save(graph, free)
    code = main(["predict", str(free), str(tests)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err == f"error: {free}: the model's input is [1, 'height', 28]; expected 3 positive integers [C, H, W]\n"


def test_search_train_on_a_folder_then_predict(tmp_path: Path, capsys, monkeypatch) -> None:
    """Phase one's whole path on the command line: train --dataset folder:..., then predict reads the source again."""
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    root = fashion_folder(tmp_path / "fashion", per_class=12)
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(
        "stem: {style: small, width: 8}\nstages:\n  - {block: dense, depth: 1, growth_rate: 8, bn_size: 0}\n"
    )
    args = ["train", str(config), "--dataset", f"folder:{root}", "--epochs", "1", "--precision", "fp32"]
    assert main([*args, "--batch-size", "16", "--out", str(run)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    rows, _ = _predictions(capsys, run, root)
    assert len(rows) == 120 and {row["class_1"] for row in rows} <= set(CLASSES), len(rows)
