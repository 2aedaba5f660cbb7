"""The one rule that ranks a study's trials by its objectives: which trials, in which order.

The candidates are the completed trials with values that are within every
constraint set with ``Trial.set_constraint`` (each value <= 0, Optuna's rule
for ``Study.best_trials``), one per architecture: the first trial of each,
by number (a duplicate, whose values were copied, stands for its original;
a trial that records no architecture stands for itself). They are ranked by
non-dominated sorting over the study's objectives, in the study's
directions: rank 1 is the Pareto front, rank 2 the front of the rest, and so
on; within a rank by the quality objective (the first maximised one, such as
accuracy; else the first), best first, then by trial number.

``search show``, ``search export``, ``search finalize``, the report, the
progress line and the benchmarks all rank through here, so they agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from evaluation.metrics import Direction
from search.pareto._sorting import non_dominated_ranks, running_front_sizes, to_losses
from search.storage.records import TrialOutcome, TrialRecord
from spaces import Objective

__all__ = [
    "RankedTrial",
    "candidates",
    "front_size_history",
    "front_trials",
    "is_feasible",
    "objective_names",
    "quality_index",
    "rank_trials",
    "ranked_trials",
    "study_directions",
    "study_objectives",
]


# A study's directions as its objectives write them (a study always has one of the two).
_DIRECTIONS: dict[StudyDirection, Direction] = {
    StudyDirection.MAXIMIZE: "maximize",
    StudyDirection.MINIMIZE: "minimize",
}


class RankedTrial(NamedTuple):
    """A candidate and its non-dominated rank (1: on the Pareto front)."""

    rank: int
    trial: FrozenTrial


def study_objectives(study: optuna.Study) -> tuple[Objective, ...]:
    """The study's objectives (metric names and directions), as the storage holds them.

    A study made elsewhere, without metric names, gets ``objective0``, ``objective1``, ...
    """
    names = study.metric_names or [f"objective{i}" for i in range(len(study.directions))]
    return tuple(Objective(name, _DIRECTIONS[d]) for name, d in zip(names, study.directions))


def objective_names(study: optuna.Study) -> list[str]:
    """The metrics the study optimises, in the order of its values."""
    return [o.metric for o in study_objectives(study)]


def study_directions(study: optuna.Study) -> tuple[str, ...]:
    """ "maximize" or "minimize" per objective, in the order of the study's values."""
    return tuple(o.direction for o in study_objectives(study))


def quality_index(directions: Sequence[str]) -> int:
    """The objective that orders trials within a rank and that "best" refers to: the first maximised one
    (accuracy, in this project's spaces), else the first."""
    return next((i for i, d in enumerate(directions) if d == "maximize"), 0)


def is_feasible(trial: FrozenTrial) -> bool:
    """Within every constraint set with ``Trial.set_constraint`` (values <= 0), as Optuna decides."""
    return all(v <= 0 for v in trial.constraints.values())


def candidates(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The trials the rule ranks (see the module's doc), by number.

    Whether a trial is one depends only on the trials before it, so the
    candidates among the first k trials are the first candidates of all.
    """
    seen: set[str] = set()
    chosen = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state != TrialState.COMPLETE or trial.values is None or not is_feasible(trial):
            continue
        record = TrialRecord.load(trial)
        if record.outcome is TrialOutcome.DUPLICATE:
            continue
        key = record.architecture_key or (str(record.architecture) if record.architecture is not None else None)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        chosen.append(trial)
    return chosen


def rank_trials(trials: Iterable[FrozenTrial], directions: Sequence[str]) -> list[RankedTrial]:
    """The candidates among ``trials`` with their ranks, best first by the rule of the module's doc."""
    pool = candidates(trials)
    if not pool:
        return []
    losses = to_losses((t.values for t in pool), directions)
    ranks = non_dominated_ranks(losses)
    quality = quality_index(directions)
    order = sorted(range(len(pool)), key=lambda i: (ranks[i], losses[i, quality], pool[i].number))
    return [RankedTrial(int(ranks[i]), pool[i]) for i in order]


def ranked_trials(study: optuna.Study) -> list[RankedTrial]:
    """The study's candidates with their ranks, best first: ``rank_trials`` in the study's directions."""
    return rank_trials(study.get_trials(deepcopy=False), study_directions(study))


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto front by the rule (rank 1: one trial per architecture), by trial number."""
    return sorted((r.trial for r in ranked_trials(study) if r.rank == 1), key=lambda t: t.number)


def front_size_history(trials: Iterable[FrozenTrial], directions: Sequence[str]) -> list[tuple[int, int]]:
    """(trial number, size of the front among the trials up to it), for every trial by number."""
    ordered = sorted(trials, key=lambda t: t.number)
    chosen = {t.number for t in candidates(ordered)}
    sizes = running_front_sizes((t.values if t.number in chosen else None for t in ordered), directions)
    return [(t.number, size) for t, size in zip(ordered, sizes)]
