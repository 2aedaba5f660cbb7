"""The pruner of a run: which rule stops trials, and the rungs of a budget it looks at."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import optuna
from optuna.pruners import BasePruner

from search.errors import UsageError
from spaces import Objective

__all__ = ["PRUNERS", "Pruning", "RUNG_ACCURACIES", "RUNG_DECISIONS", "SINGLE_OBJECTIVE_PRUNERS", "STUDY_PRUNER"]

PRUNERS = ("asha", "hyperband", "median", "none")
SINGLE_OBJECTIVE_PRUNERS = ("hyperband", "median")
RUNG_ACCURACIES = "rung_accuracies"  # trial user attribute: {str(images): validation accuracy}
RUNG_DECISIONS = "rung_decisions"  # trial user attribute: [RungDecision.to_attr(), ...]
STUDY_PRUNER = "pruner"  # study user attribute: the pruner in effect (Pruning.settings()), read by every worker


# --- the pruner of a run ---------------------------------------------------------


@dataclass(frozen=True)
class Pruning:
    """Which pruner a run uses and its rungs: ``min_fraction`` of the budget, then ``eta`` times more."""

    kind: str = "none"
    min_fraction: Fraction = Fraction(1, 9)
    eta: int = 3

    def __post_init__(self) -> None:
        if self.kind not in PRUNERS:
            raise UsageError(f"unknown pruner {self.kind!r}; expected one of {', '.join(PRUNERS)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise UsageError(f"eta must be an integer >= 2, got {self.eta!r}")
        fraction = Fraction(self.min_fraction).limit_denominator(10_000)
        if not 0 < fraction < 1:
            raise UsageError(f"the first rung must be a fraction of the budget in (0, 1), got {self.min_fraction}")
        object.__setattr__(self, "min_fraction", fraction)

    def fractions(self) -> tuple[Fraction, ...]:
        """The rungs below the whole budget, as fractions of it; none without a pruner."""
        if self.kind == "none":
            return ()
        found, fraction = [], self.min_fraction
        while fraction < 1:
            found.append(fraction)
            fraction *= self.eta
        return tuple(found)

    def rungs(self, budget: int) -> tuple[int, ...]:
        """Training images seen at each rung of a ``budget``-image run (the whole run excluded)."""
        counts = {math.ceil(budget * fraction) for fraction in self.fractions()}
        return tuple(sorted(c for c in counts if 0 < c < budget))

    def check(self, objectives: Sequence[Objective]) -> None:
        """Optuna's pruners rank one value: refuse them for a multi-objective space."""
        if self.kind in SINGLE_OBJECTIVE_PRUNERS and len(objectives) > 1:
            names = ", ".join(o.metric for o in objectives)
            raise UsageError(
                f"--pruner {self.kind} is for single-objective spaces, this one has {len(objectives)} "
                f"objectives ({names}); use --pruner asha or none"
            )

    def optuna_pruner(self, budget: int) -> BasePruner:
        """The Optuna pruner the study is created with: NopPruner unless Optuna's own pruner decides."""
        rungs = self.rungs(budget)
        if self.kind == "median" and rungs:
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        if self.kind == "hyperband" and rungs:
            return optuna.pruners.HyperbandPruner(min_resource=rungs[0], max_resource=budget, reduction_factor=self.eta)
        return optuna.pruners.NopPruner()

    def settings(self) -> dict[str, Any]:
        """As stored with the study (JSON and YAML)."""
        return {"kind": self.kind, "min_fraction": str(self.min_fraction), "eta": self.eta}

    @classmethod
    def from_settings(cls, stored: Mapping[str, Any] | None) -> Pruning:
        """The pruning a study stored; none for a study that stored none (made elsewhere, or before pruners)."""
        if not stored:
            return cls()
        return cls(kind=stored["kind"], min_fraction=Fraction(stored["min_fraction"]), eta=int(stored["eta"]))

    @classmethod
    def of_study(cls, study: optuna.Study) -> Pruning:
        """The pruning in effect for ``study``: what its latest run stored (``store_in``)."""
        return cls.from_settings(study.user_attrs.get(STUDY_PRUNER))

    def store_in(self, study: optuna.Study) -> None:
        """Make this the study's pruning, which worker processes read (``TrialObjective``)."""
        study.set_user_attr(STUDY_PRUNER, self.settings())

    def describe(self) -> str:
        """One line for the start of a run: the pruner and where it looks."""
        fractions = self.fractions()
        if not fractions:
            return "pruner none (every trial trains its whole budget)"
        at = ", ".join(str(f) for f in fractions)
        return f"pruner {self.kind} (rungs at {at} of the budget, eta {self.eta})"
