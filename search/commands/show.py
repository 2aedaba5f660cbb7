"""``search show``: the trials of a study and its Pareto front, as tables."""

from __future__ import annotations

import argparse

import pandas as pd

from evaluation.metrics import METRICS
from search.commands._common import add_study_arguments
from search.pareto import objective_names, trials_frame
from search.study import open_study


class ShowCommand:
    help = "Print a study's trials and its Pareto front as tables."
    description = (
        "Print every trial of a study (state, outcome, objectives, params, MACs,\n"
        "latency, reason when refused or failed) and then the Pareto front: the\n"
        "feasible trials that no other trial beats on every objective."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_arguments(parser)
        parser.add_argument("--front-only", action="store_true", help="Print only the Pareto front.")

    def run(self, args: argparse.Namespace) -> int:
        study = open_study(args.study, storage=args.storage)
        frame = trials_frame(study)
        if frame.empty:
            print(f"study {args.study} has no trials yet")
            return 0
        names = objective_names(study)
        metrics = [*names, *(name for name in METRICS if name not in names)]
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 90):
            if not args.front_only:
                print(f"trials of {args.study} ({len(frame)}):")
                print(
                    frame[["number", "state", "outcome", *metrics, "epochs", "train_s", "reason"]].to_string(
                        index=False
                    )
                )
                print()
            front = frame[frame["front"]].sort_values(names[0], ascending=study.directions[0].name == "MINIMIZE")
            print(f"Pareto front ({len(front)} trials, {' vs '.join(names)}):")
            print(front[["number", *metrics, "architecture"]].to_string(index=False))
        return 0
