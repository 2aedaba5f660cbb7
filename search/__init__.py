"""Architecture search: Optuna studies over the spaces of ``spaces``, evaluated
by ``evaluation``; a library first (``run_search``), and the ``python -m search``
command line as a thin layer over it."""

from search.errors import SearchInterrupted, UsageError
from search.run import RunPlan, run_search

__all__ = ["RunPlan", "SearchInterrupted", "UsageError", "run_search"]
