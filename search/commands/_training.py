"""The training flags and progress displays shared by ``train``, ``ablate`` and ``finalize``.

A recipe (``--recipe``) names a whole training method at once; each flag given
explicitly overrides its value. ``toolkit`` is ``TrainConfig``'s defaults
(one-cycle, momentum, weight decay, label smoothing, augmentation); ``d2l`` is
the d2l book's (Dive into Deep Learning, 8.7 DenseNet): plain SGD at a
constant 0.1, batch 256, no augmentation, no label smoothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from tqdm import tqdm

from evaluation import EpochReport, TrainConfig, resolve_device
from evaluation.data import DATASETS, DataSplits, load_dataset
from evaluation.training import PRECISIONS, SCHEDULES
from search.commands._common import (
    add_device_argument,
    add_memory_limit_argument,
    checked_number,
    non_negative_int,
    positive_float,
    positive_int,
    unit_fraction,
)
from search.commands._progress import format_duration
from search.commands.data import add_source_arguments, source_options
from search.errors import UsageError
from search.execution.workers import use_device, worker_devices
from search.post.full_training import STATE_FILE, FullTraining, Job

__all__ = [
    "RECIPES",
    "SWA_HELP",
    "JobProgress",
    "add_training_arguments",
    "load_training_data",
    "print_epoch",
    "print_progress",
    "recipe_settings",
    "train_config",
    "use_training_device",
]

RECIPES: dict[str, dict[str, Any]] = {
    "toolkit": {},
    "d2l": {
        "lr": 0.1,
        "batch_size": 256,
        "schedule": "constant",
        "momentum": 0.0,
        "weight_decay": 0.0,
        "label_smoothing": 0.0,
        "augment": False,
    },
}
# The TrainConfig fields a recipe sets, each also a flag of its own.
RECIPE_FLAGS = (
    "lr",
    "batch_size",
    "schedule",
    "momentum",
    "weight_decay",
    "label_smoothing",
    "augment",
    "swa_epochs",
)
SWA_HELP = (
    "Average the weights of the last N epochs (stochastic weight averaging, Izmailov et al. 2018) and "
    "recompute BN statistics: the average is the trained model"
)


_below_one = checked_number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")  # momentum, label smoothing
_non_negative_float = checked_number(float, lambda v: 0 <= v < math.inf, "a number >= 0")


def _default(name: str) -> str:
    """``(default: X; d2l recipe: Y)`` for a recipe flag's help."""
    value = getattr(TrainConfig(), name)
    return f"(default: {_shown(value)}; d2l recipe: {_shown(RECIPES['d2l'].get(name, value))})"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The data set, the budget, the recipe and its flags, the device, the data folder and --memory-limit."""
    defaults = TrainConfig()
    parser.add_argument(
        "--data",
        "--dataset",
        dest="data",
        default="fashion_mnist",
        metavar="SOURCE",
        help=f"A built-in ({', '.join(DATASETS)}) or your images: folder:PATH, csv:FILE or npz:FILE, "
        "trained on the training and validation images, tested on the test images (default: fashion_mnist).",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=defaults.epochs, help=f"Epochs (default: {defaults.epochs})."
    )
    parser.add_argument(
        "--train-fraction",
        type=unit_fraction,
        default=1.0,
        metavar="F",
        help="Train on this seeded fraction of the training set, for quick runs (default: 1).",
    )
    parser.add_argument(
        "--resize", type=positive_int, default=None, metavar="PX", help="Square side to resize images to."
    )
    parser.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default="toolkit",
        help="The training method: toolkit (one-cycle, momentum 0.9, weight decay 5e-4, label smoothing 0.1, "
        "crop and flip augmentation) or d2l (the d2l book's: plain SGD, constant lr 0.1, batch 256, no "
        "augmentation, no label smoothing). A flag below given explicitly overrides it (default: toolkit).",
    )
    parser.add_argument("--batch-size", type=positive_int, default=None, help=f"Batch size {_default('batch_size')}.")
    parser.add_argument("--lr", type=positive_float, default=None, help=f"Peak learning rate {_default('lr')}.")
    parser.add_argument(
        "--schedule", choices=SCHEDULES, default=None, help=f"Learning-rate schedule {_default('schedule')}."
    )
    parser.add_argument("--momentum", type=_below_one, default=None, help=f"SGD momentum {_default('momentum')}.")
    parser.add_argument(
        "--weight-decay", type=_non_negative_float, default=None, help=f"Weight decay {_default('weight_decay')}."
    )
    parser.add_argument(
        "--label-smoothing", type=_below_one, default=None, help=f"Label smoothing {_default('label_smoothing')}."
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"Random crop (and flip where the data set allows it) {_default('augment')}.",
    )
    parser.add_argument(
        "--swa-epochs", type=non_negative_int, default=None, metavar="N", help=f"{SWA_HELP} {_default('swa_epochs')}."
    )
    add_device_argument(parser)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help="Autocast precision (default: auto, bf16 on CUDA and on CPUs with native bf16, else fp32 or fp16).",
    )
    parser.add_argument("--data-root", default=None, metavar="DIR", help="Look for the dataset here first.")
    add_memory_limit_argument(parser)
    add_source_arguments(parser, resize_is_policy=False)  # --resize PX is the network's input side here


def load_training_data(args: argparse.Namespace, *, seed: int = 0) -> DataSplits:
    """The data of ``add_training_arguments``' flags, its validation images trained on (``validation_size=0``)."""
    return load_dataset(
        args.data,
        root=args.data_root,
        validation_size=0,
        seed=seed,
        options=source_options(args),
        cache_dir=args.cache_dir,
    )


def recipe_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe's TrainConfig fields, each replaced by its flag where one was given."""
    settings = dict(RECIPES[args.recipe])
    settings.update({name: getattr(args, name) for name in RECIPE_FLAGS if getattr(args, name) is not None})
    return settings


def train_config(args: argparse.Namespace, *, seed: int, resize: int | None) -> TrainConfig:
    """The TrainConfig the flags ask for; a setting out of range is a ``UsageError``."""
    try:
        config = TrainConfig(
            epochs=args.epochs,
            train_fraction=args.train_fraction,
            resize=resize,
            device=use_training_device(args.device),
            precision=args.precision,
            seed=seed,
            **recipe_settings(args),
        )
        resolve_device(config.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return config


def use_training_device(device: str) -> str:
    """Check ``device`` as ``search run`` does (``cuda:N`` must be a GPU torch finds), make
    ``cuda:N`` the current device, and return the ``TrainConfig`` device it is: ``cuda`` for it."""
    (device,) = worker_devices(device, 1)
    use_device(device)
    return "cuda" if device.startswith("cuda:") else device


# --- progress ----------------------------------------------------------------------


def print_progress(batch_size: int) -> Callable[[int, int, int], None]:
    """A one-line progress display on stderr: epoch, step, images/s and the epoch's ETA.

    The rate is measured from the first report of each epoch, so it leaves out
    the epoch's start-up.
    """
    state = {"epoch": 0, "start": 0.0, "first": 0}

    def show(epoch: int, step: int, steps: int) -> None:
        now = time.perf_counter()
        if epoch != state["epoch"]:
            state.update(epoch=epoch, start=now, first=step)
            return
        rate = (step - state["first"]) / max(now - state["start"], 1e-9)
        eta = (steps - step) / rate if rate else 0.0
        print(
            f"\repoch {epoch}  step {step}/{steps}  {rate * batch_size:.0f} images/s  epoch ETA {eta:.0f} s ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def print_epoch(epochs: int) -> Callable[[EpochReport], bool]:
    """One line per epoch on stderr; never asks to stop. The ETA's rate is over the
    epochs this call timed, so it holds for a run resumed part-way too."""
    started = time.perf_counter()
    shown = 0

    def show(report: EpochReport) -> bool:
        nonlocal shown
        shown += 1
        elapsed = time.perf_counter() - started
        eta = elapsed / shown * (epochs - report.epoch)
        print(
            f"\repoch {report.epoch}/{epochs}  loss {report.train_loss:.4f}  "
            f"train accuracy {report.train_accuracy:.4f}  {report.images_per_second:.0f} images/s  "
            f"{report.seconds:.0f} s  ETA {eta:.0f} s",
            file=sys.stderr,
        )
        return False

    return show


class JobProgress:
    """Progress of many trainings (``search.post.full_training.run_jobs``) on stderr, with the ETA of all.

    The ETA counts epochs: the mean time of the epochs run so far (tests
    included) times the epochs left in this training and in those not started,
    so it shows from the first epoch on. On a terminal it is a tqdm bar over the
    trainings; elsewhere (CI, a log file) one plain line per epoch and per training.
    """

    def __init__(self, epochs: int, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.stream = stream or sys.stderr  # looked up now, so redirection after import is honoured
        self.bar: tqdm | None = None
        self.total = self.finished = self.waiting = self.epochs_run = self.epoch = 0
        self.current = ""
        self.started = time.monotonic()

    def begin(self, jobs: Sequence[Job]) -> None:
        self.total = len(jobs)
        self.waiting = sum(not job.done for job in jobs)
        self.finished = self.total - self.waiting
        if self.finished:
            self._say(f"{self.finished} of {self.total} trainings already done: kept, not retrained")
        if self.stream.isatty() and self.waiting:
            self.bar = tqdm(total=self.total, initial=self.finished, unit="model", file=self.stream, dynamic_ncols=True)
        self.started = time.monotonic()

    def job_started(self, job: Job) -> None:
        self.current, self.epoch = job.name, 0
        self.waiting -= 1
        if (job.out / STATE_FILE).is_file():
            self._say(f"{job.name}: continuing after the last epoch saved in {job.out / STATE_FILE}")

    def on_epoch(self, report: EpochReport) -> bool:
        self.epochs_run += 1
        self.epoch = report.epoch
        line = (
            f"{self.current}: epoch {report.epoch}/{self.epochs}  loss {report.train_loss:.4f}  "
            f"train accuracy {report.train_accuracy:.4f}  {report.images_per_second:.0f} images/s"
        )
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.current} epoch {report.epoch}/{self.epochs}, ETA {self._eta()}")
        else:
            self._say(f"[{self.finished + 1}/{self.total}] {line}, ETA {self._eta()}")
        return False

    def job_finished(self, job: Job, training: FullTraining) -> None:
        self.finished += 1
        self.epoch = self.epochs
        record = training.record
        line = f"{job.name}: test accuracy {record['test_accuracy']:.4f} ({record['seconds']:.0f} s)"
        if training.diverged:
            line += f"; diverged: {record['stopped_reason']}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.write(line, file=self.stream)
        else:
            left = f", ETA {self._eta()}" if self.finished < self.total else ""
            self._say(f"[{self.finished}/{self.total}] {line}{left}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _eta(self) -> str:
        if not self.epochs_run:
            return "unknown"
        per_epoch = (time.monotonic() - self.started) / self.epochs_run
        left = (self.epochs - self.epoch) + self.epochs * self.waiting
        return format_duration(per_epoch * left)

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
