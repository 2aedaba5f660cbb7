"""Optuna's private API is reached from one module, ``search.storage._optuna``, and does what Optuna does."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.storage import _optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEARCH = Path(__file__).resolve().parents[2] / "search"
PRIVATE = re.compile(r"\._storage\b|_trial_id\b|_fixed_params\b")


def test_optunas_private_api_is_reached_from_one_module_only() -> None:
    users = sorted(str(p.relative_to(SEARCH.parent)) for p in SEARCH.rglob("*.py") if PRIVATE.search(p.read_text()))
    assert users == ["search/storage/_optuna.py"], f"private names of Optuna used elsewhere: {users}"


def test_fixed_params_are_those_optuna_enqueues_and_fixing_them_fixes_the_suggestions() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"x": 3})
    queued = study.ask()
    assert _optuna.fixed_params(queued) == {"x": 3}, "Study.enqueue_trial's parameters"
    assert queued.suggest_int("x", 0, 9) == 3
    fresh = study.ask()
    assert _optuna.fixed_params(fresh) == {}, "a sampled trial has none"
    _optuna.fix_params(fresh, {"x": 7})
    assert fresh.suggest_int("x", 0, 9) == 7, "the running trial suggests what was fixed"
    assert _optuna.stored_trial(study, fresh).params == {"x": 7}, "and the storage records it"
    assert _optuna.fixed_params(fresh) == {"x": 7}


def test_state_changes_go_through_the_storage_as_optunas_tell_does() -> None:
    study = optuna.create_study()
    trial = study.ask()
    frozen = study.trials[0]
    assert _optuna.trial_id(trial) == _optuna.trial_id(frozen), "a trial and its frozen copy share the id"
    assert _optuna.set_trial_state(study, frozen, TrialState.FAIL) is True
    assert study.trials[0].state == TrialState.FAIL
    with pytest.raises(UpdateFinishedTrialError):
        _optuna.set_trial_state(study, frozen, TrialState.FAIL)
    assert _optuna.heartbeat_interval(study) is None, "an in-memory storage beats no heartbeat"
    handle = _optuna.live_trial(study, study.trials[0])
    assert handle.number == 0 and _optuna.storage_of(study) is handle.storage


def test_heartbeats_are_recorded_in_an_rdb_storage_that_keeps_them(tmp_path: Path) -> None:
    """Optuna fails a trial as stale only once it has beaten: the one that beat is failed, the other is not."""
    with warnings.catch_warnings():  # heartbeats are experimental, and meant for study.optimize: this beats itself
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'beat.db'}", heartbeat_interval=1, grace_period=1)
        study = optuna.create_study(storage=storage)
        beating = study.ask()
        study.ask()  # a second trial that never beats
    assert _optuna.heartbeat_interval(study) == 1
    _optuna.record_heartbeat(study, beating)
    time.sleep(2.5)  # past the grace period
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING], study.trials
