"""One trial's outcomes: trained, rejected, diverged, failed, duplicate."""

import dataclasses
import math

import optuna
import pytest
from optuna.trial import TrialState

from evaluation import Architecture, Head, Stage, Stem, TrainConfig
from evaluation.blocks import DenseSpec
from evaluation.errors import ExportError
from search.execution import objective as objective_module
from search.execution.objective import VALID_CONSTRAINT, TrialObjective
from search.pareto import front_trials
from search.storage.records import TrialOutcome, TrialRecord
from spaces import Constraints, enqueue_architecture
from spaces import Objective as SpaceObjective

optuna.logging.set_verbosity(optuna.logging.WARNING)


def arch(growth_rate: int, depth: int = 1) -> Architecture:
    return Architecture(
        stem=Stem(style="small", width=8),
        stages=(Stage(DenseSpec(growth_rate=growth_rate, bn_size=0), depth=depth),),
        head=Head(norm=True),
    )


def make(space, data, **config) -> tuple[optuna.Study, TrialObjective]:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    budget = dict(epochs=1, batch_size=64, lr=0.05, device="cpu", seed=0) | config
    return study, TrialObjective(space=space, data=data, config=TrainConfig(**budget), latency_repeats=1)


def counting_train(monkeypatch) -> list:
    calls = []
    real = objective_module.train

    def train(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(objective_module, "train", train)
    return calls


def test_objective_trains_and_records_everything(tiny_space, digits):
    study, objective = make(tiny_space, digits, epochs=6, lr=0.2)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4, depth=2)))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    attrs = trial.user_attrs
    assert trial.state == TrialState.COMPLETE and attrs["outcome"] == "trained", f"{trial.state} {attrs}"
    assert Architecture.from_dict(attrs["architecture"]) == arch(4, depth=2), "the architecture is recorded as sampled"
    assert trial.values[0] == attrs["val_accuracy_per_epoch"][-1] > 0.3, f"digits after six epochs: {trial.values}"
    assert trial.values[1] == attrs["macs"] > 0, "MACs are the second objective"
    assert len(attrs["val_accuracy_per_epoch"]) == attrs["epochs_run"] == 6, "one validation accuracy per epoch"
    for key in ("params", "latency_ms", "epochs_run", "train_seconds", "eval_seconds", "device"):
        assert key in attrs, f"{key} is recorded"
    assert trial.constraints[VALID_CONSTRAINT] == 0.0 and trial.constraints["params"] <= 0, trial.constraints


def test_objective_rejects_oversized_architecture_without_training(tiny_space, digits, monkeypatch):
    calls = counting_train(monkeypatch)
    study, objective = make(tiny_space, digits)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(64, depth=2)))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert calls == [], "a rejected architecture costs no training"
    assert trial.state == TrialState.COMPLETE, "rejected trials complete, so the sampler sees them as infeasible"
    assert trial.user_attrs["outcome"] == "rejected", trial.user_attrs
    assert "max_params 20,000" in trial.user_attrs["reason"], trial.user_attrs["reason"]
    assert trial.constraints["params"] > 0, f"the constraint is violated: {trial.constraints}"
    assert front_trials(study) == [], "an infeasible trial never enters the front"


def test_objective_records_divergence_and_the_study_goes_on(tiny_space, digits):
    study, objective = make(tiny_space, digits, lr=1e12)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4)))
    study.optimize(objective, n_trials=2)
    first = study.trials[0]
    assert first.user_attrs["outcome"] == "diverged", first.user_attrs
    assert "training loss became" in first.user_attrs["reason"], first.user_attrs["reason"]
    assert first.constraints[VALID_CONSTRAINT] == 1.0, "a diverged trial is infeasible"
    assert len(study.trials) == 2 and study.trials[1].state == TrialState.COMPLETE, "the study continued"


def test_objective_records_an_exception_and_the_study_goes_on(tiny_space, digits, monkeypatch):
    real = objective_module.train
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory, say")
        return real(*args, **kwargs)

    monkeypatch.setattr(objective_module, "train", flaky)
    study, objective = make(tiny_space, digits)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4)))
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4, depth=2)))
    study.optimize(objective, n_trials=2, catch=(Exception,))
    failed, trained = study.trials
    assert failed.state == TrialState.FAIL, f"an exception fails the trial: {failed.state}"
    assert failed.user_attrs["reason"] == "RuntimeError: out of memory, say", failed.user_attrs
    assert trained.user_attrs["outcome"] == "trained", "the next trial runs normally"


def test_objective_does_not_train_a_duplicate_again(tiny_space, digits, monkeypatch):
    calls = counting_train(monkeypatch)
    study, objective = make(tiny_space, digits)
    params = enqueue_architecture(tiny_space, arch(4))
    study.enqueue_trial(params)
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=2)
    original, repeat = study.trials
    assert len(calls) == 1, f"the repeated architecture was trained {len(calls)} times"
    assert repeat.user_attrs["outcome"] == "duplicate" and repeat.user_attrs["duplicate_of"] == 0, repeat.user_attrs
    assert repeat.values == original.values, "a duplicate takes the recorded values"
    assert repeat.constraints == original.constraints, "and the recorded constraints"


def test_objective_repeats_a_trial_from_its_seed(tiny_space, digits):
    values = []
    for _ in range(2):
        study, objective = make(tiny_space, digits)
        study.enqueue_trial(enqueue_architecture(tiny_space, arch(4, depth=2)))
        study.optimize(objective, n_trials=1)
        values.append(study.trials[0].user_attrs["val_accuracy_per_epoch"])
    assert values[0] == values[1], f"the same seed gives the same learning curve: {values}"


def test_objective_ranks_a_trial_without_latency_last(tiny_space, digits):
    """A missing value gets the metric's worst, never its best: 0 ms would win a minimised latency."""
    space = dataclasses.replace(
        tiny_space, objectives=(SpaceObjective("accuracy", "maximize"), SpaceObjective("latency_ms", "minimize"))
    )
    objective = TrialObjective(space=space, data=digits, config=TrainConfig(epochs=1, device="cpu"))
    study = optuna.create_study(directions=["maximize", "minimize"])
    curve = [0.5, 0.8]
    measured = TrialRecord(
        outcome=TrialOutcome.TRAINED, params=1000, macs=10_000, latency_ms=2.0, val_accuracy_per_epoch=curve
    )
    unmeasured = TrialRecord(outcome=TrialOutcome.TRAINED, params=1000, macs=10_000, val_accuracy_per_epoch=curve)
    for record in (measured, unmeasured):
        trial = study.ask()
        study.tell(trial, objective._finish(trial, record, valid=True))
    with_latency, without = study.trials
    assert without.values[1] == math.inf, f"no latency is the worst latency: {without.values}"
    assert [t.number for t in study.best_trials] == [with_latency.number], (
        f"the trial without latency is dominated, not best: {[(t.number, t.values) for t in study.best_trials]}"
    )


def _onnx_space(space, limit: float):
    """``space`` with ``max_onnx_latency_ms: limit`` beside its other constraints."""
    return dataclasses.replace(space, constraints=Constraints({**space.constraints.limits, "onnx_latency_ms": limit}))


def test_objective_measures_onnx_latency_when_the_space_constrains_it(tiny_space, digits, monkeypatch):
    """The exported model timed in onnxruntime: recorded and held to max_onnx_latency_ms; over it, refused untrained."""
    calls = counting_train(monkeypatch)
    for limit, outcome in ((1000.0, "trained"), (1e-6, "rejected")):
        study, objective = make(_onnx_space(tiny_space, limit), digits)
        study.enqueue_trial(enqueue_architecture(tiny_space, arch(4)))
        study.optimize(objective, n_trials=1)
        trial = study.trials[0]
        attrs = trial.user_attrs
        assert trial.state == TrialState.COMPLETE and attrs["outcome"] == outcome, attrs
        assert 0 < attrs["onnx_latency_ms"] < 1000, f"an ONNX latency in milliseconds is recorded: {attrs}"
        assert attrs["latency_ms"] > 0 and attrs["latency_spread"] >= 0, f"PyTorch latency and its spread: {attrs}"
        excess = (attrs["onnx_latency_ms"] - limit) / limit
        assert trial.constraints["onnx_latency_ms"] == excess, f"relative excess over the limit: {trial.constraints}"
        assert trial.constraints[VALID_CONSTRAINT] == 0.0, "a measured, refused model is still a valid result"
    assert len(calls) == 1, "the model over the limit is not trained"
    assert "max_onnx_latency_ms 1e-06" in attrs["reason"], attrs["reason"]


def test_objective_measures_onnx_latency_only_when_the_space_names_it(tiny_space, digits):
    study, objective = make(tiny_space, digits)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4)))
    study.optimize(objective, n_trials=1)
    attrs = study.trials[0].user_attrs
    assert attrs["outcome"] == "trained" and "onnx_latency_ms" not in attrs, f"no export, no ONNX latency: {attrs}"
    assert "latency_spread" in attrs, attrs


def test_objective_refuses_a_model_that_does_not_export(tiny_space, digits, monkeypatch):
    """An export that fails (or computes other logits) is no deployable result: refused, infeasible, untrained."""
    calls = counting_train(monkeypatch)

    def no_export(*args, **kwargs):
        raise ExportError("model.onnx: onnxruntime logits differ from PyTorch's by 0.5")

    monkeypatch.setattr(objective_module, "onnx_latency_ms", no_export)
    study, objective = make(_onnx_space(tiny_space, 1000.0), digits)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4)))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["outcome"] == "rejected", trial.user_attrs
    assert trial.user_attrs["reason"] == "no ONNX latency: model.onnx: onnxruntime logits differ from PyTorch's by 0.5"
    assert trial.constraints[VALID_CONSTRAINT] == 1.0 and calls == [], "infeasible, and not trained"


def test_objective_scores_classes_from_the_trainings_validation_pass_not_a_second_one(tiny_space, digits, monkeypatch):
    """A second pass over the validation split cost a trial of the default space 11 to 15% of its time."""

    def second_pass(*args, **kwargs):
        raise AssertionError("score_model makes a second pass over the validation split")

    monkeypatch.setattr(objective_module, "score_model", second_pass)
    study, objective = make(tiny_space, digits, epochs=2, lr=0.2)
    study.enqueue_trial(enqueue_architecture(tiny_space, arch(4)))
    study.optimize(objective, n_trials=1)
    attrs = study.trials[0].user_attrs
    assert attrs["outcome"] == "trained", attrs.get("reason")
    per_class = attrs["per_class_accuracy"]
    val_labels = digits.val[1].numpy()
    correct = sum(accuracy * (val_labels == c).sum() for c, accuracy in enumerate(per_class))
    assert correct / len(val_labels) == pytest.approx(attrs["val_accuracy_per_epoch"][-1]), "of the validated weights"
    assert attrs["val_scores"]["balanced_accuracy"] == pytest.approx(sum(per_class) / len(per_class)), attrs
