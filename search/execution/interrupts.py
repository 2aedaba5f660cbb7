"""Ctrl-C and SIGTERM as requests to stop, handled alike.

SIGTERM is what Slurm and Kubernetes send before they kill a job; by default
it ends a Python process at once, in the middle of whatever it writes. Here it
is a request to stop like Ctrl-C: ``sigterm_as_interrupt`` makes it raise
``Terminated`` (a KeyboardInterrupt) wherever Ctrl-C would raise, and a loop
that must not be cut anywhere (``search.execution.runner``) takes both signals
with a ``StopRequest``, which raises only while the work at hand may be cut.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

from search.errors import Terminated

__all__ = ["STOP_SIGNALS", "StopRequest", "interrupt_for", "sigterm_as_interrupt"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def interrupt_for(signum: int) -> KeyboardInterrupt:
    """The exception a stop by ``signum`` raises: ``Terminated`` for SIGTERM, KeyboardInterrupt for Ctrl-C."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``Terminated`` where Ctrl-C raises KeyboardInterrupt.

    Must run in the main thread, as every signal handler (``signal.signal``).
    """
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequest:
    """The handler of SIGINT and SIGTERM while a loop runs (a context manager that installs it).

    A signal is recorded (``signum``; SIGTERM outranks Ctrl-C) and raises
    only while ``interruptible``, once: a second signal while the first is
    being handled, as when a job's every process gets SIGTERM and the parent
    forwards it too, is only noted.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.interruptible = False
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signum != signal.SIGTERM:
            self.signum = signum
        if self.interruptible:
            self.interruptible = False
            raise interrupt_for(signum)

    def __enter__(self) -> StopRequest:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
