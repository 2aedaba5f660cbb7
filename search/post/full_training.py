"""Full training of one architecture: the whole training split, one seed, one test evaluation.

``search train``, ``search finalize`` and ``search ablate`` all train through
``train_and_test``, so a model's weights.pt, architecture.yaml and result.json
mean the same whichever command wrote them. ``run_jobs`` trains a list of
(architecture, seed) jobs, skipping those whose result.json exists: how
finalize and ablate resume. Within a job, the training's state is saved to
``training-state.pt`` after every epoch, so a training cut short by a crash,
Ctrl-C or SIGTERM continues after its last whole epoch when the command runs again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from evaluation import (
    Architecture,
    EpochReport,
    TrainConfig,
    TrainResult,
    build_model,
    count,
    evaluate,
    load_architecture,
    profile,
    resolve_device,
    save_architecture,
    smallest_input_side,
    train,
)
from evaluation.atomic import atomic_write, write_bytes
from evaluation.data import DataSplits, describe_data
from evaluation.deploy import dataset_metadata, export_onnx
from evaluation.errors import differences
from evaluation.memory import check_memory
from evaluation.scores import ClassScores, class_scores
from evaluation.training import predict_probabilities, with_defaults
from search.errors import UsageError
from search.execution.interrupts import sigterm_as_interrupt

__all__ = [
    "MISCLASSIFIED_KEPT",
    "RECIPE_FIELDS",
    "RESULT_FILE",
    "STATE_FILE",
    "WEIGHTS_FILE",
    "FullTraining",
    "Job",
    "JobReporter",
    "input_shape",
    "needed_resize",
    "run_jobs",
    "train_and_test",
]

RESULT_FILE = "result.json"
WEIGHTS_FILE = "weights.pt"  # a CPU state_dict, for torch.load(weights_only=True)
STATE_FILE = "training-state.pt"  # an unfinished training's last epoch (evaluation.train's state_file)
# Misclassified test images a result.json lists (the most confident mistakes first): a report's grid, not a dump.
MISCLASSIFIED_KEPT = 64
# The settings that make two runs comparable: a finished job is kept only when these match.
# Device, precision and the seed are not among them (the seed is the job's own).
RECIPE_FIELDS = (
    "epochs",
    "train_fraction",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "label_smoothing",
    "resize",
    "augment",
    "swa_epochs",
)


@dataclass(frozen=True)
class FullTraining:
    """What ``train_and_test`` did: the record it wrote to result.json, and the test pass's time."""

    record: dict[str, Any]
    test_seconds: float

    @property
    def diverged(self) -> bool:
        return bool(self.record["diverged"])


def needed_resize(arch: Architecture, data: DataSplits) -> int | None:
    """The square side ``arch`` needs the images resized to, or None when it takes them as they are."""
    side = smallest_input_side(arch, data.input_size, data.num_classes)
    return None if side == data.input_size[1] else side


def input_shape(data: DataSplits, config: TrainConfig) -> tuple[int, int, int]:
    """(C, H, W) of the network's input: the data's, or ``config.resize`` square."""
    channels, height, _ = data.input_size
    side = config.resize or height
    return (channels, side, side)


def train_and_test(
    arch: Architecture,
    data: DataSplits,
    config: TrainConfig,
    out: Path,
    *,
    label: str,
    memory_limit: float | None = None,
    measure_latency: bool = False,
    onnx: bool = False,
    extra: Mapping[str, Any] | None = None,
    on_epoch: Callable[[EpochReport], bool] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    init: Path | None = None,
) -> FullTraining:
    """Train ``arch`` (initialised from ``config.seed``) on ``data.train``, test once, write ``out``.

    ``out`` receives weights.pt (a CPU state_dict, for ``torch.load(weights_only=True)``),
    architecture.yaml and result.json: ``label`` as its ``architecture``, the test
    accuracy, params, MACs, times, every setting and the per-epoch history, the
    test split's class-balanced scores, confusion matrix and most confident
    mistakes (``_test_scores``), the data's description (``describe_data``), then
    ``extra``'s entries. ``measure_latency`` adds ``latency_ms`` measured as a
    search trial does (batch 1, on the CPU, before training), so final and search
    costs compare. ``onnx`` adds model.onnx, checked in onnxruntime
    (``evaluation.deploy``). A diverged run is tested and written all the same; the
    record says so. Refuses, before building, a model too large for memory.
    A training interrupted after some epochs (``out``/training-state.pt, removed
    once result.json is written) continues from there; the record's
    ``resumed_after_epoch`` says after which epoch, 0 when it ran in one go.
    ``init``: a weights.pt of ``arch`` to train on from (a second stage, such as
    weight averaging after a finished schedule); the caller records it in ``extra``.
    When ``data`` holds validation images (held out of ``data.train``), the record's
    ``val_accuracy`` is the trained model's on them (None without), ``val_images`` their count.
    """
    shape = input_shape(data, config)
    check_memory(
        arch,
        shape,
        data.num_classes,
        batch_size=config.batch_size,
        limit_bytes=memory_limit,
        device=resolve_device(config.device).type,
    )
    torch.manual_seed(config.seed)
    model = build_model(arch, shape, data.num_classes)
    if init is not None:
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
    latency_ms = profile.measure_latency(model, shape).ms if measure_latency else None
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / STATE_FILE
    result = train(model, data, config, on_epoch=on_epoch, on_progress=on_progress, state_file=state_file)
    eval_started = time.perf_counter()
    # One pass over the test images gives the accuracy, the class-balanced scores and the confusion matrix.
    probabilities = predict_probabilities(model, data.test[0], config, mean=data.mean, std=data.std).numpy()
    labels = data.test[1].numpy()
    scores = class_scores(labels, probabilities)
    test_seconds = time.perf_counter() - eval_started
    # The trained model's (after weight averaging too) on images held out of training, if any:
    # what a choice among final models may read, since the test accuracy must choose nothing.
    val_accuracy = evaluate(model, *data.val, config, mean=data.mean, std=data.std) if len(data.val[1]) else None
    seconds = time.perf_counter() - started + result.resumed_seconds

    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    buffer = io.BytesIO()  # torch.save to a file says "unexpected pos" for a full disk; this names the file
    torch.save(weights, buffer)
    write_bytes(out / WEIGHTS_FILE, buffer.getvalue())
    save_architecture(arch, out / "architecture.yaml")
    if onnx:
        export_onnx(model, out / "model.onnx", shape, metadata=dataset_metadata(data))
    record = _record(label, arch, data, config, result, shape, scores.accuracy, seconds, test_seconds, model)
    record.update(_test_scores(scores, labels, probabilities))
    record.update(val_accuracy=val_accuracy, val_images=len(data.val[1]))
    if latency_ms is not None:
        record["latency_ms"] = latency_ms
    record.update(extra or {})
    # result.json last, and whole: its presence is what marks the job finished.
    with atomic_write(out / RESULT_FILE) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")
    state_file.unlink(missing_ok=True)
    return FullTraining(record=record, test_seconds=test_seconds)


def _record(
    label: str,
    arch: Architecture,
    data: DataSplits,
    config: TrainConfig,
    result: TrainResult,
    shape: tuple[int, int, int],
    test_accuracy: float,
    seconds: float,
    test_seconds: float,
    model: torch.nn.Module,
) -> dict[str, Any]:
    """What result.json holds: the outcome, the sizes, the times and every setting used."""
    return {
        "architecture": label,
        "dataset": data.name,
        "test_accuracy": test_accuracy,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count(arch, shape, data.num_classes).macs,
        "input_size": list(shape),
        "epochs": result.epochs_run,
        "seconds": seconds,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds + test_seconds,
        "train_images": round(config.train_fraction * len(data.train[1])),
        "test_images": len(data.test[1]),
        "device": result.device,
        "precision": result.precision,
        "diverged": result.diverged,
        "stopped_reason": result.stopped_reason,
        "resumed_after_epoch": result.resumed_after_epoch,
        "settings": dataclasses.asdict(config),
        "history": [dataclasses.asdict(report) for report in result.epochs],
        "data": describe_data(data),  # what search predict and search onnx prepare new images by
    }


def _test_scores(scores: ClassScores, labels: Any, probabilities: Any) -> dict[str, Any]:
    """The test split's class-balanced scores, each class's accuracy, the confusion matrix (row: the
    true class, column: the predicted one) and the most confident mistakes: ``index`` is the image's
    position in the test split (``data.test``; a source's cache row ``ranges["test"][0] + index``),
    ``true`` and ``predicted`` class indices, ``probability`` the predicted class's."""
    predicted = probabilities.argmax(axis=1)
    wrong = [int(i) for i in (predicted != labels).nonzero()[0]]
    wrong.sort(key=lambda i: -float(probabilities[i, predicted[i]]))  # stable: ties keep the split's order
    return {
        "test_scores": scores.metrics(),
        "test_per_class_accuracy": scores.per_class_accuracy,
        "confusion_matrix": scores.confusion,
        "misclassified": [
            {
                "index": i,
                "true": int(labels[i]),
                "predicted": int(predicted[i]),
                "probability": round(float(probabilities[i, predicted[i]]), 6),
            }
            for i in wrong[:MISCLASSIFIED_KEPT]
        ],
    }


# --- many jobs, resumable -----------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One (architecture, seed) training of a plan, and the folder its files go to."""

    name: str  # how progress lines name it, e.g. "trial-3 seed 1"
    arch: Architecture
    seed: int
    out: Path
    extra: dict[str, Any] = field(default_factory=dict)
    init: Path | None = None  # weights.pt to start from instead of a fresh initialisation

    @property
    def done(self) -> bool:
        return (self.out / RESULT_FILE).is_file()


class JobReporter(Protocol):
    """What shows the progress of ``run_jobs``: the command line's display, or nothing."""

    def begin(self, jobs: Sequence[Job]) -> None: ...

    def job_started(self, job: Job) -> None: ...

    def on_epoch(self, report: EpochReport) -> bool: ...

    def job_finished(self, job: Job, training: FullTraining) -> None: ...


def run_jobs(
    jobs: Sequence[Job],
    data: DataSplits,
    config: TrainConfig,
    *,
    memory_limit: float | None = None,
    reporter: JobReporter | None = None,
    after_job: Callable[[], None] | None = None,
    onnx: bool = False,
) -> list[dict[str, Any]]:
    """Train every job not done yet with ``config`` at the job's seed; the records of all, in order.

    A done job (its result.json exists) is read, not retrained, once its
    architecture and recipe are checked to be the ones asked for: a folder
    trained otherwise is refused with a ``UsageError`` before anything trains,
    since mixing it in would make means and comparisons meaningless.
    ``after_job`` runs after each trained job (to rewrite a summary table);
    ``onnx`` writes each model's model.onnx too. Ctrl-C or SIGTERM stops it
    with a KeyboardInterrupt (``search.errors.Terminated`` for SIGTERM) once
    the last whole epoch is saved; the command line exits 130 or 143.
    """
    for job in jobs:
        if job.done:
            _check_kept(job, config, held_out=len(data.val[1]))
        elif job.init is not None:
            _check_init(job, job.init, held_out=len(data.val[1]))
    if reporter is not None:
        reporter.begin(jobs)
    # SIGTERM (Slurm, Kubernetes) stops the trainings as Ctrl-C does: the job at hand
    # keeps its last whole epoch in its training state, and the next run resumes it.
    with sigterm_as_interrupt():
        for job in jobs:
            if job.done:
                continue
            if reporter is not None:
                reporter.job_started(job)
            training = train_and_test(
                job.arch,
                data,
                dataclasses.replace(config, seed=job.seed),
                job.out,
                label=job.name,
                memory_limit=memory_limit,
                measure_latency=True,
                onnx=onnx,
                extra={**job.extra, "seed": job.seed},
                on_epoch=None if reporter is None else reporter.on_epoch,
                init=job.init,
            )
            if reporter is not None:
                reporter.job_finished(job, training)
            if after_job is not None:
                after_job()
    return [read_result(job.out) for job in jobs]


def read_result(folder: Path) -> dict[str, Any]:
    """The record in ``folder``'s result.json."""
    return json.loads((folder / RESULT_FILE).read_text())


def _check_init(job: Job, init: Path, *, held_out: int) -> None:
    """Refuse, before anything trains, a start (``init``, the job's weights) that is missing, of another
    architecture, or that trained on other images than this training holds out (its validation accuracy
    would have seen them)."""
    if not init.is_file():
        raise UsageError(f"{init} does not exist: {job.name} has no weights to start from")
    kept = init.parent / "architecture.yaml"
    if not kept.is_file() or load_architecture(kept) != job.arch:
        raise UsageError(f"{init.parent} holds another architecture than {job.name}; it cannot start it")
    _check_held_out(init.parent, held_out)


def _check_kept(job: Job, config: TrainConfig, *, held_out: int) -> None:
    """Refuse a finished job trained on another architecture, recipe or validation split than asked."""
    where = job.out
    if load_architecture(where / "architecture.yaml") != job.arch:
        raise UsageError(f"{where} holds another architecture than {job.name}; remove that folder to retrain it")
    _check_held_out(where, held_out)
    kept = with_defaults(read_result(where).get("settings", {}))
    differs = differences(kept, dataclasses.asdict(config), RECIPE_FIELDS)
    if differs:
        raise UsageError(
            f"{where} was trained with {', '.join(differs)}; pass the same settings, or remove it to retrain"
        )


def _check_held_out(where: Path, held_out: int) -> None:
    """Refuse results trained with another number of training images held out for validation."""
    result = where / RESULT_FILE
    kept = read_result(where).get("val_images", 0) if result.is_file() else held_out
    if kept != held_out:
        raise UsageError(
            f"{where} was trained with {kept} training images held out for validation, not {held_out}; "
            "pass the same validation size, or remove it to retrain"
        )
