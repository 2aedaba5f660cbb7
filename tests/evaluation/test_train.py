"""The brief-training loop: repeatability, stopping, divergence, fidelity knobs, a real run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

from evaluation import (
    Architecture,
    Checkpoint,
    EpochReport,
    Stage,
    Stem,
    TrainConfig,
    Transition,
    build_model,
    evaluate,
    planned_images,
    resolve_precision,
    train,
)
from evaluation import training as training_module
from evaluation.blocks import DenseSpec
from evaluation.data import DataSplits, load_dataset
from evaluation.errors import ConfigError
from evaluation.scores import score_model, scores_of_classes

TINY = Architecture(
    stem=Stem(style="small", width=8),
    stages=(Stage(DenseSpec(growth_rate=8, bn_size=0), depth=2),) * 2,
    transitions=(Transition(compression=0.5, pooling="avg"),),
)
QUICK = TrainConfig(epochs=2, batch_size=64, lr=0.2, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits", validation_size=300, seed=0)


def _model(seed: int = 0, side: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(TINY, (1, side, side), 10)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_is_repeatable_on_cpu_from_a_seed(digits: DataSplits, precision: str) -> None:
    config = TrainConfig(epochs=2, batch_size=64, lr=0.2, device="cpu", precision=precision, seed=7)
    first, second = _model(), _model()
    results = [train(model, digits, config) for model in (first, second)]
    assert results[0].val_accuracies == results[1].val_accuracies, f"accuracies differ: {results}"
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs between two runs with the same seed"
    other = _model()
    train(other, digits, TrainConfig(epochs=2, batch_size=64, lr=0.2, device="cpu", precision=precision, seed=8))
    assert not torch.equal(
        other.state_dict()["head.classifier.weight"], first.state_dict()["head.classifier.weight"]
    ), "another seed must shuffle and augment differently"


def test_train_reports_every_epoch_and_separate_times(digits: DataSplits) -> None:
    reports: list[EpochReport] = []
    result = train(_model(), digits, QUICK, on_epoch=lambda report: reports.append(report) or False)
    assert [r.epoch for r in reports] == [1, 2] and result.epochs_run == 2, f"epochs reported: {reports}"
    assert result.val_accuracies == [r.val_accuracy for r in reports], "result and reports must agree"
    assert result.train_seconds > 0 and result.eval_seconds > 0, f"times {result.train_seconds}, {result.eval_seconds}"
    assert all(r.images_per_second > 0 and r.train_loss > 0 for r in reports), f"reports {reports}"
    assert result.stopped_reason is None and not result.diverged, f"a full run has no stop reason: {result}"
    assert result.val_accuracies[-1] > 0.3, f"digits after 2 epochs should beat chance (0.1): {result.val_accuracies}"


def test_train_stops_when_on_epoch_returns_true(digits: DataSplits) -> None:
    result = train(_model(), digits, QUICK, on_epoch=lambda report: True)
    assert result.epochs_run == 1 and len(result.val_accuracies) == 1, f"one epoch expected, ran {result.epochs_run}"
    assert result.stopped_reason and "on_epoch" in result.stopped_reason, f"reason: {result.stopped_reason}"
    assert not result.diverged, "a requested stop is not a divergence"


def test_train_stops_with_a_reason_when_the_loss_is_nan(digits: DataSplits) -> None:
    model = _model()
    with torch.no_grad():
        model.head.classifier.weight.fill_(float("inf"))  # every logit inf or nan: the loss is nan
    called: list[EpochReport] = []
    result = train(model, digits, QUICK, on_epoch=lambda report: called.append(report) or False)
    assert result.diverged, "a nan loss must mark the run diverged"
    assert result.stopped_reason and "nan" in result.stopped_reason, f"reason: {result.stopped_reason}"
    assert result.epochs_run == 0 and not called, "a diverged epoch is neither counted nor reported"


def test_train_fidelity_knobs_fraction_and_resize(digits: DataSplits) -> None:
    seen: list[tuple[int, ...]] = []
    model = _model(side=16)
    model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    steps: list[int] = []
    config = TrainConfig(epochs=1, batch_size=32, train_fraction=0.5, resize=16, device="cpu", check_every=1)
    train(model, digits, config, on_progress=lambda epoch, step, total: steps.append(total))
    expected = round(0.5 * len(digits.train[1])) // 32
    assert steps[0] == expected, (
        f"half of {len(digits.train[1])} images in batches of 32 is {expected} steps, got {steps[0]}"
    )
    assert seen[0][2:] == (16, 16), f"resize 16 must feed 16x16 images, fed {seen[0]}"


def _reference_accuracy(model: torch.nn.Module, data: DataSplits) -> float:
    """Validation accuracy written out by hand (uint8 to [0, 1], the training set's mean and std,
    one forward pass in eval mode, argmax) and scored by scikit-learn, outside the training code."""
    images, labels = data.val
    mean, std = (torch.tensor(values).view(1, -1, 1, 1) for values in (data.mean, data.std))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model((images.float() / 255 - mean) / std).argmax(1)
    model.train(was_training)
    return float(accuracy_score(labels.numpy(), predicted.numpy()))


def test_evaluate_agrees_with_the_per_epoch_validation(digits: DataSplits) -> None:
    model = _model()
    result = train(model, digits, QUICK)
    accuracy = evaluate(model, *digits.val, QUICK, mean=digits.mean, std=digits.std)
    assert accuracy == result.val_accuracies[-1], f"evaluate gave {accuracy}, training saw {result.val_accuracies[-1]}"
    reference = _reference_accuracy(model, digits)
    assert accuracy == reference, f"evaluate gave {accuracy}, scikit-learn's accuracy_score {reference}"


def test_resolve_precision_auto_uses_bf16_only_on_cpus_with_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(training_module, "_cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) is torch.bfloat16, "native bf16 CPUs train in bf16"
    monkeypatch.setattr(training_module, "_cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) is None, "other CPUs train in fp32 (emulated bf16 is slower)"
    assert resolve_precision("fp32", cpu) is None and resolve_precision("bf16", cpu) is torch.bfloat16, "explicit wins"


def test_train_config_rejects_bad_values_naming_the_field() -> None:
    with pytest.raises(ValueError, match="schedule must be one of cosine, onecycle, constant, got 'step'"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\], got 0"):
        TrainConfig(train_fraction=0)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (make data installs it)",
)
def test_train_short_real_run_on_fashion_mnist_beats_chance() -> None:
    data = load_dataset("fashion_mnist", validation_size=1000, seed=0)
    config = TrainConfig(epochs=2, train_fraction=4000 / 59000, batch_size=32, device="cpu")
    arch = Architecture(
        stem=Stem(style="small", width=16),
        stages=(Stage(DenseSpec(growth_rate=16, bn_size=0), depth=2),) * 2,
        transitions=(Transition(compression=0.5, pooling="avg"),),
    )
    torch.manual_seed(0)
    model = build_model(arch, (1, 28, 28), 10)
    result = train(model, data, config)
    assert result.val_accuracies[-1] > 0.6, (
        f"4000 images x 2 epochs should reach well above 0.1: {result.val_accuracies}"
    )


def test_checkpoints_validate_mid_epoch_and_match_a_run_stopped_there(digits: DataSplits) -> None:
    """A checkpoint at a third of an epoch validates then; the epoch-end one reuses the epoch's validation."""
    per_epoch = planned_images(digits, QUICK) // QUICK.epochs
    third = per_epoch // 3
    seen: list[Checkpoint] = []
    result = train(_model(), digits, QUICK, checkpoints=[third, per_epoch], on_checkpoint=lambda c: seen.append(c))
    assert [c.epoch for c in seen] == [1, 1] and seen[1].images == per_epoch, seen
    assert third <= seen[0].images < third + QUICK.batch_size, "the first step past the count"
    assert seen[1].val_accuracy == result.val_accuracies[0], "an epoch-end checkpoint is the epoch's validation"
    assert result.checkpoints == seen and result.epochs_run == QUICK.epochs

    stopped = _model()
    cut = train(stopped, digits, QUICK, checkpoints=[third], on_checkpoint=lambda c: True)
    assert cut.epochs_run == 0 and cut.val_accuracies == [], "stopped before the first epoch ended"
    assert cut.stopped_reason == f"stopped by on_checkpoint at {seen[0].images} images"
    assert evaluate(stopped, *digits.val, QUICK, mean=digits.mean, std=digits.std) == seen[0].val_accuracy, (
        "the checkpoint's accuracy is the model's at that step"
    )
    reference = _reference_accuracy(stopped, digits)
    assert seen[0].val_accuracy == reference, (
        f"the checkpoint recorded {seen[0].val_accuracy}, scikit-learn's accuracy_score gives {reference}"
    )


def test_constant_schedule_keeps_the_rate(digits: DataSplits) -> None:
    model = _model()
    config = TrainConfig(epochs=1, batch_size=64, lr=0.05, device="cpu", precision="fp32", schedule="constant")
    trainer = training_module._Trainer(model, digits, config)
    for _ in range(3):
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize("swa_epochs", [0, 3])
def test_a_run_resumed_from_its_state_file_ends_as_the_uninterrupted_run(
    digits: DataSplits, tmp_path: Path, swa_epochs: int
) -> None:
    """Stopped after epoch 1 (as a crash would leave it) and continued by a second call: bit for bit the same,
    the weight average of the epochs before the break included."""
    config = TrainConfig(epochs=3, batch_size=64, lr=0.2, device="cpu", precision="fp32", seed=3, swa_epochs=swa_epochs)
    per_epoch = planned_images(digits, config) // config.epochs
    marks = [per_epoch // 3, per_epoch + per_epoch // 3, 2 * per_epoch + per_epoch // 2]
    whole = _model()
    uninterrupted = train(whole, digits, config, checkpoints=marks)

    state = tmp_path / "training-state.pt"
    first = train(_model(), digits, config, checkpoints=marks, state_file=state, on_epoch=lambda report: True)
    assert first.epochs_run == 1 and state.is_file(), "the state is saved after each epoch"
    resumed_model = _model(seed=99)  # initialised otherwise: the weights must come from the file
    resumed = train(resumed_model, digits, config, checkpoints=marks, state_file=state)

    assert resumed.resumed_after_epoch == 1 and uninterrupted.resumed_after_epoch == 0
    assert resumed.val_accuracies == uninterrupted.val_accuracies
    assert resumed.checkpoints == uninterrupted.checkpoints, "checkpoints before and after the break, once each"
    assert [r.epoch for r in resumed.epochs] == [1, 2, 3]
    assert resumed.train_seconds > first.train_seconds, "times add up over both calls"
    for (name, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs between the resumed and the uninterrupted run"


def test_swa_leaves_the_mean_of_the_last_epochs_weights_with_bn_statistics_recomputed(digits: DataSplits) -> None:
    config = TrainConfig(epochs=3, swa_epochs=2, batch_size=64, lr=0.2, device="cpu", precision="fp32", seed=1)
    model = _model()
    snapshots: list[dict[str, torch.Tensor]] = []

    def keep(report: EpochReport) -> bool:
        snapshots.append({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
        return False

    result = train(model, digits, config, on_epoch=keep)
    assert result.epochs_run == 3 and len(snapshots) == 3
    final = model.state_dict()
    for name, _ in model.named_parameters():
        mean = (snapshots[1][name] + snapshots[2][name]) / 2
        assert torch.allclose(final[name], mean, atol=1e-6), f"{name} is not the mean of epochs 2 and 3"
        assert not torch.allclose(final[name], snapshots[2][name]), f"{name} is the last epoch's, not averaged"
    means = [name for name in final if name.endswith("running_mean")]
    assert means and all(not torch.equal(final[n], snapshots[2][n]) for n in means), "BN statistics recomputed"
    accuracy = evaluate(model, *digits.val, config, mean=digits.mean, std=digits.std)
    assert accuracy >= result.val_accuracies[-1] - 0.05, f"the average tests {accuracy}, the last epoch {result}"

    with pytest.raises(ConfigError, match=r"swa_epochs must be in \[0, epochs=3\], got 4"):
        TrainConfig(epochs=3, swa_epochs=4)


def test_a_state_file_of_another_recipe_is_refused(digits: DataSplits, tmp_path: Path) -> None:
    state = tmp_path / "training-state.pt"
    train(_model(), digits, QUICK, state_file=state, on_epoch=lambda report: True)
    with pytest.raises(ConfigError, match=r"lr 0\.2 \(asked 0\.1\); pass the same settings, or remove it"):
        train(_model(), digits, TrainConfig(epochs=2, batch_size=64, lr=0.1, device="cpu", precision="fp32"),
              state_file=state)  # fmt: skip


def test_train_keeps_its_last_validation_pass_of_the_weights_it_leaves(digits: DataSplits) -> None:
    """The class-balanced scores of a trial read these instead of a second pass over the validation split."""
    model = _model()
    result = train(model, digits, QUICK)
    predictions = result.val_predictions
    assert predictions is not None and predictions.num_classes == 10 and predictions.positive is None
    images, labels = digits.val
    assert predictions.accuracy(labels) == result.val_accuracies[-1]
    again = score_model(model, images, labels, QUICK, mean=digits.mean, std=digits.std)  # a pass of its own
    kept = scores_of_classes(labels.numpy(), predictions.classes.numpy(), 10)
    assert kept == again, "the same scores from the training's own pass"
    assert accuracy_score(labels.numpy(), predictions.classes.numpy()) == pytest.approx(kept.accuracy)

    averaged = train(_model(), digits, TrainConfig(epochs=2, swa_epochs=1, batch_size=64, lr=0.2, device="cpu"))
    assert averaged.val_predictions is None, "the last pass was of the last weights, not the average left in the model"
    stopped = train(_model(), digits, QUICK, checkpoints=[64], on_checkpoint=lambda checkpoint: True)
    assert stopped.val_predictions is None, "stopped inside an epoch: no pass of the weights left"

    # Two classes: the class-1 probabilities come along, for the ROC AUC (against scikit-learn's).
    two = dataclasses.replace(
        digits, train=(digits.train[0], digits.train[1] % 2), val=(images, labels % 2), num_classes=2
    )
    torch.manual_seed(0)
    binary = train(build_model(TINY, (1, 8, 8), 2), two, QUICK).val_predictions
    assert binary is not None and binary.positive is not None and binary.num_classes == 2
    auc = scores_of_classes((labels % 2).numpy(), binary.classes.numpy(), 2, binary.positive.numpy()).roc_auc
    assert auc == pytest.approx(roc_auc_score((labels % 2).numpy(), binary.positive.numpy()))
