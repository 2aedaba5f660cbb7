"""``search report``: write a study's report page (plots, trials, settings) as one HTML file."""

from __future__ import annotations

import argparse
import time

from search.commands._common import add_study_arguments
from search.report import write_report
from search.storage.studies import open_study


class ReportCommand:
    help = "Write studies/<study>/report.html: Pareto front, history, curves, importances, trials."
    description = (
        "Write one self-contained HTML page for a study: the Pareto front (accuracy vs\n"
        "MACs and vs params, hover for the architecture, click for the full config),\n"
        "the optimisation history, every trial's learning curve, parameter importances\n"
        "per objective, parallel coordinates and slices over the searched knobs, a\n"
        "sortable table of all trials and the study's settings. plotly.js is embedded:\n"
        "the page opens offline. Safe to run while the study is still running."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_arguments(parser)
        parser.add_argument(
            "--out",
            metavar="PATH",
            default=None,
            help="Where to write the page (default: studies/<study>/report.html).",
        )

    def run(self, args: argparse.Namespace) -> int:
        started = time.perf_counter()
        study = open_study(args.study, storage=args.storage)
        path = write_report(study, args.out)
        trials = len(study.get_trials(deepcopy=False))
        print(f"wrote {path} ({trials} trials) in {time.perf_counter() - started:.1f} s")
        return 0
