"""TrialRecord: the one writer of a trial's outcome, stored as a plain string."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from evaluation import Architecture
from search.errors import UsageError
from search.storage.records import TrialOutcome, TrialRecord

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_trial_record_stores_the_outcome_as_a_plain_string(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trial = study.ask()
    TrialRecord(outcome=TrialOutcome.PRUNED, reason="pruned after epoch 1").save(trial)
    study.tell(trial, state=TrialState.PRUNED)
    stored = study.trials[0].user_attrs["outcome"]
    assert type(stored) is str and stored == "pruned", f"stored {stored!r} ({type(stored).__name__})"
    assert TrialRecord.load(study.trials[0]).outcome is TrialOutcome.PRUNED, "loads back as the enum"


def test_trial_record_loads_old_studies_and_trials_without_a_record() -> None:
    study = optuna.create_study()
    study.add_trials(
        [
            optuna.trial.create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs={"outcome": "duplicate"}),
            optuna.trial.create_trial(state=TrialState.FAIL),
        ]
    )
    study.ask()  # still running, no record yet
    outcomes = [TrialRecord.load(t).outcome for t in study.trials]
    assert outcomes == [TrialOutcome.DUPLICATE, TrialOutcome.FAILED, TrialOutcome.UNKNOWN], outcomes


def test_trial_record_save_outcome_keeps_the_curve_so_far() -> None:
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr("val_accuracy_per_epoch", [0.4, 0.6])  # as the epoch callback leaves it
    TrialRecord.save_outcome(trial, TrialOutcome.FAILED, "interrupted by Ctrl-C")
    study.tell(trial, state=TrialState.FAIL)
    record = TrialRecord.load(study.trials[0])
    assert (record.outcome, record.reason) == (TrialOutcome.FAILED, "interrupted by Ctrl-C"), record
    assert record.val_accuracy_per_epoch == [0.4, 0.6], "the curve reported before the stop stays"


def test_built_architecture_is_the_recorded_one_or_a_one_line_usage_error() -> None:
    """A trial of a study made elsewhere (or one cut short) may record no architecture to build or train."""
    arch = Architecture.from_dict({"stem": {"width": 8}, "stages": [{"block": "residual", "depth": 1, "width": 8}]})
    record = TrialRecord(outcome=TrialOutcome.TRAINED, architecture=arch.to_dict())
    assert record.built_architecture(trial=3, study="s", to="build") == arch
    with pytest.raises(UsageError) as caught:
        TrialRecord(outcome=TrialOutcome.FAILED).built_architecture(trial=3, study="s", to="train")
    assert str(caught.value) == "trial 3 of study 's' records no architecture to train", caught.value
