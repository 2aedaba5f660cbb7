"""Running trials: the ask-and-tell loop, worker processes, one trial's objective, and screening."""

from search.execution.objective import TrialObjective
from search.execution.runner import run_trials
from search.execution.screening import screen_trial
from search.execution.workers import run_workers

__all__ = ["TrialObjective", "run_trials", "run_workers", "screen_trial"]
