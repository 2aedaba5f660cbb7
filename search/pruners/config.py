"""The pruner of a run: which stopping rule stops trials, and the rungs of a budget it looks at.

Stopping rules are a table, ``STOPPING_RULES``: a name (``--pruner NAME``) to a
small ``StoppingRule`` class, registered with ``@stopping_rule(NAME)`` (the
built-in ones are in ``search.pruners.rules``). A rule may judge a trial at the
rungs of its budget (``at_rung``, as ASHA, median and Hyperband do), after
each epoch (``after_epoch``), or both; a new rule is a new entry, never a new
branch in the code that trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

import optuna
from optuna.pruners import BasePruner

from search.errors import UsageError
from spaces import Objective

if TYPE_CHECKING:
    from evaluation.training import EpochReport
    from search.pruners.replay import RungDecision
    from search.pruners.watch import RungWatch

__all__ = [
    "RUNG_ACCURACIES",
    "RUNG_DECISIONS",
    "STOPPING_RULES",
    "STUDY_PRUNER",
    "Pruning",
    "StoppingRule",
    "stopping_rule",
]

RUNG_ACCURACIES = "rung_accuracies"  # trial user attribute: {str(images): validation accuracy}
RUNG_DECISIONS = "rung_decisions"  # trial user attribute: [RungDecision.to_attr(), ...]
STUDY_PRUNER = "pruner"  # study user attribute: the pruner in effect (Pruning.settings()), read by every worker


# --- the table of stopping rules ---------------------------------------------------


class StoppingRule:
    """One way of stopping trials early. Subclasses override what they decide; the base stops nothing.

    ``rungs``: whether a trial validates at the rungs of its budget for this
    rule (``at_rung`` is then asked at each). ``single_objective``: the rule
    ranks one value only, and is refused for a space with several objectives.
    """

    rungs: ClassVar[bool] = True
    single_objective: ClassVar[bool] = False

    def optuna_pruner(self, pruning: Pruning, budget: int) -> BasePruner:
        """The Optuna pruner every worker's study holds; samplers see it too (Hyperband's brackets)."""
        return optuna.pruners.NopPruner()

    def at_rung(self, watch: RungWatch, rung: int, images: int) -> RungDecision:
        """Whether the trial ``watch`` follows continues past rung ``rung`` (0-based) at ``images`` seen."""
        raise NotImplementedError(f"{type(self).__name__} judges at rungs but does not say how")

    def after_epoch(self, watch: RungWatch, report: EpochReport) -> str | None:
        """Why the trial stops after the epoch of ``report``; None to go on (a per-epoch rule's seat)."""
        return None

    def describe(self, pruning: Pruning) -> str:
        """One line for the start of a run: the rule and where it looks."""
        fractions = pruning.fractions()
        if not fractions:
            return f"pruner {pruning.kind} (every trial trains its whole budget)"
        at = ", ".join(str(f) for f in fractions)
        return f"pruner {pruning.kind} (rungs at {at} of the budget, eta {pruning.eta})"


STOPPING_RULES: dict[str, type[StoppingRule]] = {}


def stopping_rule(name: str) -> Callable[[type[StoppingRule]], type[StoppingRule]]:
    """Add a rule to ``STOPPING_RULES`` under ``name`` (``--pruner NAME``)."""

    def register(rule: type[StoppingRule]) -> type[StoppingRule]:
        if name in STOPPING_RULES:
            raise ValueError(f"stopping rule {name!r} is registered twice")
        STOPPING_RULES[name] = rule
        return rule

    return register


# --- the pruner of a run ---------------------------------------------------------


@dataclass(frozen=True)
class Pruning:
    """Which pruner a run uses and its rungs: ``min_fraction`` of the budget, then ``eta`` times more."""

    kind: str = "none"
    min_fraction: Fraction = Fraction(1, 9)
    eta: int = 3

    def __post_init__(self) -> None:
        if self.kind not in STOPPING_RULES:
            raise UsageError(f"unknown pruner {self.kind!r}; expected one of {', '.join(STOPPING_RULES)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise UsageError(f"eta must be an integer >= 2, got {self.eta!r}")
        fraction = Fraction(self.min_fraction).limit_denominator(10_000)
        if not 0 < fraction < 1:
            raise UsageError(f"the first rung must be a fraction of the budget in (0, 1), got {self.min_fraction}")
        object.__setattr__(self, "min_fraction", fraction)

    @property
    def rule(self) -> StoppingRule:
        """The stopping rule of ``kind``, from the table."""
        return STOPPING_RULES[self.kind]()

    def fractions(self) -> tuple[Fraction, ...]:
        """The rungs below the whole budget, as fractions of it; none for a rule without rungs."""
        if not self.rule.rungs:
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
        if self.rule.single_objective and len(objectives) > 1:
            names = ", ".join(o.metric for o in objectives)
            raise UsageError(
                f"--pruner {self.kind} is for single-objective spaces, this one has {len(objectives)} "
                f"objectives ({names}); use --pruner asha or none"
            )

    def optuna_pruner(self, budget: int) -> BasePruner:
        """The Optuna pruner of the study: NopPruner unless Optuna's own pruner decides (the rule's)."""
        return self.rule.optuna_pruner(self, budget)

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
        return self.rule.describe(self)
