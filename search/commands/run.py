"""``search run``: an Optuna study over a search space, trained on real data."""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from evaluation import Architecture, preset
from evaluation.data import DATASETS, DataSplits, load_dataset
from evaluation.presets import PRESETS
from evaluation import TrainConfig, resolve_device
from search.commands._common import positive_int
from search.errors import UsageError
from search.objective import Objective
from search.progress import Progress
from search.report import write_report
from search.runner import run_trials
from search.study import SAMPLERS, create_or_resume, make_sampler, study_dir
from spaces import Space, enqueue_architecture, load_space

# On a GPU the same command trains on the whole training set for more epochs.
GPU_EPOCH_FACTOR = 3
DEFAULT_TRIALS = 12

DESCRIPTION = f"""\
Run (or resume) a multi-objective Optuna study over a search space.

Each trial samples an architecture, refuses it before training if it cannot be
built or breaks a constraint of the space (params, MACs, latency), profiles it
(fvcore MACs, latency), trains it briefly on the space's data set and records
validation accuracy per epoch. Architectures already evaluated are not trained
again. The study lives in studies/STUDY/ (SQLite) unless --storage is given;
running the same command again resumes it, and finished trials count toward
--trials. Ctrl-C stops cleanly: every finished trial is kept.

Budget: by default {DEFAULT_TRIALS} trials with the space's training budget
(densenet_hybrid: 1 epoch on 20% of Fashion-MNIST's training split), which on
a 2-core CPU took about 4 minutes (under 15 is the aim). On a GPU (--device auto finds it) each
trial uses the whole training set and {GPU_EPOCH_FACTOR}x the epochs. Scale with
--trials, --epochs, --train-fraction and --timeout.
"""


class RunCommand:
    help = "Run or resume a search; the Pareto front is kept in the study."
    description = DESCRIPTION

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--space", default="densenet_hybrid", help="A built-in space name or a YAML file (default: densenet_hybrid).")
        parser.add_argument("--study", help="Study name (default: the space's name); its folder is studies/STUDY/.")
        parser.add_argument("--storage", help="Any Optuna storage URL instead of studies/STUDY/study.db.")
        parser.add_argument("--trials", type=positive_int, default=DEFAULT_TRIALS, help=f"Total finished trials wanted, counting earlier runs (default: {DEFAULT_TRIALS}).")
        parser.add_argument("--timeout", type=float, help="Stop starting new trials after this many seconds.")
        parser.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna sampler (default: tpe, multivariate, constant liar).")
        parser.add_argument("--dataset", choices=sorted(DATASETS), help="Data set instead of the space's (the input size follows it).")
        parser.add_argument("--data-root", help="Folder holding the data set files (else $SEARCH_DATA_DIR, Debian's copy, torchvision's cache).")
        parser.add_argument("--epochs", type=positive_int, help="Training epochs per trial instead of the space's budget.")
        parser.add_argument("--train-fraction", type=float, help="Fraction of the training set per trial, in (0, 1].")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the sampler and of each trial's training (default: 0).")
        parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="Training device (default: auto, CUDA when available).")
        parser.add_argument("--enqueue-preset", metavar="NAME", action="append", default=[], help="Evaluate a known architecture first: a baseline of the space or a preset (repeatable).")
        parser.add_argument("--no-report", action="store_true", help="Do not regenerate studies/STUDY/report.html at the end.")

    def run(self, args: argparse.Namespace) -> int:
        space = load_space(args.space)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # Progress reports each trial
        if args.train_fraction is not None and not 0 < args.train_fraction <= 1:
            raise UsageError(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
        # A tenth of the training set validates every trial; the test set is never touched.
        data = load_dataset(args.dataset or space.dataset, root=args.data_root, validation_size=0.1, seed=args.seed)
        if args.dataset:
            space = space.with_input(dataset=args.dataset, input_size=data.input_size, num_classes=data.num_classes)
        config = _train_config(space, data, args)
        name = args.study or space.name
        study = create_or_resume(
            name=name,
            storage=args.storage,
            directions=[o.direction for o in space.objectives],
            metric_names=[o.metric for o in space.objectives],
            sampler=make_sampler(args.sampler, seed=args.seed, trials=args.trials),
            settings=_settings(space, config, args),
        )
        for baseline in args.enqueue_preset:
            study.enqueue_trial(enqueue_architecture(space, _known_architecture(space, baseline)), skip_if_exists=True)
        done = _finished(study)
        remaining = args.trials - done
        print(f"study {name}: {done} finished trials, {max(remaining, 0)} to run; {config.device} training", file=sys.stderr)
        progress = Progress(total=args.trials, done=done)
        try:
            interrupted = run_trials(
                study,
                Objective(space=space, data=data, config=config),
                n_trials=max(remaining, 0),
                timeout=args.timeout,
                on_trial=progress,
            )
        finally:
            progress.close()
        if interrupted:
            print("interrupted: finished trials are kept in the study", file=sys.stderr)
        if not args.no_report:
            _write_report(study, name)
        print(f"{_finished(study)} finished trials; see: python -m search show {name}", file=sys.stderr)
        return 130 if interrupted else 0


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _train_config(space: Space, data: DataSplits, args: argparse.Namespace) -> TrainConfig:
    budget = space.training
    try:
        device = resolve_device(args.device).type
    except ValueError as error:
        raise UsageError(str(error)) from None
    on_gpu = device == "cuda"
    return TrainConfig(
        epochs=args.epochs or budget.epochs * (GPU_EPOCH_FACTOR if on_gpu else 1),
        train_fraction=args.train_fraction or (1.0 if on_gpu else budget.train_fraction),
        batch_size=budget.batch_size,
        lr=budget.lr,
        schedule=budget.schedule,
        device=device,
        seed=args.seed,
        # The space may ask for another resolution than the data set's own.
        resize=None if space.input_size[1:] == data.input_size[1:] else space.input_size[1],
    )


def _known_architecture(space: Space, name: str) -> Architecture:
    """A baseline named in the space file, else a preset."""
    if name in space.baselines:
        return space.baseline(name)
    if name in PRESETS:
        return preset(name)
    raise UsageError(
        f"--enqueue-preset {name}: not a baseline of space {space.name} "
        f"({', '.join(sorted(space.baselines)) or 'none'}) nor a preset ({', '.join(sorted(PRESETS))})"
    )


def _settings(space: Space, config: TrainConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Everything needed to understand and repeat the run, stored with the study."""
    return {
        "space": space.name,
        "space_file": str(space.path),
        "space_yaml": space.path.read_text(),
        "dataset": space.dataset,
        "input_size": list(space.input_size),
        "num_classes": space.num_classes,
        "objectives": [f"{o.metric} ({o.direction})" for o in space.objectives],
        "training": dataclasses.asdict(config),
        "sampler": args.sampler,
        "seed": args.seed,
        "trials": args.trials,
        "timeout": args.timeout,
        "device": config.device,
        "command": " ".join(["python -m search", *sys.argv[1:]]),
        "versions": {
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "optuna": optuna.__version__,
        },
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _write_report(study: optuna.Study, name: str) -> None:
    path = write_report(study, study_dir(name) / "report.html")
    print(f"report: {path}", file=sys.stderr)
