"""The built-in stopping rules, each one entry of ``STOPPING_RULES``: asha, hyperband, median, none.

See ``search.pruners`` for what ASHA decides and why; Optuna's median and
Hyperband pruners are asked at the same rungs, with the accuracy reported at
step = images seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import optuna
from optuna.pruners import BasePruner

from search.pruners.config import RUNG_ACCURACIES, STOPPING_RULES, Pruning, StoppingRule, stopping_rule
from search.pruners.moasha import decide
from search.pruners.replay import RungDecision, rung_point

if TYPE_CHECKING:
    from search.pruners.watch import RungWatch

__all__ = ["PRUNERS", "Asha", "Hyperband", "Median", "NoStopping"]


@stopping_rule("asha")
class Asha(StoppingRule):
    """Multi-objective asynchronous successive halving: the top 1/eta of the points at a rung go on."""

    def at_rung(self, watch: RungWatch, rung: int, images: int) -> RungDecision:
        eta, objectives = watch.pruner.pruning.eta, watch.pruner.objectives
        trials = watch.trials()
        own = next(t for t in trials if t.number == watch.trial.number)
        point = rung_point(own.number, {**own.user_attrs, RUNG_ACCURACIES: watch.accuracies}, images, objectives)
        assert point is not None  # the accuracy was just recorded
        peers = [
            p
            for t in trials
            if t.number != own.number and (p := rung_point(t.number, t.user_attrs, images, objectives)) is not None
        ]
        verdict = decide(point, peers, [o.direction for o in objectives], eta)
        verb = "continued" if verdict.continued else "stopped"
        return watch.decision(
            rung,
            images,
            continued=verdict.continued,
            reason=f"{verb} at {watch.where(rung, images)}: {verdict.reason(eta)}",
            rank=verdict.rank,
            points=verdict.points,
            peers=tuple(sorted(p.trial for p in peers)),
        )


class _OptunaRule(StoppingRule):
    """One of Optuna's pruners, asked at each rung through the worker's one instance (``Pruner.optuna``)."""

    single_objective: ClassVar[bool] = True

    def at_rung(self, watch: RungWatch, rung: int, images: int) -> RungDecision:
        study = watch.trial.study
        own = next(t for t in watch.trials() if t.number == watch.trial.number)
        stop = watch.pruner.optuna.prune(study, own)
        verb = "stopped by" if stop else "kept by"
        reason = f"{verb} Optuna's {watch.pruner.pruning.kind} pruner at {watch.where(rung, images)}"
        return watch.decision(rung, images, continued=not stop, reason=reason)


@stopping_rule("hyperband")
class Hyperband(_OptunaRule):
    """Optuna's HyperbandPruner over the rungs: its brackets, which the sampler samples within."""

    def optuna_pruner(self, pruning: Pruning, budget: int) -> BasePruner:
        rungs = pruning.rungs(budget)
        if not rungs:
            return super().optuna_pruner(pruning, budget)
        return optuna.pruners.HyperbandPruner(min_resource=rungs[0], max_resource=budget, reduction_factor=pruning.eta)


@stopping_rule("median")
class Median(_OptunaRule):
    """Optuna's MedianPruner at the rungs, after 5 trials."""

    def optuna_pruner(self, pruning: Pruning, budget: int) -> BasePruner:
        if not pruning.rungs(budget):
            return super().optuna_pruner(pruning, budget)
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


@stopping_rule("none")
class NoStopping(StoppingRule):
    """Every trial trains its whole budget."""

    rungs: ClassVar[bool] = False


# The names of the built-in rules (``--pruner``'s choices); one registered
# later, by a plug-in, is a valid ``Pruning.kind`` all the same.
PRUNERS = tuple(STOPPING_RULES)
