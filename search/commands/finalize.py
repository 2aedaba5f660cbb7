"""``search finalize``: a study's best architectures trained at a full budget over seeds, tested once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation.training import PRECISIONS, SCHEDULES
from search.commands._common import (
    add_device_argument,
    add_memory_limit_argument,
    add_study_arguments,
    non_negative_int,
    positive_float,
    positive_int,
    shard,
)
from search.commands._training import SWA_HELP, JobProgress, use_training_device
from search.commands.show import format_final
from search.pareto import study_objectives
from search.post.final_results import FINAL_CSV, FINAL_FOLDER, final_dir, load_final
from search.post.finalize import DEFAULT_EPOCHS, DEFAULT_SEEDS, finalize_study
from search.report import write_report
from search.storage.studies import check_folder_name, open_study

DESCRIPTION = f"""\
Retrain the study's Pareto front (or, with --top K, its K best) on the whole
training split with the recipe its trials were trained with, for --epochs
epochs, once per seed (seeds 0 to S-1, the same for every model), and test each
once. Writes studies/STUDY/final/trial-N/seed-S/ (weights.pt, architecture.yaml,
result.json) and studies/STUDY/final/final.csv (one row per model and seed:
test accuracy, the search's validation accuracy, params, MACs, latency, train
time), then the report, whose "Final front" section draws test accuracy beside
the search's validation accuracy. 'search show STUDY' prints each model's mean
and standard deviation.

Which trials with --top K: completed trials within every constraint, one per
architecture, ranked by non-dominated sorting (the front first, then the front
of the rest, ...), within a rank by the first maximised objective (accuracy),
best first, then by trial number; the first K of that order. With --max-hours
H, only the trials whose one training of --epochs epochs is predicted to take
at most H hours: the training images times the epochs, at the speed (images
per second) the trial trained at in the search. The prediction holds for the
search's machine and threads; side-by-side trainings on shared cores share
their speed. The best model one can afford, not the best model.

Resumable: a model and seed whose result.json exists is not retrained, so
running it again after Ctrl-C goes on where it stopped, and a later run with
more --seeds or a larger --top trains only what is new. A folder trained with
other settings (epochs, recipe) is refused rather than mixed in: train another
budget into a folder of its own with --folder (the report draws final/ only).

Side by side: --shard I/N trains every N-th training of the plan from the I-th
on (0-based), so N processes share one finalisation; each rewrites final.csv
from all the folder's results. On a 2-core CPU two 1-thread processes train
1.4x the images of one 2-thread one:

    OMP_NUM_THREADS=1 python -m search finalize STUDY --seeds 2 --shard 0/2 &
    OMP_NUM_THREADS=1 python -m search finalize STUDY --seeds 2 --shard 1/2

A second stage: --init-from NAME starts each training from the weights the
same model and seed have in the final folder NAME, and --lr, --schedule and
--swa-epochs replace the study's settings. Stochastic weight averaging on top
of a finished 80-epoch finalisation, at a constant rate for 20 epochs:

    python -m search finalize STUDY --folder final-swa --init-from final \
        --epochs 20 --schedule constant --lr 0.01 --swa-epochs 20

The data: the study's own, read as the search read it; each model is tested on
the test images the search never saw, and its result.json records the test
split's confusion matrix (rows: the true class) and its most confident mistakes.
A data set that changed since the search (a file added, removed or edited) is
refused with what changed, before anything trains.

Defaults: --epochs {DEFAULT_EPOCHS}, --seeds {DEFAULT_SEEDS}. On a 2-core CPU one Fashion-MNIST
epoch of a front model takes minutes: the default budget for a 4-model front is
hours there, and minutes on a GPU.
"""


class FinalizeCommand:
    help = "Retrain a study's front (or best K) at a full budget over several seeds; test each once."
    description = DESCRIPTION

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_arguments(parser)
        parser.add_argument(
            "--top",
            type=positive_int,
            default=None,
            metavar="K",
            help="Finalize the K best trials by the rule above instead of the front.",
        )
        parser.add_argument(
            "--max-hours",
            type=positive_float,
            default=None,
            metavar="H",
            help="Only trials whose one training is predicted to take at most H hours, by the rule above.",
        )
        parser.add_argument(
            "--epochs",
            type=positive_int,
            default=DEFAULT_EPOCHS,
            help=f"Epochs of each training (default: {DEFAULT_EPOCHS}).",
        )
        parser.add_argument(
            "--seeds",
            type=positive_int,
            default=DEFAULT_SEEDS,
            help=f"Trainings per model, seeds 0 to S-1 (default: {DEFAULT_SEEDS}).",
        )
        parser.add_argument(
            "--folder",
            default=FINAL_FOLDER,
            metavar="NAME",
            help=f"The folder under the study's for this budget's trainings (default: {FINAL_FOLDER}).",
        )
        parser.add_argument(
            "--shard",
            type=shard,
            default=(0, 1),
            metavar="I/N",
            help="Train only every N-th training from the I-th (0-based), beside N-1 other processes.",
        )
        parser.add_argument(
            "--init-from",
            default=None,
            metavar="NAME",
            help="Start each training from the same model and seed's weights in this final folder.",
        )
        parser.add_argument(
            "--lr", type=positive_float, default=None, help="Peak learning rate (default: the study's)."
        )
        parser.add_argument(
            "--schedule", choices=SCHEDULES, default=None, help="Learning-rate schedule (default: the study's)."
        )
        parser.add_argument(
            "--swa-epochs", type=non_negative_int, default=None, metavar="N", help=f"{SWA_HELP} (default: 0)."
        )
        parser.add_argument(
            "--validation-size",
            type=non_negative_int,
            default=0,
            metavar="N",
            help="Hold N training images out of every training and record each model's accuracy on them, "
            "to choose among final models without the test set (default: 0, train on all).",
        )
        add_device_argument(parser)
        parser.add_argument(
            "--precision",
            choices=PRECISIONS,
            default="auto",
            help="Autocast precision (default: auto).",
        )
        parser.add_argument("--data-root", default=None, metavar="DIR", help="Look for the dataset here first.")
        parser.add_argument(
            "--data",
            "--dataset",
            dest="data",
            default=None,
            metavar="SOURCE",
            help="The study's images at another path (moved, or mounted elsewhere), read with the study's "
            "options; accepted when the same files fall in the same splits (default: the study's own).",
        )
        parser.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            metavar="DIR",
            help="Where decoded images are cached (default: $SEARCH_CACHE_DIR, else ~/.cache/densenet-search/images).",
        )
        add_memory_limit_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        check_folder_name(args.folder, "final folder")  # before any study is opened: a path is refused outright
        if args.init_from is not None:
            check_folder_name(args.init_from, "--init-from folder")
        device = use_training_device(args.device)
        stage = ("lr", "schedule", "swa_epochs")
        overrides = {name: getattr(args, name) for name in stage if getattr(args, name) is not None}
        study = open_study(args.study, storage=args.storage)
        progress = JobProgress(args.epochs)
        try:
            frame = finalize_study(
                study,
                top=args.top,
                epochs=args.epochs,
                seeds=args.seeds,
                device=device,
                precision=args.precision,
                data_root=args.data_root,
                memory_limit=args.memory_limit,
                reporter=progress,
                folder=args.folder,
                shard=args.shard,
                overrides=overrides,
                init_from=args.init_from,
                validation_size=args.validation_size,
                data=args.data,
                cache_dir=args.cache_dir,
                max_hours=args.max_hours,
            )
        finally:
            progress.close()
        results = load_final(args.study, args.folder, objectives=study_objectives(study))
        if results is not None:
            print(format_final(results))
        report = write_report(study)
        print(
            f"wrote {final_dir(args.study, args.folder) / FINAL_CSV} ({len(frame)} rows) and {report}", file=sys.stderr
        )
        diverged = frame[frame["diverged"]]
        if not diverged.empty:
            print(f"error: {len(diverged)} trainings diverged (see final.csv)", file=sys.stderr)
            return 1
        return 0
