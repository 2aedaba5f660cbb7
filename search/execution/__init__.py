"""Running trials: the plan of a run, the one worker function and its processes, the
ask-and-tell loop, one trial's objective, screening, and stopping on Ctrl-C or SIGTERM."""

from search.execution.objective import TrialObjective
from search.execution.plan import Budget, DataSpec, SearchPlan, StudySpec, Workers
from search.execution.runner import run_trials
from search.execution.screening import Screening, screen_trial
from search.execution.workers import run_worker, run_workers

__all__ = [
    "Budget",
    "DataSpec",
    "Screening",
    "SearchPlan",
    "StudySpec",
    "TrialObjective",
    "Workers",
    "run_trials",
    "run_worker",
    "run_workers",
    "screen_trial",
]
