"""The stopping rules' table: built-in rules by name, and a new rule, at rungs or per epoch, as one entry."""

from __future__ import annotations

from typing import ClassVar

import optuna
import pytest
from optuna.trial import TrialState

import search
from evaluation import EpochReport, TrainConfig, planned_images
from search.execution.objective import TrialObjective
from search.pruners import (
    PRUNERS,
    STOPPING_RULES,
    Asha,
    Hyperband,
    Median,
    NoStopping,
    Pruner,
    Pruning,
    RungDecision,
    RungWatch,
    StoppingRule,
    recorded_decisions,
)
from spaces import enqueue_architecture

optuna.logging.set_verbosity(optuna.logging.WARNING)
CONFIG = TrainConfig(epochs=3, batch_size=64, lr=0.05, schedule="cosine", device="cpu")


def test_the_built_in_rules_are_the_entries_of_the_table() -> None:
    assert PRUNERS == ("asha", "hyperband", "median", "none"), PRUNERS
    assert [STOPPING_RULES[name] for name in PRUNERS] == [Asha, Hyperband, Median, NoStopping]
    assert [Pruning(name).rule.single_objective for name in PRUNERS] == [False, True, True, False]
    assert Pruning("none").fractions() == () and Pruning("asha").fractions(), "only rung rules have rungs"
    with pytest.raises(search.UsageError, match=r"unknown pruner 'sha'; expected one of asha, hyperband, median, none"):
        Pruning("sha")


def _one_trial(space, digits, pruning: Pruning) -> optuna.trial.FrozenTrial:
    """One trial of ``space``'s example architecture, trained with ``pruning``'s rule."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    pruner = Pruner(pruning, space.objectives, planned_images(digits, CONFIG))
    objective = TrialObjective(space=space, data=digits, config=CONFIG, latency_repeats=1, pruner=pruner)
    study.enqueue_trial(enqueue_architecture(space, space.example()))
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    return trial


class _StopAtFirstRung(StoppingRule):
    """A rung rule of the tests: every trial stops at its first rung."""

    def at_rung(self, watch: RungWatch, rung: int, images: int) -> RungDecision:
        return watch.decision(rung, images, continued=False, reason=f"stopped at {watch.where(rung, images)}: a test")


class _StopAfterFirstEpoch(StoppingRule):
    """A per-epoch rule of the tests: no rungs; every trial stops after its first epoch."""

    rungs: ClassVar[bool] = False

    def after_epoch(self, watch: RungWatch, report: EpochReport) -> str | None:
        return f"stopped after epoch {report.epoch}: a test" if report.epoch >= 1 else None


def test_a_new_rung_rule_is_one_entry_of_the_table(tiny_space, digits, monkeypatch) -> None:
    monkeypatch.setitem(STOPPING_RULES, "first_rung", _StopAtFirstRung)
    pruning = Pruning("first_rung", eta=3)
    assert pruning.describe() == "pruner first_rung (rungs at 1/9, 1/3 of the budget, eta 3)"
    trial = _one_trial(tiny_space, digits, pruning)
    (decision,) = recorded_decisions(trial.user_attrs)
    assert trial.state == TrialState.PRUNED and trial.user_attrs["outcome"] == "pruned", trial.user_attrs
    assert (decision.rung, decision.pruner, decision.continued) == (1, "first_rung", False), decision
    assert trial.user_attrs["reason"] == decision.reason and decision.reason.startswith("stopped at rung 1 of 2, ")
    assert trial.user_attrs["images_seen"] < trial.user_attrs["images_planned"], "it saw part of its budget"


def test_a_per_epoch_rule_has_a_seat_in_the_table(tiny_space, digits, monkeypatch) -> None:
    """train's on_epoch stop path, asked by the objective: the trial ends PRUNED after the epoch, with the reason."""
    monkeypatch.setitem(STOPPING_RULES, "first_epoch", _StopAfterFirstEpoch)
    trial = _one_trial(tiny_space, digits, Pruning("first_epoch"))
    assert trial.state == TrialState.PRUNED, (trial.state, trial.user_attrs)
    assert trial.user_attrs["reason"] == "stopped after epoch 1: a test", trial.user_attrs
    assert trial.user_attrs["epochs_run"] == 1 and len(trial.user_attrs["val_accuracy_per_epoch"]) == 1
    assert trial.user_attrs["images_seen"] == trial.user_attrs["images_planned"] // CONFIG.epochs, trial.user_attrs
    assert "rung_decisions" not in trial.user_attrs, "no rungs: nothing judged there"


def test_without_a_rule_every_trial_trains_its_whole_budget(tiny_space, digits) -> None:
    trial = _one_trial(tiny_space, digits, Pruning("none"))
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["epochs_run"] == CONFIG.epochs, trial.user_attrs
    assert trial.user_attrs["images_seen"] == trial.user_attrs["images_planned"]
