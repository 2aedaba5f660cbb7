"""``search show``: the trials of a study and its Pareto front, as tables."""

from __future__ import annotations

import argparse

import pandas as pd

from evaluation.metrics import METRICS, format_metric
from search.commands._common import add_study_arguments
from search.pareto import objective_names, trials_frame
from search.post.final_results import FinalResults, load_final
from search.storage.studies import open_study


class ShowCommand:
    help = "Print a study's trials and its Pareto front as tables."
    description = (
        "Print every trial of a study (state, outcome, objectives, params, MACs,\n"
        "latency, reason when refused or failed) and then the Pareto front: the\n"
        "feasible trials that no other trial beats on every objective. When the study\n"
        "was finalized ('search finalize'), then each finalized model's test accuracy:\n"
        "mean and standard deviation over its seeds, beside the search's validation\n"
        "accuracy, and how well the search's ranking held (Spearman's rho)."
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
            final = load_final(args.study)
            if final is not None:
                print()
                print(format_final(final))
        return 0


def format_final(final: FinalResults) -> str:
    """The finalized models as a table, then the rank correlation, as ``show`` and ``finalize`` print them."""
    rows = [
        {
            "trial": m.trial,
            "seeds": m.seeds,
            "test accuracy": format_metric("accuracy", m.test_mean),
            "std": "n/a (1 seed)" if m.test_std is None else format_metric("accuracy", m.test_std),
            "search val. accuracy": format_metric("accuracy", m.val_accuracy),
            "MACs": format_metric("macs", m.macs),
            "params": format_metric("params", m.params),
            "latency": format_metric("latency_ms", m.latency_ms),
            "final front": "*" if m.on_final_front else "",
        }
        for m in final.models
    ]
    rho = final.rank_correlation
    said = f"{rho:.2f} ({len(final.models)} models)" if rho is not None else "n/a (needs 2 models that differ)"
    agreement = f"Spearman's rho of search validation accuracy and final test accuracy: {said}"
    return "\n".join(
        [
            f"Final training ({final.source}; test accuracy is the mean over seeds, std the sample standard deviation):",
            pd.DataFrame(rows).to_string(index=False),
            agreement,
        ]
    )
