"""The report's data panel: class counts and sample images, and finalised models' test errors.

A real study searched on a folder of Fashion-MNIST PNGs (tests/image_files.py),
its settings carrying the data record ``search run`` writes (describe_data),
checked as data objects first (the compute half), then on the page. The
finalised models' errors come from a synthetic final result: result.json
files with the fields the panel reads (``ERROR_FIELDS``).
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from image_files import CLASSES, fashion_folder
from PIL import Image

from evaluation import data as data_module
from evaluation.data import describe_data, load_dataset
from search import Budget, DataSpec, StudySpec, Workers, run_search
from search.execution.run_data import VALIDATION_SIZE
from search.post.final_results import FINAL_CSV, final_dir, final_rows
from search.report import collect_report, render_report
from search.report._data import MISCLASSIFIED_SHOWN, SAMPLES_PER_CLASS, data_panel, model_errors

optuna.logging.set_verbosity(optuna.logging.WARNING)

PER_CLASS = 12
SPACE = """\
description: A tiny space on 28 px grey images, for the data panel's tests.
dataset: fashion_mnist
input: [1, 28, 28]
num_classes: 10
objectives: {accuracy: maximize, macs: minimize}
training: {epochs: 1, train_fraction: 1.0, batch_size: 32, lr: 0.05, schedule: onecycle}
stem: {style: small, width: {choice: [4, 8]}}
stages:
  count: 1
  each:
    block: dense
    depth: {low: 1, high: 2}
    dense: {growth_rate: {choice: [4, 8]}, bn_size: 0}
head: {norm: true}
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory):
    """A 2-trial study on a folder source, studies and image cache in a temporary folder."""
    work = tmp_path_factory.mktemp("report-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEARCH_STUDIES_DIR", str(work / "studies"))
        patch.setenv("SEARCH_CACHE_DIR", str(work / "cache"))
        root = fashion_folder(work / "png", per_class=PER_CLASS)
        (work / "space.yaml").write_text(SPACE)
        source = f"folder:{root}"
        study = run_search(
            space=work / "space.yaml",
            study=StudySpec("folder", report=False),
            budget=Budget(trials=2),
            data=DataSpec(source),
            workers=Workers(device="cpu"),
        )
        data = load_dataset(source, validation_size=VALIDATION_SIZE, progress=False)
        assert study.user_attrs["settings"]["data"] == json.loads(json.dumps(describe_data(data))), (
            "the search records what describe_data says of its data set"
        )
        yield study, data, root


def _png_pixels(path: Path) -> bytes:
    """A PNG file's pixels read by Pillow alone, outside the toolkit's decoder."""
    return np.asarray(Image.open(path)).tobytes()


def test_the_panel_counts_each_split_and_samples_each_class_from_the_cache(searched) -> None:
    study, data, root = searched
    report = collect_report(study)
    panel = report.data
    assert panel is not None and panel.opened, f"the folder's cache is found: {panel}"
    assert panel.source == f"folder:{root}" and panel.classes == tuple(sorted(CLASSES)), panel.classes
    # 12 images a class: 20% test (2), 10% validation (1), the rest (9) for training.
    assert panel.counts == {"train": (9,) * 10, "val": (1,) * 10, "test": (2,) * 10}, panel.counts
    for split, (_, labels) in zip(("train", "val", "test"), (data.train, data.val, data.test)):
        assert panel.counts[split] == tuple(torch.bincount(labels, minlength=10).tolist()), split
    assert [len(s) for s in panel.samples] == [SAMPLES_PER_CLASS] * 10, "8 of the 9 training images a class"
    for name, samples in zip(panel.classes, panel.samples):
        files = {_png_pixels(path) for path in (root / name).glob("*.png")}
        assert all(image.shape == (1, 28, 28) and image[0].tobytes() in files for image in samples), (
            f"every sample of {name!r} is one of that class's PNG files"
        )
        assert len({image.tobytes() for image in samples}) == SAMPLES_PER_CLASS, f"{name}: distinct samples"
    assert Path(panel.cache).is_dir() and str(data.cache) == panel.cache, "the cache the study trained from"


def test_the_page_has_the_data_section_with_its_counts_and_images(searched) -> None:
    study, _, root = searched
    page = render_report(collect_report(study))
    assert ">Data</h2>" in page and f"<code>folder:{root}</code>" in page, "the section names the source"
    figures = json.loads(
        re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
    bars = figures["data-counts"]["data"]
    assert [sum(trace["y"]) for trace in bars] == [90, 10, 20] and bars[0]["x"] == sorted(CLASSES), bars
    samples = re.search(r'<table class="samples">(.*?)</table>', page, re.S).group(1)
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', samples)
    assert len(uris) == 10 * SAMPLES_PER_CLASS, f"{len(uris)} sample images on the page"
    decoded = Image.open(io.BytesIO(base64.b64decode(uris[0])))
    assert decoded.size == (28, 28) and decoded.mode == "L", "28 px grey images, drawn as they are"
    assert "Test errors" not in page, "no finalised model yet: no errors section"


def _final_record(trial: int, seed: int, confusion: list[list[int]], mistakes: list[dict]) -> dict:
    return {
        "model": f"trial-{trial}",
        "trial": trial,
        "seed": seed,
        "test_accuracy": sum(confusion[i][i] for i in range(10)) / 20,
        "search_val_accuracy": 0.5,
        "params": 1000,
        "macs": 10000,
        "latency_ms": 1.0,
        "train_seconds": 1.0,
        "epochs": 1,
        "diverged": False,
        "confusion_matrix": confusion,
        "misclassified": mistakes,
    }


def _confusion(wrong: dict[int, int]) -> list[list[int]]:
    """2 test images a class, all right except those of ``wrong``: true class -> predicted class."""
    matrix = [[2 if i == j else 0 for j in range(10)] for i in range(10)]
    for true, predicted in wrong.items():
        matrix[true][true] -= 1
        matrix[true][predicted] += 1
    return matrix


@pytest.fixture(scope="module")
def finalised(searched):
    """A synthetic final result of trial 0 with two seeds, in the layout search finalize writes."""
    study, data, _ = searched
    folder = final_dir(study.study_name)
    test_labels = data.test[1].tolist()
    first = [i for i, label in enumerate(test_labels) if label in (0, 3, 7)][::2]  # one test image each of 3 classes
    mistakes = [
        {"index": index, "true": test_labels[index], "predicted": (test_labels[index] + 1) % 10, "probability": c}
        for index, c in zip(first, (0.4, 0.9, 0.6))
    ]
    records = [
        _final_record(0, 0, _confusion({m["true"]: m["predicted"] for m in mistakes}), mistakes),
        _final_record(0, 1, _confusion({5: 6}), [{"index": 10, "true": 5, "predicted": 6, "probability": 0.7}]),
    ]
    for record in records:
        out = folder / "trial-0" / f"seed-{record['seed']}"
        out.mkdir(parents=True)
        (out / "result.json").write_text(json.dumps(record))
    final_rows(folder).to_csv(folder / FINAL_CSV, index=False)
    yield study, data, mistakes
    shutil.rmtree(folder)


def test_finalised_errors_sum_confusion_over_seeds_and_show_the_most_confident_mistakes(finalised) -> None:
    study, data, mistakes = finalised
    report = collect_report(study)
    assert report.final is not None and len(report.errors) == 1, report.errors
    errors = report.errors[0]
    assert errors.trial == 0 and errors.seeds == 2 and errors.test_images == 40, errors
    expected = np.array(_confusion({m["true"]: m["predicted"] for m in mistakes})) + np.array(_confusion({5: 6}))
    assert np.array_equal(np.array(errors.confusion), expected), "the confusion matrices of both seeds, summed"
    assert errors.accuracy == pytest.approx(36 / 40)
    assert [m.confidence for m in errors.misclassified] == [0.9, 0.6, 0.4], "first seed's, most confident first"
    for shown in errors.misclassified:
        assert torch.equal(torch.from_numpy(shown.image), data.test[0][shown.index]), "the test image at its index"
        assert shown.label == data.test[1][shown.index].item(), "the recorded true class is the image's"


def test_the_page_draws_each_confusion_matrix_and_the_misclassified_images(finalised) -> None:
    study, _, mistakes = finalised
    page = render_report(collect_report(study))
    assert ">Test errors</h2>" in page
    figures = json.loads(
        re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
    heatmap = figures["confusion-0"]["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["y"] == sorted(CLASSES), "true classes down, by name"
    assert heatmap["text"][5][6] == "1" and heatmap["z"][5][6] == pytest.approx(0.25), "count and share of class"
    block = re.search(r'<div class="mistakes">(.*?)</div>', page, re.S).group(1)
    assert block.count("<img ") == 3 and block.count("<figcaption>") == 3, "each recorded mistake, with its image"
    names = sorted(CLASSES)
    top = max(mistakes, key=lambda m: m["probability"])
    assert f"{names[top['true']]} → {names[top['predicted']]} (90%)" in block.split("</figure>")[0], "most sure first"


def test_model_errors_keeps_at_most_the_shown_mistakes_and_skips_records_without_a_matrix(tmp_path: Path) -> None:
    many = [{"index": i, "true": 0, "predicted": 1, "probability": i / 100} for i in range(40)]
    for trial, fields in ((0, {"confusion_matrix": _confusion({0: 1}), "misclassified": many}), (1, {})):
        out = tmp_path / f"trial-{trial}" / "seed-0"
        out.mkdir(parents=True)
        (out / "result.json").write_text(json.dumps({"trial": trial, "seed": 0, **fields}))
    errors = model_errors(tmp_path, None)
    assert [e.trial for e in errors] == [0], "a model finalised without a confusion matrix is left out"
    assert len(errors[0].misclassified) == MISCLASSIFIED_SHOWN and errors[0].misclassified_total == 40
    assert errors[0].misclassified[0].confidence == 0.39 and errors[0].misclassified[0].image is None


def test_data_that_cannot_be_opened_is_one_line_on_the_page(searched, finalised) -> None:
    study, data, _ = finalised
    moved = Path(data.cache).parents[2] / "moved-cache"  # out of the cache folder, as a user moving it would
    Path(data.cache).rename(moved)
    try:
        report = collect_report(study)
        page = render_report(report)
    finally:
        moved.rename(data.cache)
    assert report.data is not None and not report.data.opened and report.data.counts == {}, report.data
    assert "cannot be opened" in report.data.note and "\n" not in report.data.note, report.data.note
    assert report.data.note in page.replace("&#x27;", "'"), "the panel says why, in its one line"
    assert len(report.errors) == 1 and all(m.image is None for m in report.errors[0].misclassified)
    assert "confusion-0" in page and "The misclassified images cannot be shown" in page, "the matrix still draws"


def test_a_built_in_panel_splits_as_the_search_did_and_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    panel, read_test = data_panel({"dataset": "digits", "seed": 3})
    reference = load_dataset("digits", validation_size=VALIDATION_SIZE, seed=3)
    assert panel is not None and panel.opened and read_test is not None
    assert sum(panel.counts["val"]) == len(reference.val[1]) == round(VALIDATION_SIZE * 1438), panel.counts
    assert sum(map(sum, panel.counts.values())) == 1797, "scikit-learn's 1797 digits"
    train_images = {image.numpy().tobytes(): label for image, label in zip(*reference.train)}
    for label, samples in enumerate(panel.samples):
        assert all(train_images.get(image.tobytes()) == label for image in samples), f"class {label}'s samples"
    assert torch.equal(torch.from_numpy(read_test(5)), reference.test[0][5])

    def no_download(*_: object) -> None:
        raise AssertionError("a report must not download a data set")

    monkeypatch.setattr(data_module, "_download", no_download)
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path(__file__).parent / "no-such-cache"))
    monkeypatch.setenv("SEARCH_DATA_DIR", str(Path(__file__).parent / "no-such-data"))
    panel, read_test = data_panel({"dataset": "cifar10"})
    assert panel is not None and not panel.opened and read_test is None, panel
    assert panel.note.startswith("The data of this study cannot be opened: CIFAR-10 not found"), panel.note
    assert data_panel({"dataset": "somewhere-else"}) == (None, None), "a data set the toolkit does not know"
