"""Timing against a baseline taken in the same test.

This machine is shared and its speed swings 2x from one minute to the next, so
a test never compares a duration with a fixed number of seconds: it times a
reference in the same process (the same operation on a trivially small input,
or a pass the measured one should cost about as much as) and bounds the ratio,
with both numbers in the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["cpu_seconds"]


def cpu_seconds(run: Callable[[], object], *, rounds: int = 3) -> float:
    """CPU seconds of the cheapest of ``rounds`` calls of ``run``.

    CPU time, not wall time: on a shared CPU it is what the work costs, not how
    long it waited for the CPU. The cheapest call leaves out one-off set-up
    (lazy imports, first-use caches) and the odd slow round.
    """
    times = []
    for _ in range(rounds):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)
