"""The ask-and-tell loop of a search, with Ctrl-C that loses nothing.

``study.optimize`` leaves a trial RUNNING in the storage when Ctrl-C lands
between its steps (while a trial is being created, say). Here SIGINT only
interrupts the objective itself; anywhere else it is noted and the loop stops
after the step at hand, so every trial this process started ends COMPLETE,
PRUNED or FAIL, and the interrupted one says why.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable, Sequence
from types import FrameType

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.records import TrialOutcome, TrialRecord

__all__ = ["run_trials"]

INTERRUPTED = "interrupted by Ctrl-C"


class _Interrupt:
    """SIGINT handler: raises only while the objective runs, else records the request."""

    def __init__(self) -> None:
        self.requested = False
        self.interruptible = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.interruptible:
            raise KeyboardInterrupt


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Sequence[float]],
    *,
    n_trials: int,
    timeout: float | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> bool:
    """Run up to ``n_trials`` trials (none started after ``timeout`` seconds).

    An exception in the objective fails that trial and the loop goes on (the
    objective records the reason). Returns True when Ctrl-C stopped the loop.
    """
    interrupt = _Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
    started = time.monotonic()
    try:
        for _ in range(n_trials):
            if interrupt.requested or (timeout is not None and time.monotonic() - started > timeout):
                break
            trial = study.ask()
            state, values = _evaluate(objective, trial, interrupt)
            frozen = study.tell(trial, values, state=state)
            gc.collect()  # free the trial's model before the next one is built
            if on_trial is not None:
                on_trial(study, frozen)
    finally:
        signal.signal(signal.SIGINT, previous)
    return interrupt.requested


def _evaluate(
    objective: Callable[[optuna.Trial], Sequence[float]], trial: optuna.Trial, interrupt: _Interrupt
) -> tuple[TrialState, Sequence[float] | None]:
    if interrupt.requested:  # Ctrl-C while the trial was being created
        TrialRecord.save_outcome(trial, TrialOutcome.FAILED, INTERRUPTED)
        return TrialState.FAIL, None
    interrupt.interruptible = True
    try:
        return TrialState.COMPLETE, objective(trial)
    except optuna.TrialPruned:
        return TrialState.PRUNED, None
    except KeyboardInterrupt:
        interrupt.interruptible = False
        TrialRecord.save_outcome(trial, TrialOutcome.FAILED, INTERRUPTED)
        return TrialState.FAIL, None
    except Exception:  # noqa: BLE001 - the objective recorded the reason on the trial
        return TrialState.FAIL, None
    finally:
        interrupt.interruptible = False
