"""The training budget a study's trials spent, against what their full runs would have seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["BudgetSpent", "budget_spent", "images_saved_fraction"]


@dataclass(frozen=True)
class BudgetSpent:
    """Training images the trials that trained saw, against what their full runs would have seen."""

    trials: int
    images_seen: int
    images_planned: int

    @property
    def saved(self) -> float:
        """The fraction of the planned training images not spent (0 when nothing trained)."""
        return 1 - self.images_seen / self.images_planned if self.images_planned else 0.0


def budget_spent(trials: Iterable[FrozenTrial]) -> BudgetSpent:
    """Over the trials that started training (``images_planned`` recorded), still running ones excluded."""
    spent = [
        (int(t.user_attrs.get("images_seen", 0)), int(t.user_attrs["images_planned"]))
        for t in trials
        if t.state is not TrialState.RUNNING and t.user_attrs.get("images_planned")
    ]
    return BudgetSpent(len(spent), sum(s for s, _ in spent), sum(p for _, p in spent))


def images_saved_fraction(study: optuna.Study) -> float:
    """The fraction of the planned training images the study's finished trials did not spend."""
    return budget_spent(study.get_trials(deepcopy=False)).saved
