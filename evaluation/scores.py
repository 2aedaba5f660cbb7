"""Scores of a classifier beyond accuracy: what an unbalanced data set of a user's needs.

Accuracy rewards a model that always answers the commonest class; these do not:

- balanced accuracy: the mean over classes of the share of each class's images
  classified correctly (its recall), over the classes that have images;
- macro-F1: the mean over classes of 2 TP / (2 TP + FP + FN), over the classes
  that occur among the labels or the predictions (scikit-learn's default);
- ROC AUC, for two classes: the probability that a random image of class 1
  gets a higher class-1 probability than a random image of class 0 (ties
  count half: the Mann-Whitney statistic), threshold-free;
- per-class accuracy (each class's recall) and the confusion matrix.

The definitions are scikit-learn's (``balanced_accuracy_score``,
``f1_score(average="macro")``, ``roc_auc_score``, ``confusion_matrix``), which
the tests check them against; numpy alone computes them here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evaluation.training import TrainConfig, predict_probabilities

__all__ = [
    "SCORE_NAMES",
    "ClassScores",
    "balanced_accuracy",
    "class_scores",
    "confusion_matrix",
    "macro_f1",
    "per_class_accuracy",
    "roc_auc",
    "score_model",
    "scores_of_classes",
]

# The entries of a trial's ``val_scores`` record field, each a metric of evaluation.metrics.
SCORE_NAMES = ("balanced_accuracy", "macro_f1", "roc_auc")


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row the true class, column the predicted one."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> list[float | None]:
    """Each class's recall (correct / images of the class); None for a class without images."""
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]


def balanced_accuracy(matrix: np.ndarray) -> float:
    """The mean recall over the classes that have images."""
    recalls = [r for r in per_class_accuracy(matrix) if r is not None]
    return float(np.mean(recalls)) if recalls else 0.0


def macro_f1(matrix: np.ndarray) -> float:
    """The mean F1 over the classes present among the labels or the predictions."""
    true_positive = np.diag(matrix).astype(np.float64)
    actual, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    present = (actual + predicted) > 0
    f1 = 2 * true_positive[present] / (actual[present] + predicted[present])
    return float(f1.mean()) if present.any() else 0.0


def roc_auc(labels: np.ndarray, positive_scores: np.ndarray) -> float | None:
    """Area under the ROC curve of two classes (labels 0 and 1); None unless both occur.

    The rank-sum form: (sum of positives' ranks - P (P + 1) / 2) / (P N), with
    tied scores given their mean rank, which is the trapezoidal area exactly.
    """
    labels = np.asarray(labels)
    positives = int((labels == 1).sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    scores = np.asarray(positive_scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # Mean rank (1-based) of each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class ClassScores:
    """A classifier's scores on one split: the metrics, each class's accuracy, the confusion matrix."""

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    roc_auc: float | None  # two classes only
    per_class_accuracy: list[float | None]
    confusion: list[list[int]]

    def metrics(self) -> dict[str, float | None]:
        """The values of ``SCORE_NAMES``, as a trial's ``val_scores`` record field holds them."""
        return {name: getattr(self, name) for name in SCORE_NAMES}


def class_scores(labels: np.ndarray, probabilities: np.ndarray) -> ClassScores:
    """Every score of predictions ``probabilities`` (N, classes) against ``labels`` (N,)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = probabilities.shape[1]
    positive = probabilities[:, 1] if num_classes == 2 else None
    return scores_of_classes(labels, probabilities.argmax(axis=1), num_classes, positive)


def scores_of_classes(
    labels: np.ndarray, predictions: np.ndarray, num_classes: int, positive: np.ndarray | None = None
) -> ClassScores:
    """Every score of predicted classes against ``labels`` (N,); ROC AUC from ``positive``,
    the class-1 probabilities, when there are two classes and they are given."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    matrix = confusion_matrix(labels, predictions, num_classes)
    return ClassScores(
        accuracy=float((predictions == labels).mean()) if len(labels) else 0.0,
        balanced_accuracy=balanced_accuracy(matrix),
        macro_f1=macro_f1(matrix),
        roc_auc=roc_auc(labels, np.asarray(positive)) if num_classes == 2 and positive is not None else None,
        per_class_accuracy=per_class_accuracy(matrix),
        confusion=matrix.tolist(),
    )


def score_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> ClassScores:
    """``model``'s scores on uint8 ``images``, preprocessed as training evaluates (``predict_probabilities``)."""
    probabilities = predict_probabilities(model, images, config, mean=mean, std=std)
    return class_scores(labels.numpy(), probabilities.numpy())
