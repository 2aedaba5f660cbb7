"""Progress of a search: distinct architectures evaluated, best accuracy, front size, ETA.

On a terminal it is a tqdm bar with those figures as its postfix; elsewhere
(CI, a log file) one plain line per finished trial. A trial that copied an
evaluated architecture is listed but does not advance the count
(``search.execution.distinct``).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from evaluation.metrics import format_metric, metric_label
from search.execution.distinct import holds_budget_slot
from search.pareto import objective_names, quality_index, ranked_trials, study_directions
from search.storage.records import TrialRecord

__all__ = ["Progress", "format_duration"]


class Progress:
    """An Optuna callback that reports after each trial of this run."""

    def __init__(self, *, total: int, done: int, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr  # looked up now, so redirection after import is honoured
        self.total, self.done, self.stream = total, done, stream
        self.started = time.monotonic()
        self.counted_here = 0
        self.bar = (
            tqdm(total=total, initial=done, unit="trial", file=stream, dynamic_ncols=True) if stream.isatty() else None
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and holds_budget_slot(trial):
            self.done += 1
            self.counted_here += 1
        summary = self._summary(study)
        if self.bar is not None:
            self.bar.update(self.done - self.bar.n)
            self.bar.set_postfix_str(summary)
        else:
            record = TrialRecord.load(trial)
            values = ", ".join(
                f"{metric_label(name)} {format_metric(name, value)}"
                for name, value in zip(objective_names(study), trial.values or [])
            )
            detail = f" ({record.reason})" if record.reason else ""
            print(
                f"trial {trial.number} {record.outcome}{detail}: {values or trial.state.name.lower()}"
                f" [{self.done}/{self.total}] {summary}",
                file=self.stream,
                flush=True,
            )

    def note(self, line: str) -> None:
        """A line that is no trial's (the sampler converged, the run stopped early), above the bar on a terminal."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _summary(self, study: optuna.Study) -> str:
        # The front and the best trial by search.pareto's rule, as show and export rank: one
        # trial per architecture, so a duplicate (values copied) is not counted again.
        names = objective_names(study)
        ranked = ranked_trials(study)
        parts = [f"front {sum(r.rank == 1 for r in ranked)}"]
        quality = quality_index(study_directions(study))
        if ranked:
            best = ranked[0].trial.values[quality]
            parts.insert(0, f"best {metric_label(names[quality])} {format_metric(names[quality], best)}")
        remaining = self.total - self.done
        if self.counted_here and remaining > 0:
            # Per architecture evaluated: the copies between two are part of what one costs.
            per_trial = (time.monotonic() - self.started) / self.counted_here
            parts.append(f"ETA {format_duration(per_trial * remaining)}")
        return ", ".join(parts)


def format_duration(seconds: float) -> str:
    """12 -> '12s', 125 -> '2m05s', 7500 -> '2h05m' (a full training of many models takes hours)."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
