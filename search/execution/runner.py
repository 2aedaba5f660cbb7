"""The ask-and-tell loop of a search, with Ctrl-C and SIGTERM that lose nothing.

``study.optimize`` leaves a trial RUNNING in the storage when Ctrl-C lands
between its steps (while a trial is being created, say). Here SIGINT and
SIGTERM only interrupt the objective itself; anywhere else they are noted and
the loop stops after the step at hand, so every trial this process started
ends COMPLETE, PRUNED or FAIL, and the interrupted one says why. A trial cut
by SIGTERM (a scheduler taking the machine back, not a user changing their
mind) has its parameters queued again, so the next start trains them.

Several such loops may share one study (workers, machines): the budget is the
study's, each running trial holds a lease (``search.storage.leases``), and trials of
workers that died are failed before each ``ask``. The budget counts distinct
architectures (``search.execution.distinct``): a trial that copies an evaluated
one holds no slot, and a sampler that only repeats itself is helped out or stopped.
"""

from __future__ import annotations

import gc
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.execution.distinct import STOPPED_ATTR, Exploration, holds_budget_slot
from search.execution.interrupts import StopRequest
from search.storage._optuna import fixed_params
from search.storage.leases import KeepAlive, LeasePolicy, fail_stale
from search.storage.records import TrialOutcome, TrialRecord

__all__ = ["GIVEN_BACK", "INTERRUPTED", "REQUEUED_FROM", "TERMINATED", "is_given_back", "run_trials"]

INTERRUPTED = "interrupted by Ctrl-C"
TERMINATED = "terminated by SIGTERM"
GIVEN_BACK = "slot given back"
REQUEUED_FROM = "requeued_from"  # user attribute of a trial queued again: the number of the terminated one
# Trials that hold a budget slot: finished, running, or queued to run.
_LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Sequence[float]],
    *,
    trials: int,
    timeout: float | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    lease: LeasePolicy | None = None,
    poll_seconds: float = 1.0,
    exploration: Exploration | None = None,
) -> signal.Signals | None:
    """Run trials until the study holds ``trials`` finished ones (complete or pruned) that
    count (``search.execution.distinct.holds_budget_slot``: not copies of an evaluated
    architecture), counting every worker and every earlier run; none starts after
    ``timeout`` seconds.

    A worker does not start a trial while counted plus running trials reach
    the budget; it waits instead, since a running one may still fail (its
    worker dies, its lease expires) or turn out to be a copy, and leave a slot.
    Two workers may ask at the same moment, so after ``ask`` a trial counts the
    live trials numbered below it that may hold a slot and gives its slot back
    (FAIL, reason ``GIVEN_BACK``) when they already fill the budget: the lowest
    numbers keep the slots, and the budget is met exactly. An exception in the
    objective fails that trial and the loop goes on (the objective records the
    reason).

    ``exploration``: this process's watch over repeated proposals; after enough
    in a row, a trial explores a random architecture instead, and the loop
    stops early (the reason stored on the study, ``STOPPED_ATTR``) when the
    space is exhausted or exploring adds nothing. None asks the sampler only.
    Returns the signal that stopped the loop (SIGINT for Ctrl-C, or SIGTERM),
    None when it ran to its end.
    """
    lease = lease or LeasePolicy()
    started = time.monotonic()
    with StopRequest() as stop:
        while not stop.requested and (timeout is None or time.monotonic() - started <= timeout):
            fail_stale(study, lease)
            finished, running = _count(study)
            if finished >= trials:
                break
            if finished + running >= trials:
                time.sleep(poll_seconds)
                continue
            explore, reason = _exploring(study, exploration)
            if reason is not None:
                study.set_user_attr(STOPPED_ATTR, reason)
                break
            trial = _ask(study)
            if _ahead_of(study, trial) >= trials:
                _give_back(study, trial, trials)
                continue
            if explore is not None and exploration is not None and not fixed_params(trial):
                exploration.fix(trial, explore)  # a queued or retried trial keeps its own parameters
            with KeepAlive(study, trial, lease):
                state, values = _evaluate(objective, trial, stop)
            # skip_if_finished: another worker may have failed it as stale meanwhile.
            frozen = study.tell(trial, values, state=state, skip_if_finished=True)
            _requeue_if_terminated(study, frozen)
            if exploration is not None:
                exploration.after(frozen)
            gc.collect()  # free the trial's model before the next one is built
            if on_trial is not None:
                on_trial(study, frozen)
    return None if stop.signum is None else signal.Signals(stop.signum)


def _exploring(study: optuna.Study, exploration: Exploration | None) -> tuple[dict[str, Any] | None, str | None]:
    """The parameters the next trial explores (None: ask the sampler), or why the loop must stop."""
    if exploration is None:
        return None, None
    reason = exploration.stop(study)
    if reason is not None or not exploration.due:
        return None, reason
    params = exploration.propose(study)
    return params, None if params is not None else exploration.exhausted()


def _ask(study: optuna.Study) -> optuna.Trial:
    """``study.ask``, without Optuna's warning that heartbeats are meant for ``optimize``: this loop beats itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        return study.ask()


def is_given_back(trial: FrozenTrial) -> bool:
    """A trial failed only to give its budget slot back: it never ran, so no one reports it."""
    return str(trial.user_attrs.get("reason", "")).startswith(GIVEN_BACK)


def _count(study: optuna.Study) -> tuple[int, int]:
    """Finished trials of the whole study that count toward the budget, and running trials."""
    trials = study.get_trials(deepcopy=False, states=_LIVE[:3])
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return sum(t.state != TrialState.RUNNING and holds_budget_slot(t) for t in trials), running


def _ahead_of(study: optuna.Study, trial: optuna.Trial) -> int:
    """Trials numbered below ``trial`` that hold a budget slot or may still take one (a running
    trial's outcome is set when it ends, so one that turns out a copy counts until then)."""
    return sum(t.number < trial.number and holds_budget_slot(t) for t in study.get_trials(deepcopy=False, states=_LIVE))


def _give_back(study: optuna.Study, trial: optuna.Trial, trials: int) -> None:
    """Fail a fresh trial that the budget has no slot for; an enqueued architecture is queued again."""
    reason = f"{GIVEN_BACK}: trials numbered below it already fill the budget of {trials}"
    TrialRecord.save_outcome(trial, TrialOutcome.FAILED, reason)
    fixed = fixed_params(trial)
    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    if fixed:
        study.enqueue_trial(fixed)


def _requeue_if_terminated(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue the parameters of a trial SIGTERM cut mid-run again, once, so the next start trains them.

    Only a trial that had sampled its whole architecture (its ``architecture_key``
    is recorded) is queued: one cut before has nothing worth keeping.
    """
    if trial.user_attrs.get("reason") == TERMINATED and "architecture_key" in trial.user_attrs and trial.params:
        study.enqueue_trial(trial.params, user_attrs={REQUEUED_FROM: trial.number})


def _evaluate(
    objective: Callable[[optuna.Trial], Sequence[float]], trial: optuna.Trial, stop: StopRequest
) -> tuple[TrialState, Sequence[float] | None]:
    if stop.requested:  # Ctrl-C or SIGTERM while the trial was being created
        TrialRecord.save_outcome(trial, TrialOutcome.FAILED, _stop_reason(stop))
        return TrialState.FAIL, None
    stop.interruptible = True
    try:
        return TrialState.COMPLETE, objective(trial)
    except optuna.TrialPruned:
        return TrialState.PRUNED, None
    except KeyboardInterrupt:
        stop.interruptible = False
        TrialRecord.save_outcome(trial, TrialOutcome.FAILED, _stop_reason(stop))
        return TrialState.FAIL, None
    except Exception:  # noqa: BLE001 - the objective recorded the reason on the trial
        return TrialState.FAIL, None
    finally:
        stop.interruptible = False


def _stop_reason(stop: StopRequest) -> str:
    return TERMINATED if stop.signum == signal.SIGTERM else INTERRUPTED
