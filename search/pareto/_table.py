"""A study's trials as one table, with their rank by the rule: what ``search show`` and ``search export`` write.

Its columns do not depend on the study, so a script can read any study's
table by name: the trial, the objectives of a study made elsewhere (names
outside the metric table), every metric of the table (``evaluation.metrics``;
an objective's value from Optuna, the others and those of a trial Optuna has
no values for from the trial's record), then ``TRIAL_COLUMNS``. Values are raw numbers; one that is missing or not finite
(a cost that was not measured, told to Optuna as the metric's worst) is
missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
import pandas as pd

from evaluation.metrics import METRICS
from search.pareto._study import RankedTrial, is_feasible, objective_names, ranked_trials
from search.storage.records import TrialRecord, describe_architecture

__all__ = ["TRIAL_COLUMNS", "front_frame", "recorded_metrics", "trials_frame"]

# After the metrics: epochs trained, training seconds, within every constraint,
# the non-dominated rank (missing for a trial that is no candidate), on the front.
TRIAL_COLUMNS = ("epochs", "train_s", "feasible", "rank", "front", "architecture", "reason")


def recorded_metrics(record: TrialRecord, objectives: Sequence[str]) -> dict[str, float | None]:
    """The record's value of every metric of the table that is not among ``objectives``."""
    return {m.name: record.value(m) for m in METRICS.values() if m.name not in objectives}


def _recorded(record: TrialRecord, name: str) -> float | None:
    """The record's value of a metric: a pruned or failed trial's MACs are known, its accuracy is not."""
    return record.value(METRICS[name]) if name in METRICS else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def trials_frame(study: optuna.Study, ranked: Sequence[RankedTrial] | None = None) -> pd.DataFrame:
    """One row per trial, by number, with the columns of the module's doc.

    ``ranked``: ``ranked_trials(study)`` when the caller has it already.
    """
    names = objective_names(study)
    foreign = [name for name in names if name not in METRICS]
    columns = ["number", "state", "outcome", *foreign, *METRICS, *TRIAL_COLUMNS]
    rank = {r.trial.number: r.rank for r in (ranked_trials(study) if ranked is None else ranked)}
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        record = TrialRecord.load(trial)
        values = trial.values if trial.values is not None else [_recorded(record, name) for name in names]
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "outcome": record.outcome.value,
                **recorded_metrics(record, names),
                **{name: _finite(value) for name, value in zip(names, values)},
                "epochs": record.epochs_run,
                "train_s": record.train_seconds,
                "feasible": is_feasible(trial),
                "rank": rank.get(trial.number),
                "front": rank.get(trial.number) == 1,
                "architecture": describe_architecture(record.architecture) if record.architecture else None,
                "reason": record.reason,
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    frame["rank"] = frame["rank"].astype("Int64")  # a whole number, missing for trials that are no candidate
    return frame


def front_frame(frame: pd.DataFrame, ranked: Sequence[RankedTrial]) -> pd.DataFrame:
    """The front's rows of ``frame``, best first by the rule (``ranked``): row K is ``search export``'s best-K."""
    order = [r.trial.number for r in ranked if r.rank == 1]
    return frame.set_index("number", drop=False).loc[order].reset_index(drop=True)
