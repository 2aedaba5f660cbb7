"""The one module that touches Optuna's private API, each use a small named function.

Ask-and-tell with leases, screening and requeues needs a few things Optuna
keeps behind underscores: a trial's storage id, the study's storage, the
``fixed_params`` an enqueued trial is made with, and the heartbeat interface of
the storages that keep heartbeats (``BaseHeartbeat``). They are reached here only,
so an Optuna release that moves one breaks one module (``pyproject.toml`` pins
``optuna`` below its next major version for the same reason). Checked against
Optuna 5.1: ``optuna/study/study.py`` (``Study._storage``),
``optuna/trial/_trial.py`` (``Trial._trial_id``, ``Trial._fixed_params``, read
once in ``__init__``), ``optuna/trial/_frozen.py`` (``FrozenTrial._trial_id``),
``optuna/study/study.py`` ``enqueue_trial`` (the ``fixed_params`` system
attribute) and ``optuna/storages/_heartbeat.py`` (``BaseHeartbeat``, a base of
``RDBStorage`` and of the cache Optuna wraps it in).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "FIXED_PARAMS_ATTR",
    "fix_params",
    "fixed_params",
    "heartbeat_interval",
    "live_trial",
    "record_heartbeat",
    "set_trial_state",
    "storage_of",
    "stored_trial",
    "trial_id",
]

# The system attribute ``Study.enqueue_trial`` stores a queued trial's parameters in.
FIXED_PARAMS_ATTR = "fixed_params"


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of ``trial`` (unlike ``number``, unique across the studies of a storage)."""
    return trial._trial_id


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes."""
    return study._storage


def stored_trial(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> FrozenTrial:
    """``trial`` as the storage holds it now, system attributes included."""
    return storage_of(study).get_trial(trial_id(trial))


def live_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial:
    """A ``Trial`` handle on a stored trial, to set its attributes as its own worker would."""
    return optuna.Trial(study, trial_id(trial))


def fixed_params(trial: optuna.Trial) -> dict[str, Any]:
    """The parameters ``trial`` was made with before sampling (enqueued, retried, screened); {} for none."""
    return stored_trial(trial.study, trial).system_attrs.get(FIXED_PARAMS_ATTR) or {}


def fix_params(trial: optuna.Trial, params: dict[str, Any]) -> None:
    """Make ``trial``'s suggestions return ``params``, as ``enqueue_trial`` does for a queued trial.

    ``optuna.Trial`` reads ``fixed_params`` from the storage once, when it is
    made, so the running handle is told too.
    """
    trial.storage.set_trial_system_attr(trial_id(trial), FIXED_PARAMS_ATTR, params)
    trial._fixed_params = dict(params)


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between the heartbeats the study's storage records itself (RDB storages); None without."""
    storage = storage_of(study)
    return storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None


def record_heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    """One heartbeat of running ``trial`` in a storage that keeps them (``heartbeat_interval`` not None)."""
    storage = storage_of(study)
    if not isinstance(storage, BaseHeartbeat):
        raise TypeError(f"{type(storage).__name__} keeps no heartbeats")
    storage.record_heartbeat(trial_id(trial))


def set_trial_state(study: optuna.Study, trial: optuna.Trial | FrozenTrial, state: TrialState) -> bool:
    """Move ``trial`` to ``state`` in the storage; False when another process finished it first.

    Raises ``UpdateFinishedTrialError`` for a trial already finished, as the storage does.
    """
    return storage_of(study).set_trial_state_values(trial_id(trial), state=state)
