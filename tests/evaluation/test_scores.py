"""Class-balanced scores against scikit-learn's, and their entries in the metric table."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from evaluation import Architecture, TrainConfig, build_model
from evaluation.metrics import METRICS, format_metric
from evaluation.scores import (
    SCORE_NAMES,
    balanced_accuracy,
    class_scores,
    confusion_matrix,
    macro_f1,
    per_class_accuracy,
    roc_auc,
    score_model,
)


def _case(seed: int, classes: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[labels] * rng.random((n, 1))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities


@pytest.mark.parametrize(("seed", "classes", "n"), [(0, 2, 50), (1, 3, 40), (2, 10, 300), (3, 5, 7)])
def test_scores_match_scikit_learn(seed: int, classes: int, n: int) -> None:
    labels, probabilities = _case(seed, classes, n)
    predictions = probabilities.argmax(1)
    matrix = confusion_matrix(labels, predictions, classes)
    expected = sk.confusion_matrix(labels, predictions, labels=range(classes))
    np.testing.assert_array_equal(matrix, expected, err_msg="confusion matrix")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of classes absent from the labels
        reference_balanced = sk.balanced_accuracy_score(labels, predictions)
        reference_f1 = sk.f1_score(labels, predictions, average="macro", zero_division=0)
    assert balanced_accuracy(matrix) == pytest.approx(reference_balanced, abs=1e-12), "balanced accuracy"
    assert macro_f1(matrix) == pytest.approx(reference_f1, abs=1e-12), "macro-F1"
    recalls = sk.recall_score(labels, predictions, average=None, labels=range(classes), zero_division=0)
    present = np.bincount(labels, minlength=classes) > 0
    ours = per_class_accuracy(matrix)
    for i in range(classes):
        assert (ours[i] is None) == (not present[i]), f"class {i}: None exactly when it has no image"
        if present[i]:
            assert ours[i] == pytest.approx(recalls[i]), f"class {i} accuracy is its recall"
    scores = class_scores(labels, probabilities)
    assert scores.accuracy == pytest.approx(sk.accuracy_score(labels, predictions))
    if classes == 2:
        assert scores.roc_auc == pytest.approx(sk.roc_auc_score(labels, probabilities[:, 1]), abs=1e-12), "ROC AUC"
    else:
        assert scores.roc_auc is None, "ROC AUC is for two classes"


def test_roc_auc_with_ties_and_a_missing_class() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.2, 0.9, 0.3])
    assert roc_auc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12), "ties count half"
    assert roc_auc(np.zeros(4, dtype=int), np.linspace(0, 1, 4)) is None, "one class only: no ROC curve"


def test_scores_of_a_degenerate_classifier() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    always_zero = np.tile([0.9, 0.1], (100, 1))
    scores = class_scores(labels, always_zero)
    assert scores.accuracy == pytest.approx(0.9) and scores.balanced_accuracy == pytest.approx(0.5), (
        "the commonest class always: 90% accurate, 50% balanced"
    )
    assert scores.per_class_accuracy == [1.0, 0.0] and scores.confusion == [[90, 0], [10, 0]], scores
    assert scores.roc_auc == pytest.approx(0.5), "constant scores rank nothing"


@pytest.mark.parametrize("name", SCORE_NAMES)
def test_score_metrics_read_their_entry_of_val_scores(name: str) -> None:
    metric = METRICS[name]
    assert (metric.direction, metric.source, metric.key, metric.constraint) == ("maximize", "val_scores", name, None)
    assert metric.value({"val_scores": {name: 0.75}}) == 0.75, "its own entry"
    assert metric.value({"val_scores": {name: None}}) is None and metric.value({}) is None, "no value, no score"
    assert metric.worst_for("maximize") == 0.0, "a trial without the score ranks last"


def test_score_formats() -> None:
    assert format_metric("balanced_accuracy", 0.8123) == "81.23 %" and format_metric("roc_auc", 0.93412) == "0.934"


def test_score_model_scores_the_model_on_uint8_images() -> None:
    torch.manual_seed(0)
    arch = Architecture.from_dict(
        {
            "stem": {"style": "small", "width": 4},
            "stages": [{"block": "dense", "depth": 1, "growth_rate": 4, "bn_size": 0}],
        }
    )
    model = build_model(arch, (1, 8, 8), 3)
    images = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    labels = torch.arange(20) % 3
    config = TrainConfig(precision="fp32", eval_batch_size=7)
    scores = score_model(model, images, labels, config, mean=(0.5,), std=(0.25,))
    model.eval()
    with torch.no_grad():
        expected = model((images.float() / 255 - 0.5) / 0.25).argmax(1)
    assert scores.accuracy == pytest.approx((expected == labels).float().mean().item()), "the same predictions"
    assert sum(map(sum, scores.confusion)) == 20 and len(scores.per_class_accuracy) == 3, scores
