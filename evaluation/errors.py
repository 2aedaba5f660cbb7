"""The toolkit's exceptions: one root, one subclass per kind of mistake.

Like ``optuna.exceptions``: everything a user can get wrong (an architecture,
a data set, a training setting, a space file, a command) raises a subclass of
``ToolkitError``, so the command line catches one type and prints one line.
The root lives here, in the lowest package, because ``spaces`` and ``search``
both build on ``evaluation``.
"""

from __future__ import annotations

__all__ = ["ArchitectureError", "ConfigError", "DataError", "ToolkitError"]


class ToolkitError(Exception):
    """The root of every error that reports a user's mistake rather than a bug."""


class ArchitectureError(ToolkitError, ValueError):
    """An architecture that is malformed, or cannot be built for its input."""


class DataError(ToolkitError):
    """A dataset that is unknown or cannot be found; the message says how to get it."""


class ConfigError(ToolkitError, ValueError):
    """A training setting out of its range (``TrainConfig``)."""
