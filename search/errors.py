"""The exceptions of ``search``: ``UsageError`` under the toolkit's root ``ToolkitError``;
``Terminated`` and ``SearchInterrupted`` for work stopped by Ctrl-C or SIGTERM.

SIGTERM is what Slurm and Kubernetes send before they kill a job. It is
handled as Ctrl-C is: ``Terminated`` is a ``KeyboardInterrupt``, so code that
cleans up after Ctrl-C does the same for it, and the command line exits with
``exit_code_of`` (130 for Ctrl-C, 143 for SIGTERM: 128 plus the signal's
number, as a shell reports a process the signal killed).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from evaluation.errors import ToolkitError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "INTERRUPTED_EXIT",
    "TERMINATED_EXIT",
    "SearchInterrupted",
    "Terminated",
    "UsageError",
    "exit_code_of",
]

INTERRUPTED_EXIT = 128 + signal.SIGINT  # 130
TERMINATED_EXIT = 128 + signal.SIGTERM  # 143


class UsageError(ToolkitError):
    """A mistake in what the user asked for; the CLI prints it as one line and exits 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised where Ctrl-C's KeyboardInterrupt would be."""

    exit_code = TERMINATED_EXIT

    def __init__(self) -> None:
        super().__init__("terminated by SIGTERM")


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped ``run_search`` cleanly: every trial it started is finished.

    A KeyboardInterrupt, so code that does not expect it stops as on any
    Ctrl-C; ``study`` is the interrupted study, which the next run resumes,
    and ``signal`` the signal that stopped it.
    """

    def __init__(self, study: optuna.Study, *, signum: int = signal.SIGINT) -> None:
        by = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        super().__init__(f"search of study {study.study_name!r} stopped by {by}; finished trials are kept")
        self.study = study
        self.signal = signal.Signals(signum)
        self.exit_code = 128 + int(signum)


def exit_code_of(stop: KeyboardInterrupt) -> int:
    """The command line's exit status after ``stop``: 143 after SIGTERM, 130 after Ctrl-C."""
    return int(getattr(stop, "exit_code", INTERRUPTED_EXIT))
