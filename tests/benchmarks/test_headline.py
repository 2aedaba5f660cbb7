"""benchmarks/headline.py: its stages, and its pick of the best final model under 100K parameters."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from headline import MAX_PARAMS, best_under_limit, stages  # noqa: E402


def _row(model: str, folder: str, seed: int, accuracy: float, params: int) -> dict[str, object]:
    epochs = {"final-20-epochs": 20, "final-80-epochs": 80, "final-80-epochs-swa-20": 20}[folder]
    return {"model": model, "folder": folder, "epochs": epochs, "seed": seed, "test_accuracy": accuracy,
            "params": params, "macs": 7}  # fmt: skip


def test_the_best_mean_within_the_limit_wins_per_model_and_stage() -> None:
    rows = pd.DataFrame(
        [
            _row("trial-1", "final-20-epochs", 0, 0.925, 60_000),
            _row("trial-1", "final-20-epochs", 1, 0.923, 60_000),
            _row("trial-1", "final-80-epochs", 0, 0.934, 60_000),  # the longer budget: its own mean, not pooled
            _row("trial-1", "final-80-epochs", 1, 0.930, 60_000),
            _row("trial-1", "final-80-epochs-swa-20", 0, 0.929, 60_000),  # 20 epochs too, but another stage
            _row("trial-1", "final-80-epochs-swa-20", 1, 0.929, 60_000),
            _row("trial-2", "final-20-epochs", 0, 0.950, MAX_PARAMS + 1),  # best, but over the limit
            _row("trial-3", "final-20-epochs", 0, 0.931, MAX_PARAMS),  # one seed: a mean below trial-1's at 80
        ]
    )
    best = best_under_limit(rows)
    assert best is not None, rows
    assert (best["model"], best["folder"], best["epochs"], best["seeds"]) == ("trial-1", "final-80-epochs", 80, 2)
    assert best["test_accuracy_mean"] == pytest.approx(0.932)
    assert best["test_accuracy_std"] == pytest.approx(pd.Series([0.934, 0.930]).std())
    assert best["params"] == 60_000


def test_nothing_within_the_limit_is_none() -> None:
    assert best_under_limit(pd.DataFrame([_row("trial-2", "final-20-epochs", 0, 0.95, MAX_PARAMS + 1)])) is None


def test_weight_averaging_is_a_second_stage_from_the_first_stages_weights() -> None:
    assert stages(80) == [("final-80-epochs", ["--epochs", "80"])]
    (main, _), (folder, swa) = stages(80, swa_epochs=20, swa_lr=0.15)
    assert (main, folder) == ("final-80-epochs", "final-80-epochs-swa-20")
    assert " ".join(swa) == "--init-from final-80-epochs --epochs 20 --schedule constant --lr 0.15 --swa-epochs 20"
