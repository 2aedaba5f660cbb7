"""The ask-and-tell loop of a search, with Ctrl-C that loses nothing.

``study.optimize`` leaves a trial RUNNING in the storage when Ctrl-C lands
between its steps (while a trial is being created, say). Here SIGINT only
interrupts the objective itself; anywhere else it is noted and the loop stops
after the step at hand, so every trial this process started ends COMPLETE,
PRUNED or FAIL, and the interrupted one says why.

Several such loops may share one study (workers, machines): the budget is the
study's, each running trial holds a lease (``search.storage.leases``), and trials of
workers that died are failed before each ``ask``.
"""

from __future__ import annotations

import gc
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from types import FrameType

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.storage.leases import KeepAlive, LeasePolicy, fail_stale
from search.storage.records import TrialOutcome, TrialRecord

__all__ = ["GIVEN_BACK", "is_given_back", "run_trials"]

INTERRUPTED = "interrupted by Ctrl-C"
GIVEN_BACK = "slot given back"
# Trials that hold a budget slot: finished, running, or queued to run.
_LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


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
    trials: int,
    timeout: float | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    lease: LeasePolicy | None = None,
    poll_seconds: float = 1.0,
) -> bool:
    """Run trials until the study holds ``trials`` finished ones (complete or pruned),
    counting every worker and every earlier run; none starts after ``timeout`` seconds.

    A worker does not start a trial while finished plus running trials reach
    the budget; it waits instead, since a running one may still fail (its
    worker dies, its lease expires) and leave a slot. Two workers may ask at
    the same moment, so after ``ask`` a trial counts the live trials numbered
    below it and gives its slot back (FAIL, reason ``GIVEN_BACK``) when they
    already fill the budget: the lowest numbers keep the slots, and the budget
    is met exactly. An exception in the objective fails that trial and the
    loop goes on (the objective records the reason). Returns True when Ctrl-C
    stopped the loop.
    """
    lease = lease or LeasePolicy()
    interrupt = _Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
    started = time.monotonic()
    try:
        while not interrupt.requested and (timeout is None or time.monotonic() - started <= timeout):
            fail_stale(study, lease)
            finished, running = _count(study)
            if finished >= trials:
                break
            if finished + running >= trials:
                time.sleep(poll_seconds)
                continue
            trial = _ask(study)
            if _ahead_of(study, trial) >= trials:
                _give_back(study, trial, trials)
                continue
            with KeepAlive(study, trial, lease):
                state, values = _evaluate(objective, trial, interrupt)
            # skip_if_finished: another worker may have failed it as stale meanwhile.
            frozen = study.tell(trial, values, state=state, skip_if_finished=True)
            gc.collect()  # free the trial's model before the next one is built
            if on_trial is not None:
                on_trial(study, frozen)
    finally:
        signal.signal(signal.SIGINT, previous)
    return interrupt.requested


def _ask(study: optuna.Study) -> optuna.Trial:
    """``study.ask``, without Optuna's warning that heartbeats are meant for ``optimize``: this loop beats itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        return study.ask()


def is_given_back(trial: FrozenTrial) -> bool:
    """A trial failed only to give its budget slot back: it never ran, so no one reports it."""
    return str(trial.user_attrs.get("reason", "")).startswith(GIVEN_BACK)


def _count(study: optuna.Study) -> tuple[int, int]:
    """Finished (complete or pruned) and running trials of the whole study."""
    states = [t.state for t in study.get_trials(deepcopy=False, states=_LIVE[:3])]
    return len(states) - states.count(TrialState.RUNNING), states.count(TrialState.RUNNING)


def _ahead_of(study: optuna.Study, trial: optuna.Trial) -> int:
    """Trials numbered below ``trial`` that are finished or may still finish."""
    return sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=_LIVE))


def _give_back(study: optuna.Study, trial: optuna.Trial, trials: int) -> None:
    """Fail a fresh trial that the budget has no slot for; an enqueued architecture is queued again."""
    reason = f"{GIVEN_BACK}: trials numbered below it already fill the budget of {trials}"
    TrialRecord.save_outcome(trial, TrialOutcome.FAILED, reason)
    fixed = study._storage.get_trial(trial._trial_id).system_attrs.get("fixed_params")
    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    if fixed:
        study.enqueue_trial(fixed)


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
