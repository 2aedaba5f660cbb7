"""The results of ``search finalize`` as data: final.csv, and each model's mean and spread over seeds.

``show`` and the report read them from here, so both give the same means,
standard deviations, final front and rank correlation.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from search.pareto import is_non_dominated, spearman, to_losses
from search.post.full_training import RESULT_FILE
from search.storage.studies import check_folder_name, study_dir
from spaces import Objective

__all__ = [
    "FINAL_COLUMNS",
    "FINAL_FOLDER",
    "FinalModel",
    "FinalResults",
    "final_dir",
    "final_rows",
    "load_final",
    "summarize_final",
]

FINAL_FOLDER = "final"
FINAL_CSV = "final.csv"
# One row per model and seed, as its result.json says: val_accuracy is the trained model's on the
# images held out of its training (empty when none were), search_val_accuracy its trial's in the search.
FINAL_COLUMNS = (
    "model",
    "trial",
    "seed",
    "test_accuracy",
    "val_accuracy",
    "search_val_accuracy",
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
    one seed), the held-out validation accuracy over its seeds (None when nothing was held out),
    the search's validation accuracy and its costs."""

    trial: int
    seeds: int
    test_mean: float
    test_std: float | None
    val_mean: float | None
    search_val_accuracy: float | None
    params: int
    macs: int
    latency_ms: float | None
    on_final_front: bool  # no other finalized model beats it on the study's objectives (see ``FinalResults``)

    def value(self, metric: str) -> float | None:
        """The model's value of a metric after full training: accuracy is the mean test accuracy."""
        return {
            "accuracy": self.test_mean,
            "params": self.params,
            "macs": self.macs,
            "latency_ms": self.latency_ms,
        }.get(metric)


@dataclass(frozen=True)
class FinalResults:
    """Every finalized model of a study, by trial number, and how well the search ranked them.

    The final front is the models no other beats on the study's ``objectives``,
    with the mean test accuracy in place of the search's validation accuracy.
    """

    models: tuple[FinalModel, ...]
    # Spearman's rank correlation of the search's validation accuracy with the mean test
    # accuracy (search.pareto.spearman); None with fewer than three models or when either is constant.
    rank_correlation: float | None
    source: Path
    objectives: tuple[Objective, ...]

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
        "val_accuracy": record.get("val_accuracy"),
        "search_val_accuracy": record.get("search_val_accuracy"),
        "params": record["params"],
        "macs": record["macs"],
        "latency_ms": record.get("latency_ms"),
        "train_seconds": record["train_seconds"],
        "epochs": record["epochs"],
        "diverged": record["diverged"],
    }


def summarize_final(frame: pd.DataFrame, source: Path, objectives: Sequence[Objective]) -> FinalResults:
    """Per model: mean and sample standard deviation of test accuracy over its seeds; the final
    front by ``objectives`` (the study's)."""
    models = []
    for _, rows in frame.groupby("trial", sort=True):
        std = rows["test_accuracy"].std() if len(rows) > 1 else None
        models.append(
            FinalModel(
                trial=int(rows["trial"].iloc[0]),
                seeds=len(rows),
                test_mean=float(rows["test_accuracy"].mean()),
                test_std=None if std is None else float(std),
                val_mean=_optional(rows["val_accuracy"].mean()),
                search_val_accuracy=_optional(rows["search_val_accuracy"].iloc[0]),
                params=int(rows["params"].iloc[0]),
                macs=int(rows["macs"].iloc[0]),
                latency_ms=_optional(rows["latency_ms"].mean()),
                on_final_front=False,
            )
        )
    on_front = _front(models, objectives)
    models = [dataclasses.replace(m, on_final_front=m.trial in on_front) for m in models]
    searched = [(m.search_val_accuracy, m.test_mean) for m in models if m.search_val_accuracy is not None]
    rho = spearman([val for val, _ in searched], [test for _, test in searched])
    return FinalResults(models=tuple(models), rank_correlation=rho, source=source, objectives=tuple(objectives))


def load_final(study_name: str, folder: str = FINAL_FOLDER, *, objectives: Sequence[Objective]) -> FinalResults | None:
    """The study's final trainings (in ``folder``) summarised, or None when the study was never finalized.

    Read from the result.json files that final.csv is written from, so a final.csv
    written by an older version, with other columns, is never misread.
    ``objectives``: the study's (``search.pareto.study_objectives``), for the final front."""
    where = final_dir(study_name, folder)
    frame = final_rows(where)
    if frame.empty:
        return None
    return summarize_final(frame, where / FINAL_CSV, objectives)


def _front(models: list[FinalModel], objectives: Sequence[Objective]) -> set[int]:
    """Trials no other finalized model dominates on ``objectives``; a value a model lacks ranks worst."""
    if not models:
        return set()
    worst = {"maximize": -math.inf, "minimize": math.inf}
    values = [[_or(m.value(o.metric), worst[o.direction]) for o in objectives] for m in models]
    on_front = is_non_dominated(to_losses(values, [o.direction for o in objectives]))
    return {m.trial for m, kept in zip(models, on_front) if kept}


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else float(value)


def _optional(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
