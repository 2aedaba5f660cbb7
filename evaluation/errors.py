"""The toolkit's exceptions: one root, one subclass per kind of mistake.

Like ``optuna.exceptions``: everything a user can get wrong (an architecture,
a data set, a training setting, a space file, a command) raises a subclass of
``ToolkitError``, so the command line catches one type and prints one line.
The root lives here, in the lowest package, because ``spaces`` and ``search``
both build on ``evaluation``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ArchitectureError",
    "ConfigError",
    "DataError",
    "DiskFullError",
    "ExportError",
    "ToolkitError",
    "differences",
    "show",
]

# Values from a user's file may be huge (an integer of 5000 digits, a list
# expanded by YAML aliases): messages show a bounded repr of them, on one line.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 60, 60
_LONGEST = 100


class ToolkitError(Exception):
    """The root of every error that reports a user's mistake rather than a bug."""


class ArchitectureError(ToolkitError, ValueError):
    """An architecture that is malformed, or cannot be built for its input."""


class DataError(ToolkitError):
    """A dataset that is unknown or cannot be found; the message says how to get it."""


class ConfigError(ToolkitError, ValueError):
    """A training setting out of its range (``TrainConfig``)."""


class ExportError(ToolkitError):
    """An export setting out of its range, or an exported file that does not reproduce the model."""


class DiskFullError(ToolkitError, OSError):
    """A file could not be written for want of room: the disk or a quota is full, or a file
    size limit is reached. Made as ``OSError(errno, strerror, filename)`` and still one, so
    code that handles a failed write keeps doing so; its message names the file."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}; it is left as it was (make room and run again)"


def show(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters, for error messages about a user's value."""
    text = _REPR.repr(value)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


def differences(kept: Mapping[str, Any], asked: Mapping[str, Any], keys: Iterable[str] | None = None) -> list[str]:
    """``key kept (asked new)`` for each of ``keys`` (default: all of ``asked``) whose value differs.

    The phrases of a refusal to resume or reuse work saved with other settings,
    so every such message names each differing setting the same way.
    """
    return [
        f"{key} {show(kept.get(key))} (asked {show(asked.get(key))})"
        for key in (asked if keys is None else keys)
        if kept.get(key) != asked.get(key)
    ]
