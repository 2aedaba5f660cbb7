"""``search train``: full training of a preset or exported config, then one test evaluation."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    resolve_device,
    save_architecture,
    smallest_input_side,
    train,
)
from evaluation.data import DATASETS, DataSplits, load_dataset
from evaluation.memory import check_memory
from evaluation.training import DEVICES, PRECISIONS, SCHEDULES
from search.commands._common import add_memory_limit_argument, positive_int
from search.errors import UsageError


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


class TrainCommand:
    help = "Train a preset or an architecture YAML on a whole training set; report test accuracy."
    description = (
        "Train a preset (e.g. d2l_densenet) or an exported architecture YAML on the whole\n"
        "training set, then evaluate once on the test set. Writes into --out the weights\n"
        "(weights.pt, a state_dict for torch.load(weights_only=True)), the architecture\n"
        "(architecture.yaml) and result.json (test accuracy, params, MACs, times, settings).\n\n"
        "The d2l book's run: python -m search train d2l_densenet --resize 96 --epochs 10 \\\n"
        "    --batch-size 256 --lr 0.1\n"
        "Without --resize, images keep their size unless the network cannot take it; then\n"
        "they are resized to the smallest side it can (29 px for the d2l DenseNet)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        defaults = TrainConfig()
        parser.add_argument("architecture", metavar="CONFIG_OR_PRESET", help="A preset name or a YAML file.")
        parser.add_argument(
            "--dataset",
            default="fashion_mnist",
            help=f"One of {', '.join(DATASETS)} (default: fashion_mnist).",
        )
        parser.add_argument(
            "--epochs", type=positive_int, default=defaults.epochs, help=f"Epochs (default: {defaults.epochs})."
        )
        parser.add_argument(
            "--train-fraction",
            type=_fraction,
            default=1.0,
            metavar="F",
            help="Train on this seeded fraction of the training set, for quick runs (default: 1).",
        )
        parser.add_argument(
            "--resize", type=positive_int, default=None, metavar="PX", help="Square side to resize images to."
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=defaults.batch_size,
            help=f"Batch size (default: {defaults.batch_size}).",
        )
        parser.add_argument(
            "--lr", type=_positive_float, default=defaults.lr, help=f"Peak learning rate (default: {defaults.lr})."
        )
        parser.add_argument(
            "--schedule",
            choices=SCHEDULES,
            default=defaults.schedule,
            help=f"Learning-rate schedule (default: {defaults.schedule}).",
        )
        parser.add_argument(
            "--device",
            choices=DEVICES,
            default=defaults.device,
            help="Where to train (default: auto, CUDA if present).",
        )
        parser.add_argument(
            "--precision",
            choices=PRECISIONS,
            default=defaults.precision,
            help="Autocast precision (default: auto, bf16 on CUDA and on CPUs with native bf16, else fp32 or fp16).",
        )
        parser.add_argument("--seed", type=int, default=defaults.seed, help=f"Seed (default: {defaults.seed}).")
        parser.add_argument("--data-root", default=None, metavar="DIR", help="Look for the dataset here first.")
        parser.add_argument(
            "--out", type=Path, default=None, metavar="DIR", help="Output folder (default: runs/<name>)."
        )
        add_memory_limit_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        arch = load_architecture(args.architecture)
        data = load_dataset(args.dataset, root=args.data_root, validation_size=0, seed=args.seed)
        channels, height, _ = data.input_size
        resize = args.resize
        if resize is None:
            side = smallest_input_side(arch, data.input_size, data.num_classes)
            if side != height:
                print(
                    f"note: {args.architecture} cannot take {height} px images; resizing to {side} px "
                    f"(choose with --resize)",
                    file=sys.stderr,
                )
                resize = side
        side = resize or height
        try:
            config = TrainConfig(
                epochs=args.epochs,
                train_fraction=args.train_fraction,
                batch_size=args.batch_size,
                lr=args.lr,
                schedule=args.schedule,
                resize=resize,
                device=args.device,
                precision=args.precision,
                seed=args.seed,
            )
            device = resolve_device(config.device)
        except ValueError as error:
            raise UsageError(str(error)) from None
        input_shape = (channels, side, side)
        check_memory(
            arch,
            input_shape,
            data.num_classes,
            batch_size=config.batch_size,
            limit_bytes=args.memory_limit,
            device=device.type,
        )
        out = args.out or Path("runs") / Path(args.architecture).stem

        torch.manual_seed(args.seed)
        model = build_model(arch, input_shape, data.num_classes)
        started = time.perf_counter()
        progress = _print_progress(min(config.batch_size, len(data.train[1])))
        result = train(model, data, config, on_epoch=_print_epoch(config.epochs), on_progress=progress)
        if result.diverged:
            print(f"\nerror: {result.stopped_reason}", file=sys.stderr)
        eval_started = time.perf_counter()
        test_accuracy = evaluate(model, *data.test, config, mean=data.mean, std=data.std)
        test_seconds = time.perf_counter() - eval_started
        seconds = time.perf_counter() - started
        print(
            f"test accuracy {test_accuracy:.4f} ({len(data.test[1])} images, {test_seconds:.1f} s); "
            f"total {seconds:.0f} s",
            file=sys.stderr,
        )

        out.mkdir(parents=True, exist_ok=True)
        weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
        torch.save(weights, out / "weights.pt")
        save_architecture(arch, out / "architecture.yaml")
        record = _record(args, arch, data, config, result, side, test_accuracy, seconds, test_seconds, model)
        (out / "result.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {out / 'weights.pt'}, {out / 'architecture.yaml'}, {out / 'result.json'}", file=sys.stderr)
        return 1 if result.diverged else 0


def _record(
    args: argparse.Namespace,
    arch: Architecture,
    data: DataSplits,
    config: TrainConfig,
    result: TrainResult,
    side: int,
    test_accuracy: float,
    seconds: float,
    test_seconds: float,
    model: torch.nn.Module,
) -> dict[str, Any]:
    """What result.json holds: the outcome, the sizes, the times and every setting used."""
    channels = data.input_size[0]
    return {
        "architecture": args.architecture,
        "dataset": data.name,
        "test_accuracy": test_accuracy,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count(arch, (channels, side, side), data.num_classes).macs,
        "input_size": [channels, side, side],
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
        "settings": dataclasses.asdict(config),
        "history": [dataclasses.asdict(report) for report in result.epochs],
    }


def _print_progress(batch_size: int) -> Callable[[int, int, int], None]:
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


def _print_epoch(epochs: int) -> Callable[[EpochReport], bool]:
    """One line per epoch on stderr; never asks to stop."""
    started = time.perf_counter()

    def show(report: EpochReport) -> bool:
        elapsed = time.perf_counter() - started
        eta = elapsed / report.epoch * (epochs - report.epoch)
        print(
            f"\repoch {report.epoch}/{epochs}  loss {report.train_loss:.4f}  "
            f"train accuracy {report.train_accuracy:.4f}  {report.images_per_second:.0f} images/s  "
            f"{report.seconds:.0f} s  ETA {eta:.0f} s",
            file=sys.stderr,
        )
        return False

    return show
