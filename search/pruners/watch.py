"""One run's pruner, and one trial's watch over its rungs (``train``'s ``on_checkpoint``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from evaluation.training import Checkpoint
from search.pruners.config import RUNG_ACCURACIES, RUNG_DECISIONS, SINGLE_OBJECTIVE_PRUNERS, Pruning
from search.pruners.moasha import decide
from search.pruners.replay import RungDecision, rung_point
from spaces import Objective

__all__ = ["Pruner", "RungWatch"]


class Pruner:
    """The pruner of one run: the rungs of its budget and how a trial is judged at each."""

    def __init__(self, pruning: Pruning, objectives: Sequence[Objective], budget: int) -> None:
        pruning.check(objectives)
        self.pruning, self.objectives, self.budget = pruning, tuple(objectives), budget
        self.rungs = pruning.rungs(budget)
        # One Optuna pruner for the run: Hyperband keeps its brackets between trials.
        self.optuna = pruning.optuna_pruner(budget) if pruning.kind in SINGLE_OBJECTIVE_PRUNERS else None

    def watch(self, trial: optuna.Trial) -> RungWatch:
        """``train``'s ``on_checkpoint`` for ``trial``, with the rungs to stop at."""
        return RungWatch(self, trial)


@dataclass
class RungWatch:
    """One trial at its rungs: records its accuracy, then asks the pruner; ``stopped`` says why it ended."""

    pruner: Pruner
    trial: optuna.Trial
    accuracies: dict[str, float] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    stopped: RungDecision | None = None

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
        decision = self._decide(rung, images)
        self.decisions.append(decision.to_attr())
        self.trial.set_user_attr(RUNG_DECISIONS, self.decisions)
        if decision.continued:
            return False
        self.stopped = decision
        return True

    def _decide(self, rung: int, images: int) -> RungDecision:
        pruning, study = self.pruner.pruning, self.trial.study
        trials = study.get_trials(deepcopy=False)
        own = next(t for t in trials if t.number == self.trial.number)
        common = {"rung": rung + 1, "rungs": len(self.pruner.rungs), "images": images}
        common |= {"pruner": pruning.kind, "eta": pruning.eta}
        where = f"rung {rung + 1} of {len(self.pruner.rungs)}, {images:,} of {self.pruner.budget:,} images"
        if self.pruner.optuna is not None:
            stop = self.pruner.optuna.prune(study, own)
            verb = "stopped by" if stop else "kept by"
            return RungDecision(
                continued=not stop, reason=f"{verb} Optuna's {pruning.kind} pruner at {where}", **common
            )
        objectives = self.pruner.objectives
        point = rung_point(own.number, {**own.user_attrs, RUNG_ACCURACIES: self.accuracies}, images, objectives)
        assert point is not None  # the accuracy was just recorded
        peers = [
            p
            for t in trials
            if t.number != own.number and (p := rung_point(t.number, t.user_attrs, images, objectives)) is not None
        ]
        verdict = decide(point, peers, [o.direction for o in objectives], pruning.eta)
        reason = f"{'continued' if verdict.continued else 'stopped'} at {where}: {verdict.reason(pruning.eta)}"
        return RungDecision(
            continued=verdict.continued,
            reason=reason,
            rank=verdict.rank,
            points=verdict.points,
            peers=tuple(sorted(p.trial for p in peers)),
            **common,
        )
