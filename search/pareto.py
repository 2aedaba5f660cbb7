"""The Pareto front and the trials of a study, as data (drawing is elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from evaluation.metrics import METRICS
from search.storage.records import TrialRecord, describe_architecture

__all__ = [
    "dominates",
    "hypervolume_2d",
    "front_trials",
    "is_feasible",
    "losses_dominate",
    "objective_names",
    "rank_by_fronts",
    "recorded_metrics",
    "running_front_sizes",
    "trials_frame",
]


def objective_names(study: optuna.Study) -> list[str]:
    """The metrics the study optimises, in the order of its values."""
    return list(study.metric_names or [f"objective{i}" for i in range(len(study.directions))])


def is_feasible(trial: FrozenTrial) -> bool:
    """Within every constraint set with ``Trial.set_constraint`` (values <= 0), as Optuna decides."""
    return all(v <= 0 for v in trial.constraints.values())


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Objective values ``a`` are no worse than ``b`` in every objective and better in one.

    ``directions`` holds "maximize" or "minimize" per objective, as in
    ``ReportData.directions``. Equal vectors do not dominate each other.
    """
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    return losses_dominate([s * x for s, x in zip(signs, a)], [s * y for s, y in zip(signs, b)])


def losses_dominate(a: Sequence[float], b: Sequence[float]) -> bool:
    """Losses ``a`` (every objective minimised) are no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def rank_by_fronts(trials: Iterable[FrozenTrial], directions: Sequence[str]) -> list[tuple[int, FrozenTrial]]:
    """(non-dominated rank, trial) for every trial with values, best first.

    Rank 1 is the Pareto front, rank 2 the front of the rest, and so on; within
    a rank by the quality objective (the first maximised one), best first, then
    by trial number.
    """
    quality = next((i for i, d in enumerate(directions) if d == "maximize"), 0)
    sign = -1.0 if directions[quality] == "maximize" else 1.0
    remaining = [t for t in trials if t.values]
    ranked: list[tuple[int, FrozenTrial]] = []
    rank = 0
    while remaining:
        rank += 1
        front = [t for t in remaining if not any(dominates(o.values, t.values, directions) for o in remaining)]
        front.sort(key=lambda t: (sign * t.values[quality], t.number))
        ranked += [(rank, t) for t in front]
        taken = {t.number for t in front}
        remaining = [t for t in remaining if t.number not in taken]
    return ranked


def hypervolume_2d(losses: Iterable[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area of the plane that points dominate, both coordinates minimised, bounded by ``reference``.

    Points at or beyond the reference in either coordinate add nothing.
    """
    inside = sorted(p for p in losses if p[0] < reference[0] and p[1] < reference[1])
    area, lowest = 0.0, reference[1]
    for i, (x, y) in enumerate(inside):  # sweep along x: each strip up to the next point, below the best y so far
        lowest = min(lowest, y)
        right = inside[i + 1][0] if i + 1 < len(inside) else reference[0]
        area += (right - x) * (reference[1] - lowest)
    return area


def running_front_sizes(values: Iterable[Sequence[float] | None], directions: Sequence[str]) -> list[int]:
    """The size of the Pareto front among the value vectors so far, after each one.

    ``None`` stands for a trial that cannot join the front (unfinished or
    infeasible); the size after it is the size before. Counts like
    ``Study.best_trials``: equal vectors share the front.
    """
    front: list[Sequence[float]] = []
    sizes = []
    for candidate in values:
        if candidate is not None and not any(dominates(f, candidate, directions) for f in front):
            front = [f for f in front if not dominates(candidate, f, directions)] + [candidate]
        sizes.append(len(front))
    return sizes


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible completed trials that no other trial dominates, by trial number.

    Optuna's ``best_trials`` applies the constraints set with
    ``Trial.set_constraint``, so rejected architectures never enter the front.
    """
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    return sorted(study.best_trials, key=lambda t: t.number)


def recorded_metrics(record: TrialRecord, objectives: Sequence[str]) -> dict[str, float | None]:
    """The record's value of every metric of the table that is not among ``objectives``."""
    return {m.name: record.value(m) for m in METRICS.values() if m.name not in objectives}


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, outcome, objectives, the other metrics, reason, front membership."""
    names = objective_names(study)
    on_front = {t.number for t in front_trials(study)}
    rows = []
    for trial in study.get_trials(deepcopy=False):
        record = TrialRecord.load(trial)
        values = trial.values if trial.values is not None else [None] * len(names)
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "outcome": record.outcome.value,
                **dict(zip(names, values)),
                **recorded_metrics(record, names),
                "epochs": record.epochs_run,
                "train_s": record.train_seconds,
                "feasible": is_feasible(trial),
                "front": trial.number in on_front,
                "architecture": describe_architecture(record.architecture) if record.architecture else None,
                "reason": record.reason,
            }
        )
    return pd.DataFrame(rows)
