"""One run's pruner, and one trial's watch over its rungs and epochs (``train``'s callbacks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from evaluation.training import Checkpoint, EpochReport
from search.pruners.config import RUNG_ACCURACIES, RUNG_DECISIONS, Pruning
from search.pruners.replay import RungDecision
from spaces import Objective

__all__ = ["Pruner", "RungWatch"]


class Pruner:
    """The pruner of one run: the rungs of its budget and the rule that judges a trial.

    ``optuna`` is the Optuna pruner of the rule (NopPruner unless Optuna's
    own decides). Each worker makes one and gives it to its study as well
    (``study.pruner``), so the rule's decisions and the sampler see the same
    one: Hyperband keeps its brackets between trials and TPE samples within them.
    """

    def __init__(self, pruning: Pruning, objectives: Sequence[Objective], budget: int) -> None:
        pruning.check(objectives)
        self.pruning, self.objectives, self.budget = pruning, tuple(objectives), budget
        self.rule = pruning.rule
        self.rungs = pruning.rungs(budget)
        self.optuna = pruning.optuna_pruner(budget)

    def watch(self, trial: optuna.Trial) -> RungWatch:
        """``train``'s ``on_checkpoint`` for ``trial``, with the rungs to stop at."""
        return RungWatch(self, trial)


@dataclass
class RungWatch:
    """One trial at its rungs and epochs: records, asks the rule, records the decision.

    ``stopped`` holds the rung decision that stopped the trial, and ``stop_reason``
    why it stopped, at a rung or after an epoch; both None while it goes on.
    """

    pruner: Pruner
    trial: optuna.Trial
    accuracies: dict[str, float] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    stopped: RungDecision | None = None
    stop_reason: str | None = None

    @property
    def checkpoints(self) -> tuple[int, ...]:
        return self.pruner.rungs

    def __call__(self, checkpoint: Checkpoint) -> bool:
        """Record the rung's accuracy on the trial, decide, record the decision; True stops training."""
        rungs = self.pruner.rungs
        rung = max(i for i, images in enumerate(rungs) if images <= checkpoint.images)
        images = rungs[rung]
        if checkpoint.val_accuracy is None:  # no validation set: nothing to judge by
            return False
        self.accuracies[str(images)] = checkpoint.val_accuracy
        self.trial.set_user_attr(RUNG_ACCURACIES, self.accuracies)
        if len(self.pruner.objectives) == 1:  # Optuna keeps intermediate values for one objective only
            self.trial.report(checkpoint.val_accuracy, step=images)
        decision = self.pruner.rule.at_rung(self, rung, images)
        self.decisions.append(decision.to_attr())
        self.trial.set_user_attr(RUNG_DECISIONS, self.decisions)
        if decision.continued:
            return False
        self.stopped, self.stop_reason = decision, decision.reason
        return True

    def after_epoch(self, report: EpochReport) -> bool:
        """``train``'s ``on_epoch`` verdict: True when the rule stops the trial after this epoch."""
        reason = self.pruner.rule.after_epoch(self, report)
        if reason is None:
            return False
        self.stop_reason = reason
        return True

    # -- what rules read ------------------------------------------------------------

    def trials(self) -> list[FrozenTrial]:
        """Every trial of the study now, this one included (as the storage holds it)."""
        return self.trial.study.get_trials(deepcopy=False)

    def decision(self, rung: int, images: int, *, continued: bool, reason: str, **details: Any) -> RungDecision:
        """A decision at rung ``rung`` (0-based), as recorded on the trial."""
        pruning = self.pruner.pruning
        return RungDecision(
            rung=rung + 1,
            rungs=len(self.pruner.rungs),
            images=images,
            continued=continued,
            reason=reason,
            pruner=pruning.kind,
            eta=pruning.eta,
            **details,
        )

    def where(self, rung: int, images: int) -> str:
        """``rung 1 of 2, 100 of 900 images``: where a decision was taken, in words."""
        return f"rung {rung + 1} of {len(self.pruner.rungs)}, {images:,} of {self.pruner.budget:,} images"
