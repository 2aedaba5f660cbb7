"""``search train``: full training of a preset or exported config, then one test evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation import load_architecture
from search.commands._common import random_seed
from search.commands._training import (
    add_training_arguments,
    load_training_data,
    print_epoch,
    print_progress,
    train_config,
)
from search.post.full_training import STATE_FILE, needed_resize, train_and_test


class TrainCommand:
    help = "Train a preset or an architecture YAML on a whole training set; report test accuracy."
    description = (
        "Train a preset (e.g. d2l_densenet) or an exported architecture YAML on the whole\n"
        "training set, then evaluate once on the test set. Writes into --out the weights\n"
        "(weights.pt, a state_dict for torch.load(weights_only=True)), the architecture\n"
        "(architecture.yaml) and result.json (test accuracy, params, MACs, times, settings).\n\n"
        "The d2l book's run (plain SGD at a constant lr 0.1, batch 256, no augmentation,\n"
        "no label smoothing; the book reports 0.848 test accuracy):\n"
        "    python -m search train d2l_densenet --recipe d2l --resize 96 --epochs 10\n"
        "The same network with the toolkit's recipe (one-cycle, momentum, weight decay,\n"
        "label smoothing, augmentation): leave --recipe out.\n"
        "Without --resize, images keep their size unless the network cannot take it; then\n"
        "they are resized to the smallest side it can (29 px for the d2l DenseNet).\n\n"
        "Your own images: --data folder:PATH (one sub-folder per class), csv:FILE or npz:FILE,\n"
        "read as --resolution, --channels and --fit say (see 'search data SOURCE'); the\n"
        "model trains on the training and validation images and is tested on the test\n"
        "images. Then 'search predict runs/NAME FILES...' classifies new files.\n\n"
        "The training's state is saved in --out after every epoch: interrupted (Ctrl-C, a\n"
        "crash), the same command continues after the last whole epoch."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("architecture", metavar="CONFIG_OR_PRESET", help="A preset name or a YAML file.")
        add_training_arguments(parser)
        parser.add_argument("--seed", type=random_seed, default=0, help="Seed (default: 0).")
        parser.add_argument(
            "--out", type=Path, default=None, metavar="DIR", help="Output folder (default: runs/<name>)."
        )

    def run(self, args: argparse.Namespace) -> int:
        arch = load_architecture(args.architecture)
        data = load_training_data(args, seed=args.seed)
        resize = args.resize
        if resize is None:
            resize = needed_resize(arch, data)
            if resize is not None:
                print(
                    f"note: {args.architecture} cannot take {data.input_size[1]} px images; resizing to {resize} px "
                    f"(choose with --resize)",
                    file=sys.stderr,
                )
        config = train_config(args, seed=args.seed, resize=resize)
        out = args.out or Path("runs") / Path(args.architecture).stem
        if (out / STATE_FILE).is_file():
            print(
                f"continuing after the last epoch saved in {out / STATE_FILE} (remove it to start over)",
                file=sys.stderr,
            )
        training = train_and_test(
            arch,
            data,
            config,
            out,
            label=args.architecture,
            memory_limit=args.memory_limit,
            on_epoch=print_epoch(config.epochs),
            on_progress=print_progress(min(config.batch_size, len(data.train[1]))),
        )
        record = training.record
        if training.diverged:
            print(f"\nerror: {record['stopped_reason']}", file=sys.stderr)
        print(
            f"test accuracy {record['test_accuracy']:.4f} ({record['test_images']} images, "
            f"{training.test_seconds:.1f} s); total {record['seconds']:.0f} s",
            file=sys.stderr,
        )
        print(f"wrote {out / 'weights.pt'}, {out / 'architecture.yaml'}, {out / 'result.json'}", file=sys.stderr)
        return 1 if training.diverged else 0
