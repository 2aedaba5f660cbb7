"""benchmarks/headline.py's pick of the best final model under 100K parameters, across budgets."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from headline import MAX_PARAMS, best_under_limit  # noqa: E402


def _row(model: str, epochs: int, seed: int, accuracy: float, params: int) -> dict[str, object]:
    return {"model": model, "epochs": epochs, "seed": seed, "test_accuracy": accuracy, "params": params, "macs": 7}


def test_the_best_mean_within_the_limit_wins_per_model_and_budget() -> None:
    rows = pd.DataFrame(
        [
            _row("trial-1", 20, 0, 0.925, 60_000),
            _row("trial-1", 20, 1, 0.923, 60_000),
            _row("trial-1", 80, 0, 0.934, 60_000),  # the longer budget: its own mean, not pooled with 20 epochs
            _row("trial-1", 80, 1, 0.930, 60_000),
            _row("trial-2", 20, 0, 0.950, MAX_PARAMS + 1),  # best, but over the limit
            _row("trial-3", 20, 0, 0.931, MAX_PARAMS),  # one seed: a mean below trial-1's at 80 epochs
        ]
    )
    best = best_under_limit(rows)
    assert best is not None and (best["model"], best["epochs"], best["seeds"]) == ("trial-1", 80, 2), best
    assert best["test_accuracy_mean"] == pytest.approx(0.932)
    assert best["test_accuracy_std"] == pytest.approx(pd.Series([0.934, 0.930]).std())
    assert best["params"] == 60_000


def test_nothing_within_the_limit_is_none() -> None:
    assert best_under_limit(pd.DataFrame([_row("trial-2", 20, 0, 0.95, MAX_PARAMS + 1)])) is None
