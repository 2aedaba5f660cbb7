"""Brief, fast training: the loop every search trial runs, so its speed is the search's.

What makes it fast: the data already sits in memory (on the device, for CUDA)
as uint8 and is turned into a batch by a few tensor operations
(``evaluation.data.BatchPipeline``); channels_last memory; autocast to bf16
(fp16 with loss scaling where bf16 is missing) on CUDA, and to bf16 on CPUs
that have native bf16 instructions (AVX-512 BF16 or AMX), which trains about
twice as fast there at the same accuracy; no host synchronisation per batch
(losses and correct counts are summed on the device and read every
``check_every`` steps, which is also when a NaN or inf loss is caught).

``train`` calls ``on_epoch`` after every epoch with the validation accuracy,
and ``on_checkpoint`` at chosen counts of training images seen (the rungs of
successive halving, which need not fall on an epoch's end); either returning
True stops the run (how a search prunes a trial). With a ``state_file``, a
long run survives a crash or Ctrl-C: the whole state is saved after every
epoch, and the next call with the same file continues after the last one.
``TrainConfig.swa_epochs`` ends a run with stochastic weight averaging
(``torch.optim.swa_utils``): the mean of its last epochs' weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import swa_utils

from evaluation.atomic import write_bytes
from evaluation.data import BatchPipeline, DataSplits
from evaluation.errors import ConfigError, differences
from evaluation.feeding import HostImages, RowSubset, batches_of, place_images

__all__ = [
    "Checkpoint",
    "EpochReport",
    "Predictions",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "planned_images",
    "predict_probabilities",
    "resolve_device",
    "resolve_precision",
    "train",
    "with_defaults",
]

SCHEDULES = ("cosine", "onecycle", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; the fidelity knobs are ``epochs``,
    ``train_fraction`` and ``resize``."""

    epochs: int = 10
    train_fraction: float = 1.0
    batch_size: int = 128
    lr: float = 0.1  # the peak rate: one-cycle's maximum, cosine's start
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # Smith & Topin (2019): fast convergence in few epochs; constant: the d2l book's
    label_smoothing: float = 0.1  # Szegedy et al. (2016)
    resize: int | None = None  # square side in pixels; None keeps the dataset's size
    augment: bool = True
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    channels_last: bool = True
    eval_batch_size: int = 512
    check_every: int = 50  # steps between reads of the summed loss: the only host syncs
    swa_epochs: int = 0  # average the weights of the last this many epochs (SWA, Izmailov et al. 2018); 0: off

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (0.0 < self.train_fraction <= 1.0, f"train_fraction must be in (0, 1], got {self.train_fraction}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (0.0 <= self.label_smoothing < 1.0, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.resize is None or self.resize >= 1, f"resize must be >= 1 or None, got {self.resize}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.check_every >= 1, f"check_every must be >= 1, got {self.check_every}"),
            (
                0 <= self.swa_epochs <= self.epochs,
                f"swa_epochs must be in [0, epochs={self.epochs}], got {self.swa_epochs}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass(frozen=True)
class EpochReport:
    """One epoch: mean training loss and accuracy (augmented batches), validation
    accuracy (None without a validation set), training speed and times."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float | None
    images_per_second: float
    seconds: float
    eval_seconds: float


@dataclass(frozen=True)
class Checkpoint:
    """Validation accuracy after ``images`` training images (in ``epoch``, perhaps mid-way)."""

    images: int
    epoch: int
    val_accuracy: float | None


@dataclass
class TrainResult:
    """The outcome of ``train``. A NaN or inf loss stops the run with
    ``diverged`` set and the reason in ``stopped_reason``; it never raises.

    ``val_predictions``: the last validation pass's, when it was of the weights
    ``train`` leaves in the model (None after weight averaging, a stop inside an
    epoch, or a resumed run that trained nothing), so that the class-balanced
    scores of the trained model cost no second pass over the validation split.
    """

    val_accuracies: list[float]
    epochs_run: int
    train_seconds: float
    eval_seconds: float
    device: str
    precision: str
    stopped_reason: str | None = None
    diverged: bool = False
    epochs: list[EpochReport] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    resumed_after_epoch: int = 0  # the epochs a state_file already held when this call began
    resumed_seconds: float = 0.0  # the training and validation time of those epochs, timed by earlier calls
    val_predictions: Predictions | None = None


def with_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """Saved ``TrainConfig`` settings, those added since at their defaults: how such a run was trained."""
    return {**dataclasses.asdict(TrainConfig()), **settings}


# --- device and precision ----------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; asking for absent CUDA is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but torch finds no CUDA device")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPUs where bf16 autocast is a speed-up.

    Elsewhere oneDNN emulates bf16 and it is slower than fp32.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to tell, stay with fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    ``auto``: bf16 on CUDA devices that support it, else fp16 (with a
    GradScaler); bf16 on CPUs with native bf16, else fp32.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if _cpu_has_native_bf16() else None


def _precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to ``dtype`` on ``device``; disabled (plain fp32) when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Whole datasets move once; pinned memory lets the copy run asynchronously."""
    if device.type == "cpu":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def _schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "onecycle":
        # Momentum stays at the configured value instead of cycling, so the knob means what it says.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total_steps, cycle_momentum=False
        )
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warmup = max(1, total_steps // 20)  # 5% linear warm-up keeps BN nets stable at a high rate

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --- evaluation --------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    """A split's predicted classes and, with two classes, the class-1 probabilities: what
    ``evaluation.scores`` needs for every class-balanced score."""

    classes: torch.Tensor  # (N,) int64, on the CPU
    num_classes: int
    positive: torch.Tensor | None = None  # (N,) float32 on the CPU, two classes only

    def accuracy(self, labels: torch.Tensor) -> float:
        return (self.classes == labels.cpu()).sum().item() / len(labels)


def _predict(
    model: nn.Module,
    images: torch.Tensor | RowSubset | HostImages,
    count: int,
    pipeline: BatchPipeline,
    batch_size: int,
    dtype: torch.dtype | None,
) -> Predictions:
    """The model's predictions for ``count`` images, gathered on the device and read once."""
    was_training = model.training
    model.eval()
    classes, positive, num_classes = [], [], 0
    with torch.no_grad(), _autocast(pipeline.mean.device, dtype):
        for start in range(0, count, batch_size):
            logits = model(pipeline(images[start : start + batch_size], augment=False))
            num_classes = logits.shape[1]
            classes.append(logits.argmax(1))
            if num_classes == 2:
                positive.append(logits.float().softmax(1)[:, 1])
    model.train(was_training)
    return Predictions(torch.cat(classes).cpu(), num_classes, torch.cat(positive).cpu() if positive else None)


def _place_model(model: nn.Module, device: torch.device, *, channels_last: bool) -> None:
    """``model`` on ``device``, its weights in the memory format of the batches it is fed. Two calls:
    torch takes ``to(device, memory_format=...)`` in one, but its stubs do not declare it."""
    model.to(device)
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> float:
    """Accuracy of ``model`` on uint8 ``images``, preprocessed as ``config`` trains
    (device, precision, resize), normalised with the training set's ``mean``/``std``."""
    if len(labels) == 0:
        raise ValueError("evaluate needs at least one image, got 0")
    device = resolve_device(config.device)
    dtype = resolve_precision(config.precision, device)
    _place_model(model, device, channels_last=config.channels_last)
    pipeline = BatchPipeline(
        mean=mean, std=std, device=device, resize=config.resize, channels_last=config.channels_last
    )
    return _predict(model, place_images(images, device), len(labels), pipeline, config.eval_batch_size, dtype).accuracy(
        labels
    )


def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    config: TrainConfig,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> torch.Tensor:
    """Class probabilities (N, classes) of uint8 ``images`` on the CPU, preprocessed as ``evaluate`` does.

    The softmax is taken in fp32 whatever the autocast precision of the logits.
    """
    device = resolve_device(config.device)
    dtype = resolve_precision(config.precision, device)
    _place_model(model, device, channels_last=config.channels_last)
    pipeline = BatchPipeline(
        mean=mean, std=std, device=device, resize=config.resize, channels_last=config.channels_last
    )
    placed = place_images(images, device)
    was_training = model.training
    model.eval()
    parts = []
    with torch.no_grad(), _autocast(device, dtype):
        for start in range(0, len(images), config.eval_batch_size):
            logits = model(pipeline(placed[start : start + config.eval_batch_size], augment=False))
            parts.append(torch.softmax(logits.float(), dim=1).cpu())
    model.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, 0)


# --- training ----------------------------------------------------------------------


def train(
    model: nn.Module,
    data: DataSplits,
    config: TrainConfig,
    *,
    on_epoch: Callable[[EpochReport], bool] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[Checkpoint], bool] | None = None,
    state_file: Path | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data.train`` and validate after each epoch.

    ``on_epoch(report)`` returning True stops the run. So does
    ``on_checkpoint(checkpoint)``, called after the first step at which at
    least each of ``checkpoints`` training images were seen (counts past
    ``planned_images`` are never reached). ``on_progress(epoch,
    step, steps_per_epoch)`` is called every ``check_every`` steps, for
    progress bars. With the same seed, model initialisation and thread count,
    a CPU run is repeatable: the shuffling, the subset and the augmentation
    draw from generators seeded here.

    ``state_file``: after each epoch, the weights, the optimiser, the schedule,
    every generator and the result so far are written there (replacing the
    last, never half-written). When it exists at the start, the run continues
    after the epoch it holds and ends as the uninterrupted run would (on the
    CPU with the same thread count, to the bit); a file saved with another
    ``config`` is refused (``ConfigError``). The caller removes it when done.

    ``config.swa_epochs``: the weights at the end of each of the last
    ``swa_epochs`` epochs are averaged, and a run that ends all its epochs
    leaves ``model`` holding that average, its BN statistics recomputed on the
    training images (``torch.optim.swa_utils``). The validation accuracy of each
    epoch is the last weights', not the average's.
    """
    trainer = _Trainer(model, data, config, checkpoints, on_checkpoint)
    result = TrainResult(
        val_accuracies=[],
        epochs_run=0,
        train_seconds=0.0,
        eval_seconds=0.0,
        device=str(trainer.device),
        precision=_precision_name(trainer.dtype),
    )
    if state_file is not None and state_file.exists():
        trainer.restore(state_file, result)
    for epoch in range(result.epochs_run + 1, config.epochs + 1):
        result.val_predictions = None  # the weights are about to change
        totals = trainer.train_epoch(epoch, on_progress)
        result.train_seconds += totals.seconds
        result.checkpoints = trainer.reached
        if totals.diverged is not None:
            result.diverged, result.stopped_reason = True, totals.diverged
            break
        if totals.stopped:
            result.stopped_reason = f"stopped by on_checkpoint at {trainer.reached[-1].images} images"
            break
        if trainer.averaged is not None and epoch > config.epochs - config.swa_epochs:
            trainer.averaged.update_parameters(trainer.model)
        report = trainer.validate(epoch, totals)
        result.val_predictions = trainer.last_predictions
        _add_epoch(result, report)
        if state_file is not None:
            trainer.save(state_file, result)
        if on_epoch is not None and on_epoch(report):
            result.stopped_reason = f"stopped by on_epoch after epoch {epoch} of {config.epochs}"
            break
    if config.swa_epochs and result.epochs_run == config.epochs and not result.diverged:
        started = time.perf_counter()
        trainer.adopt_average()
        result.train_seconds += time.perf_counter() - started
        result.val_predictions = None  # of the last weights, not the average
    return result


@dataclass(frozen=True)
class _EpochTotals:
    """What one pass over the training data leaves: sums still on the device, and the time."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    seconds: float
    diverged: str | None  # why the pass stopped early, when the loss became NaN or inf
    stopped: bool = False  # on_checkpoint asked to stop


class _Trainer:
    """One run's prepared state (data on the device, optimiser, schedule) and the loop's steps.

    The seeds are drawn in ``__init__`` and the generators advance in a fixed
    order (the subset, then one permutation per epoch), so a run repeats.
    """

    def __init__(
        self,
        model: nn.Module,
        data: DataSplits,
        config: TrainConfig,
        checkpoints: Sequence[int] = (),
        on_checkpoint: Callable[[Checkpoint], bool] | None = None,
    ) -> None:
        self.model, self.config = model, config
        self.pending = sorted(set(checkpoints), reverse=True)  # the next one last, to pop
        self.on_checkpoint = on_checkpoint
        self.reached: list[Checkpoint] = []
        self._last_validation: tuple[int, Predictions | None] | None = None  # (images seen, predictions)
        self.device = resolve_device(config.device)
        self.dtype = resolve_precision(config.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # shapes are fixed within a run: let cuDNN pick its fastest kernels
        torch.manual_seed(config.seed)  # dropout draws from the global generator
        self.order = torch.Generator().manual_seed(config.seed)
        self.augmentation = torch.Generator(device=self.device).manual_seed(config.seed)

        self.images, self.labels = _training_images(data, config.train_fraction, self.order, self.device)
        self.val_images, self.val_labels = place_images(data.val[0], self.device), _to_device(data.val[1], self.device)
        _place_model(model, self.device, channels_last=config.channels_last)
        self.pipeline = BatchPipeline(
            mean=data.mean,
            std=data.std,
            device=self.device,
            resize=config.resize,
            flip=data.flip,
            channels_last=config.channels_last,
            generator=self.augmentation,
        )
        self.batch_size = min(config.batch_size, len(self.labels))
        self.steps = len(self.labels) // self.batch_size  # the last partial batch is dropped: BN needs > 1 image
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.scheduler = _schedule(self.optimizer, config, config.epochs * self.steps)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.dtype == torch.float16 and self.device.type == "cuda"
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.averaged = swa_utils.AveragedModel(model) if config.swa_epochs else None

    def adopt_average(self) -> None:
        """Give the model the averaged weights, then BN statistics of one pass over the training images.

        The averaged BN statistics belong to none of the averaged weights, so
        they are recomputed, as SWA prescribes, on batches augmented as in training.
        """
        if self.averaged is None:
            raise ValueError("no weights were averaged: adopt_average needs swa_epochs > 0")
        self.model.load_state_dict(self.averaged.module.state_dict())
        batches = (
            self.pipeline(self.images[start : start + self.batch_size], augment=self.config.augment)
            for start in range(0, self.steps * self.batch_size, self.batch_size)
        )
        with torch.no_grad(), _autocast(self.device, self.dtype):
            swa_utils.update_bn(batches, self.model)

    def train_epoch(self, epoch: int, on_progress: Callable[[int, int, int], None] | None) -> _EpochTotals:
        """One shuffled pass; the summed loss is read every ``check_every`` steps, and only then."""
        self.model.train()
        start = time.perf_counter()
        order = torch.randperm(len(self.labels), generator=self.order)
        permutation = _to_device(order, self.device)
        spans = [slice((step - 1) * self.batch_size, step * self.batch_size) for step in range(1, self.steps + 1)]
        # Images on the host are gathered by CPU indices (no device sync); images on the device by device ones.
        gather = order if isinstance(self.images, HostImages) else permutation
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        diverged, stopped = None, False
        batches = contextlib.closing(batches_of(self.images, [gather[span] for span in spans]))
        with batches as images:
            for step, (span, batch) in enumerate(zip(spans, images), start=1):
                loss, hits = self._step(batch, permutation[span])
                loss_sum += loss
                correct += hits
                seen = ((epoch - 1) * self.steps + step) * self.batch_size
                at_checkpoint = bool(self.pending) and self.pending[-1] <= seen
                if step % self.config.check_every == 0 or step == self.steps or at_checkpoint:
                    diverged = _divergence(loss_sum, epoch, step, self.steps)
                    if diverged is not None:
                        break
                    if on_progress is not None:
                        on_progress(epoch, step, self.steps)
                if at_checkpoint and self._checkpoint(epoch, seen):
                    stopped = True
                    break
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return _EpochTotals(loss_sum, correct, time.perf_counter() - start, diverged, stopped)

    def _checkpoint(self, epoch: int, seen: int) -> bool:
        """Validate at ``seen`` images for every checkpoint it passes; True when one asks to stop."""
        while self.pending and self.pending[-1] <= seen:
            self.pending.pop()
        self.reached.append(Checkpoint(images=seen, epoch=epoch, val_accuracy=self._val_accuracy(seen)))
        return self.on_checkpoint is not None and self.on_checkpoint(self.reached[-1])

    def _val_accuracy(self, seen: int) -> float | None:
        """Validation accuracy after ``seen`` images, computed once even when a checkpoint ends an epoch."""
        if self._last_validation is None or self._last_validation[0] != seen:
            predictions = (
                _predict(
                    self.model, self.val_images, len(self.val_labels), self.pipeline, self.config.eval_batch_size,
                    self.dtype,
                )
                if len(self.val_labels)
                else None
            )  # fmt: skip
            self._last_validation = (seen, predictions)
        predictions = self._last_validation[1]
        return None if predictions is None else predictions.accuracy(self.val_labels)

    @property
    def last_predictions(self) -> Predictions | None:
        """The last validation pass's predictions (None before one, or without validation images)."""
        return None if self._last_validation is None else self._last_validation[1]

    def _step(self, images: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on ``images``, the uint8 batch at ``index``; its loss and correct count stay on the device."""
        x, y = self.pipeline(images, augment=self.config.augment), self.labels[index]
        with _autocast(self.device, self.dtype):
            logits = self.model(x)
        loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def save(self, path: Path, result: TrainResult) -> None:
        """Write everything the next epoch depends on, and ``result`` so far, through a temporary file."""
        state = {
            "config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "averaged": None if self.averaged is None else self.averaged.state_dict(),
            "generators": {
                "order": self.order.get_state(),
                "augmentation": self.augmentation.get_state(),
                "global": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            },
            "result": {
                "val_accuracies": result.val_accuracies,
                "epochs_run": result.epochs_run,
                "train_seconds": result.train_seconds,
                "eval_seconds": result.eval_seconds,
                "epochs": [dataclasses.asdict(report) for report in result.epochs],
                "checkpoints": [dataclasses.asdict(checkpoint) for checkpoint in result.checkpoints],
            },
        }
        buffer = io.BytesIO()  # torch.save to a file says "unexpected pos" for a full disk; this names the file
        torch.save(state, buffer)
        write_bytes(path, buffer.getvalue())

    def restore(self, path: Path, result: TrainResult) -> None:
        """Continue from the state ``save`` wrote to ``path``: the model, the loop and ``result``."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        differs = differences(with_defaults(state["config"]), dataclasses.asdict(self.config))
        if differs:
            raise ConfigError(
                f"{path} holds a run trained with {', '.join(differs)}; pass the same settings, or remove it to start over"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.averaged is not None:
            self.averaged.load_state_dict(state["averaged"])
        generators = state["generators"]
        self.order.set_state(generators["order"])
        self.augmentation.set_state(generators["augmentation"])
        torch.set_rng_state(generators["global"])
        if generators["cuda"]:
            torch.cuda.set_rng_state_all(generators["cuda"])
        kept = state["result"]
        result.val_accuracies = list(kept["val_accuracies"])
        result.epochs_run = result.resumed_after_epoch = kept["epochs_run"]
        result.train_seconds, result.eval_seconds = kept["train_seconds"], kept["eval_seconds"]
        result.resumed_seconds = result.train_seconds + result.eval_seconds
        result.epochs = [EpochReport(**report) for report in kept["epochs"]]
        self.reached = [Checkpoint(**checkpoint) for checkpoint in kept["checkpoints"]]
        result.checkpoints = self.reached
        seen = result.epochs_run * self.steps * self.batch_size
        self.pending = [images for images in self.pending if images > seen]

    def validate(self, epoch: int, totals: _EpochTotals) -> EpochReport:
        """The validation accuracy after ``epoch`` (None without a validation set), with the epoch's figures."""
        start = time.perf_counter()
        images = self.steps * self.batch_size
        val_accuracy = self._val_accuracy(epoch * images)
        eval_seconds = time.perf_counter() - start
        return EpochReport(
            epoch=epoch,
            train_loss=totals.loss_sum.item() / self.steps,
            train_accuracy=totals.correct.item() / images,
            val_accuracy=val_accuracy,
            images_per_second=images / totals.seconds,
            seconds=totals.seconds,
            eval_seconds=eval_seconds,
        )


def planned_images(data: DataSplits, config: TrainConfig) -> int:
    """Training images a full run of ``config`` sees: whole batches of its subset, every epoch."""
    kept = _subset_size(len(data.train[1]), config.train_fraction)
    batch = min(config.batch_size, kept)
    return config.epochs * (kept // batch) * batch


def _subset_size(images: int, fraction: float) -> int:
    return images if fraction >= 1.0 else max(1, round(fraction * images))


def _training_images(
    data: DataSplits, fraction: float, order: torch.Generator, device: torch.device
) -> tuple[torch.Tensor | RowSubset | HostImages, torch.Tensor]:
    """The training split, or a seeded subset of ``fraction`` of it in its original order, where
    training reads it (``evaluation.feeding``: on the device when it fits).

    A subset's images are not copied out: a ``RowSubset`` looks its rows up
    batch by batch, so a subset of a mapped cache pages from disk as the
    whole split does (only the labels, 8 bytes an image, are copied).
    """
    images, labels = data.train
    if fraction < 1.0:
        keep = _subset_size(len(labels), fraction)
        subset = torch.randperm(len(labels), generator=order)[:keep].sort().values
        return place_images(RowSubset(images, subset), device), _to_device(labels[subset], device)
    return place_images(images, device), _to_device(labels, device)


def _divergence(loss_sum: torch.Tensor, epoch: int, step: int, steps: int) -> str | None:
    """Why the run must stop, when the summed loss is NaN or inf (the sum carries any since the last check)."""
    if torch.isfinite(loss_sum):
        return None
    return f"training loss became {loss_sum.item()} in epoch {epoch} by step {step} of {steps}"


def _add_epoch(result: TrainResult, report: EpochReport) -> None:
    """Count a validated epoch into ``result``."""
    result.eval_seconds += report.eval_seconds
    result.epochs_run = report.epoch
    if report.val_accuracy is not None:
        result.val_accuracies.append(report.val_accuracy)
    result.epochs.append(report)
