"""Architecture search: Optuna studies over the spaces of ``spaces``, evaluated
by ``evaluation``; a library first (``run_search`` and the objects it takes),
and the ``python -m search`` command line as a thin layer over it."""

from search.errors import SearchInterrupted, Terminated, UsageError
from search.execution.plan import Budget, DataSpec, StudySpec, Workers
from search.execution.screening import Screening
from search.pruners import Pruning
from search.run import RunPlan, run_search
from search.samplers import SamplerSpec
from search.storage.leases import LeasePolicy

__all__ = [
    "Budget",
    "DataSpec",
    "LeasePolicy",
    "Pruning",
    "RunPlan",
    "SamplerSpec",
    "Screening",
    "SearchInterrupted",
    "StudySpec",
    "Terminated",
    "UsageError",
    "Workers",
    "run_search",
]
