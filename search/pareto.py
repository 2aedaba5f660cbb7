"""The Pareto front and the trials of a study, as data (drawing is elsewhere)."""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from search.records import TrialRecord, describe_architecture

__all__ = ["front_trials", "objective_names", "trials_frame"]


def objective_names(study: optuna.Study) -> list[str]:
    """The metrics the study optimises, in the order of its values."""
    return list(study.metric_names or [f"objective{i}" for i in range(len(study.directions))])


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible completed trials that no other trial dominates, by trial number.

    Optuna's ``best_trials`` applies the constraints set with
    ``Trial.set_constraint``, so rejected architectures never enter the front.
    """
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    return sorted(study.best_trials, key=lambda t: t.number)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, outcome, objectives, costs, reason, front membership."""
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
                "outcome": record.outcome,
                **dict(zip(names, values)),
                "params": record.params,
                "macs": record.macs,
                "latency_ms": record.latency_ms,
                "epochs": record.epochs_run,
                "train_s": record.train_seconds,
                "feasible": all(v <= 0 for v in trial.constraints.values()),
                "front": trial.number in on_front,
                "architecture": describe_architecture(record.architecture) if record.architecture else None,
                "reason": record.reason,
            }
        )
    return pd.DataFrame(rows)
