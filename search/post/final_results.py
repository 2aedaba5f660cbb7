"""The results of ``search finalize`` as data: final.csv, and each model's mean and spread over seeds.

``show`` and the report read them from here, so both give the same means,
standard deviations, final front and rank correlation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from search.pareto import dominates
from search.post.full_training import RESULT_FILE
from search.storage.studies import check_folder_name, study_dir

__all__ = [
    "FINAL_COLUMNS",
    "FINAL_FOLDER",
    "FinalModel",
    "FinalResults",
    "final_dir",
    "final_rows",
    "load_final",
    "rank_correlation",
    "summarize_final",
]

FINAL_FOLDER = "final"
FINAL_CSV = "final.csv"
# One row per model and seed; val_accuracy is the search's (brief training, validation split).
FINAL_COLUMNS = (
    "model",
    "trial",
    "seed",
    "test_accuracy",
    "val_accuracy",
    "params",
    "macs",
    "latency_ms",
    "train_seconds",
    "epochs",
    "diverged",
)


@dataclass(frozen=True)
class FinalModel:
    """One finalized trial: test accuracy over its seeds (sample standard deviation, None for
    one seed), the search's validation accuracy and its costs."""

    trial: int
    seeds: int
    test_mean: float
    test_std: float | None
    val_accuracy: float | None
    params: int
    macs: int
    latency_ms: float | None
    on_final_front: bool  # no other finalized model has a higher mean test accuracy at no more MACs


@dataclass(frozen=True)
class FinalResults:
    """Every finalized model of a study, by trial number, and how well the search ranked them."""

    models: tuple[FinalModel, ...]
    # Spearman's rank correlation of the search's validation accuracy with the mean test
    # accuracy; None with fewer than two models or when either is constant.
    rank_correlation: float | None
    source: Path

    def model(self, trial: int) -> FinalModel | None:
        return next((m for m in self.models if m.trial == trial), None)


def final_dir(study_name: str, folder: str = FINAL_FOLDER) -> Path:
    """``studies/<study>/final/``: one folder per model, one per seed under it, and final.csv.

    Another ``folder`` holds trainings at another budget beside those of ``final/``
    (a folder holds one recipe: ``search.post.full_training`` refuses to mix two)."""
    return study_dir(study_name) / check_folder_name(folder, "final folder")


def final_rows(folder: Path) -> pd.DataFrame:
    """One row per result.json under ``folder`` (``<model>/seed-<s>/``), by trial and seed."""
    rows = [_row(json.loads(path.read_text())) for path in sorted(folder.glob(f"*/seed-*/{RESULT_FILE}"))]
    frame = pd.DataFrame(rows, columns=list(FINAL_COLUMNS))
    return frame.sort_values(["trial", "seed"], ignore_index=True)


def _row(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": record["model"],
        "trial": record["trial"],
        "seed": record["seed"],
        "test_accuracy": record["test_accuracy"],
        "val_accuracy": record.get("search_val_accuracy"),
        "params": record["params"],
        "macs": record["macs"],
        "latency_ms": record.get("latency_ms"),
        "train_seconds": record["train_seconds"],
        "epochs": record["epochs"],
        "diverged": record["diverged"],
    }


def summarize_final(frame: pd.DataFrame, source: Path) -> FinalResults:
    """Per model: mean and sample standard deviation of test accuracy over its seeds."""
    models = []
    for trial, rows in frame.groupby("trial", sort=True):
        std = rows["test_accuracy"].std() if len(rows) > 1 else None
        models.append(
            FinalModel(
                trial=int(trial),
                seeds=len(rows),
                test_mean=float(rows["test_accuracy"].mean()),
                test_std=None if std is None else float(std),
                val_accuracy=_optional(rows["val_accuracy"].iloc[0]),
                params=int(rows["params"].iloc[0]),
                macs=int(rows["macs"].iloc[0]),
                latency_ms=_optional(rows["latency_ms"].mean()),
                on_final_front=False,
            )
        )
    on_front = _front(models)
    models = [dataclasses.replace(m, on_final_front=m.trial in on_front) for m in models]
    pairs = [(m.val_accuracy, m.test_mean) for m in models if m.val_accuracy is not None]
    return FinalResults(models=tuple(models), rank_correlation=rank_correlation(pairs), source=source)


def load_final(study_name: str, folder: str = FINAL_FOLDER) -> FinalResults | None:
    """The study's final.csv (in ``folder``) summarised, or None when the study was never finalized."""
    path = final_dir(study_name, folder) / FINAL_CSV
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    if frame.empty:
        return None
    return summarize_final(frame, path)


def rank_correlation(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Spearman's rho of the pairs (Pearson's of their average ranks, so ties count half)."""
    frame = pd.DataFrame(list(pairs), columns=["a", "b"])
    if len(frame) < 2:
        return None
    rho = frame["a"].rank().corr(frame["b"].rank())
    return None if not math.isfinite(rho) else float(rho)


def _front(models: list[FinalModel]) -> set[int]:
    """Trials no other finalized model dominates on (mean test accuracy up, MACs down)."""
    points = {m.trial: (m.test_mean, m.macs) for m in models}
    directions = ("maximize", "minimize")
    return {t for t, p in points.items() if not any(dominates(q, p, directions) for q in points.values())}


def _optional(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
