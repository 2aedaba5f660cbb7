"""Rung points and decisions as the storage holds them, and every ASHA decision replayed from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from evaluation.metrics import get_metric
from search.pareto import study_objectives  # also exported here: search.pruners has always offered it
from search.pruners.config import RUNG_ACCURACIES, RUNG_DECISIONS
from search.pruners.moasha import RungPoint, Verdict, decide
from spaces import Objective

__all__ = [
    "Replayed",
    "RungDecision",
    "recorded_decisions",
    "recorded_rungs",
    "replay_decisions",
    "rung_point",
    "study_objectives",
]


def recorded_rungs(user_attrs: Mapping[str, Any]) -> dict[int, float]:
    """A trial's accuracy at each rung it reached, by images seen."""
    return {int(images): float(accuracy) for images, accuracy in (user_attrs.get(RUNG_ACCURACIES) or {}).items()}


def rung_point(
    number: int, user_attrs: Mapping[str, Any], images: int, objectives: Sequence[Objective]
) -> RungPoint | None:
    """A trial's point at the rung of ``images``, from its user attributes; None when it did not reach it.

    The metric measured in training (accuracy, per epoch) takes the rung's
    value; the others are the trial's recorded costs. A value the trial lacks
    is the metric's worst, so it never ranks best.
    """
    accuracy = recorded_rungs(user_attrs).get(images)
    if accuracy is None:
        return None
    values = []
    for objective in objectives:
        metric = get_metric(objective.metric)
        value = accuracy if metric.per_epoch else metric.value(user_attrs)
        values.append(metric.worst_for(objective.direction) if value is None else float(value))
    return RungPoint(number, tuple(values))


@dataclass(frozen=True)
class RungDecision:
    """What a trial's pruner said at one rung, as recorded on the trial."""

    rung: int  # 1-based
    rungs: int  # rungs below the whole budget
    images: int  # the rung's images (the trial validated at the first step past them)
    continued: bool
    reason: str
    pruner: str
    eta: int
    rank: int | None = None  # asha: the trial's rank among the points at the rung, 1 is best
    points: int | None = None
    peers: tuple[int, ...] = ()  # asha: the other trials whose points it was compared with

    def to_attr(self) -> dict[str, Any]:
        attr = {k: v for k, v in vars(self).items() if v is not None}
        attr["peers"] = list(self.peers)
        return attr

    @classmethod
    def from_attr(cls, attr: Mapping[str, Any]) -> RungDecision:
        return cls(**{**attr, "peers": tuple(attr.get("peers", ()))})


def recorded_decisions(user_attrs: Mapping[str, Any]) -> list[RungDecision]:
    return [RungDecision.from_attr(d) for d in user_attrs.get(RUNG_DECISIONS) or ()]


@dataclass(frozen=True)
class Replayed:
    """One recorded ASHA decision and the one recomputed from the storage."""

    trial: int
    rung: int
    recorded: bool  # continued, as recorded
    replayed: Verdict

    @property
    def agrees(self) -> bool:
        return self.recorded == self.replayed.continued


def replay_decisions(study: optuna.Study, objectives: Sequence[Objective] | None = None) -> list[Replayed]:
    """Every ASHA decision the study records, recomputed from the stored points alone.

    ``objectives``: None takes the study's metric names and directions (as
    ``search run`` stores them).
    """
    objectives = study_objectives(study) if objectives is None else tuple(objectives)
    directions = [o.direction for o in objectives]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    replays = []
    for number, trial in sorted(trials.items()):
        for decision in recorded_decisions(trial.user_attrs):
            if decision.pruner != "asha":
                continue
            own = rung_point(number, trial.user_attrs, decision.images, objectives)
            peers = [rung_point(n, trials[n].user_attrs, decision.images, objectives) for n in decision.peers]
            if own is None or None in peers:
                raise ValueError(f"trial {number}, rung {decision.rung}: a compared point is missing from the storage")
            verdict = decide(own, [p for p in peers if p is not None], directions, decision.eta)
            replays.append(Replayed(number, decision.rung, decision.continued, verdict))
    return replays
