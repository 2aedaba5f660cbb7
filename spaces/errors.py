"""The exception of ``spaces``, under the toolkit's root ``ToolkitError``."""

from __future__ import annotations

from evaluation.errors import ToolkitError

__all__ = ["SpaceError"]


class SpaceError(ToolkitError):
    """A space file, or an architecture asked of a space, that does not fit.

    Messages read ``<file>: <key.path>: <rule and value>`` so that the CLI can
    print them as its one-line error.
    """
