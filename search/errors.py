"""The exceptions of ``search``: ``UsageError`` under the toolkit's root
``ToolkitError``, and ``SearchInterrupted`` for a run stopped by Ctrl-C."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evaluation.errors import ToolkitError

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchInterrupted", "UsageError"]


class UsageError(ToolkitError):
    """A mistake in what the user asked for; the CLI prints it as one line and exits 2."""


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``run_search`` cleanly: every trial it started is finished.

    A KeyboardInterrupt, so code that does not expect it stops as on any
    Ctrl-C; ``study`` is the interrupted study, which the next run resumes.
    """

    def __init__(self, study: optuna.Study) -> None:
        super().__init__(f"search of study {study.study_name!r} interrupted; finished trials are kept")
        self.study = study
