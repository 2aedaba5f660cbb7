"""The exception of ``search``, under the toolkit's root ``ToolkitError``."""

from __future__ import annotations

from evaluation.errors import ToolkitError

__all__ = ["UsageError"]


class UsageError(ToolkitError):
    """A mistake in what the user asked for; the CLI prints it as one line and exits 2."""
