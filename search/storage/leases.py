"""Leases on running trials: a heartbeat while a trial runs, and failing the trials whose worker died.

A worker killed with SIGKILL (or a machine that lost power) leaves its trial
RUNNING forever: nothing tells the storage. RDB storages (PostgreSQL, SQLite)
have Optuna's heartbeat: the worker records one every ``heartbeat_interval``
seconds and ``optuna.storages.fail_stale_trials`` fails trials whose last one
is older than ``grace_period``. Our loop is ask-and-tell, so it beats itself,
as ``optuna/study/_optimize.py`` does around ``study.optimize``'s objective.
The journal storage has no heartbeat, so there the lease is the user attribute
``heartbeat`` (Unix time of the last beat) and ``fail_stale`` fails expired
leases itself, recording the reason. Either way a failed stale trial may be
re-queued (``retry_failed``, Optuna's RetryHeartbeatStaleTrialCallback).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from types import TracebackType

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from search.errors import UsageError
from search.storage._optuna import heartbeat_interval, live_trial, record_heartbeat, set_trial_state, stored_trial
from search.storage.records import TrialOutcome, TrialRecord

__all__ = ["HEARTBEAT_ATTR", "WORKER_ATTR", "KeepAlive", "LeasePolicy", "fail_stale", "last_beat", "worker_name"]

HEARTBEAT_ATTR = "heartbeat"  # Unix time of the last beat of a running trial (journal storage)
WORKER_ATTR = "worker"  # host:pid of the process that runs the trial


@dataclass(frozen=True)
class LeasePolicy:
    """How often a running trial beats, how long without a beat makes it stale, and retries.

    The defaults follow Optuna's advice of a grace period several heartbeats
    long, so a busy worker is never taken for a dead one. An impossible policy
    is refused when made (``UsageError``).
    """

    heartbeat_interval: int = 10
    grace_period: int = 60
    retry_failed: int = 0

    def __post_init__(self) -> None:
        if self.heartbeat_interval < 1:
            raise UsageError(f"heartbeat_interval must be >= 1 s, got {self.heartbeat_interval}")
        if self.grace_period <= self.heartbeat_interval:
            raise UsageError(
                f"grace_period must be longer than heartbeat_interval ({self.heartbeat_interval} s), "
                f"got {self.grace_period}"
            )
        if self.retry_failed < 0:
            raise UsageError(f"retry_failed must be >= 0, got {self.retry_failed}")


def worker_name() -> str:
    """Who runs a trial, recorded on it: the host and the process id (what to kill, or look for)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def has_optuna_heartbeat(study: optuna.Study) -> bool:
    """Whether the study's storage beats itself (an RDB storage made with a heartbeat interval)."""
    return heartbeat_interval(study) is not None


class KeepAlive:
    """A thread that beats for one running trial until the block it guards ends."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, policy: LeasePolicy) -> None:
        self.study, self.trial, self.policy = study, trial, policy
        self.optuna_heartbeat = has_optuna_heartbeat(study)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-{trial.number}", daemon=True)

    def __enter__(self) -> KeepAlive:
        self.trial.set_user_attr(WORKER_ATTR, worker_name())
        self._beat()
        self.thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(self.policy.heartbeat_interval):
            try:
                self._beat()
            except UpdateFinishedTrialError:  # another worker failed it as stale: nothing left to keep
                return
            except Exception:  # noqa: BLE001 - a storage hiccup; the next beat retries, the grace period absorbs it
                continue

    def _beat(self) -> None:
        if self.optuna_heartbeat:
            record_heartbeat(self.study, self.trial)
        else:
            self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())


def fail_stale(study: optuna.Study, policy: LeasePolicy) -> None:
    """Fail the RUNNING trials whose worker stopped beating; another worker's are left alone."""
    if has_optuna_heartbeat(study):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # retries through the storage's callback
        return
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        silent = now - last_beat(trial)
        if silent > policy.grace_period:
            reason = f"no heartbeat for {silent:.0f} s (grace period {policy.grace_period} s): its worker stopped"
            if _fail(study, trial, reason) and policy.retry_failed:
                RetryHeartbeatStaleTrialCallback(max_retry=policy.retry_failed)(study, stored_trial(study, trial))


def last_beat(trial: FrozenTrial) -> float:
    """The later of the lease's last beat and the trial's start (a retried trial inherits an old beat)."""
    started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(float(trial.user_attrs.get(HEARTBEAT_ATTR, 0.0)), started)


def _fail(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Fail ``trial`` with ``reason``; False when another worker finished or failed it first.

    The storage's state change is the arbiter: of two reapers, one wins.
    """
    try:
        TrialRecord.save_outcome(live_trial(study, trial), TrialOutcome.FAILED, reason)
        return set_trial_state(study, trial, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
