"""The root exception of ``spaces``."""

from __future__ import annotations

__all__ = ["SpaceError"]


class SpaceError(Exception):
    """A space file, or an architecture asked of a space, that does not fit.

    Messages read ``<file>: <key.path>: <rule and value>`` so that the CLI can
    print them as its one-line error.
    """
