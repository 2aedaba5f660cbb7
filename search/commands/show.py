"""``search show``: the trials of a study and its Pareto front, as tables for a reader or CSV/JSON for a script."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import pandas as pd

from evaluation.metrics import METRICS, format_metric, metric_label
from search.commands._common import add_study_arguments
from search.commands._progress import format_duration
from search.execution.distinct import count_summary
from search.pareto import MIN_RANK_PAIRS, front_frame, objective_names, ranked_trials, study_objectives, trials_frame
from search.post.final_results import FINAL_FOLDER, FinalResults, load_final
from search.storage.studies import check_folder_name, open_study

__all__ = ["FORMATS", "ShowCommand", "format_final", "readable_frame", "shown_metrics", "write_frame"]

FORMATS = ("table", "csv", "json")


class ShowCommand:
    help = "Print a study's trials and its Pareto front as tables, or as CSV or JSON for scripts."
    description = (
        "Print every trial of a study (state, outcome, objectives, params, MACs,\n"
        "latency, proxies when screened, its non-dominated rank, reason when refused\n"
        "or failed) and then the Pareto front, best first: the feasible trials that\n"
        "no other trial beats on every objective, one per architecture (the order of\n"
        "'search export' and 'search finalize'). When the study was finalized\n"
        "('search finalize'; --folder for a budget trained beside final/), then each\n"
        "finalized model's test accuracy: mean and standard deviation over its seeds,\n"
        "beside its accuracy on the images held out of its training (--validation-size)\n"
        "and the search's validation accuracy, and how well the search's ranking held\n"
        "(Spearman's rho).\n\n"
        "--format csv or json prints one table instead (the trials, or with\n"
        "--front-only the front, best first) with raw numbers under fixed column\n"
        "names: number, state, outcome, every metric (accuracy, macs, params,\n"
        "latency_ms, the proxies), epochs, train_s, feasible, rank, front,\n"
        "architecture, reason. A missing value is empty (csv) or null (json); the\n"
        "finalized models are in studies/STUDY/final/final.csv."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_arguments(parser)
        parser.add_argument("--front-only", action="store_true", help="Print only the Pareto front.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="table",
            help="table: aligned and readable (17.7 M MACs); csv, json: raw numbers for scripts (default: table).",
        )
        parser.add_argument(
            "--folder",
            default=FINAL_FOLDER,
            help=f"The final folder whose trainings to list, as 'search finalize --folder' named it "
            f"(default: {FINAL_FOLDER}).",
        )

    def run(self, args: argparse.Namespace) -> int:
        check_folder_name(args.folder, "final folder")  # before any study is opened: a path is refused outright
        study = open_study(args.study, storage=args.storage)
        ranked = ranked_trials(study)
        frame = trials_frame(study, ranked)
        front = front_frame(frame, ranked)
        if args.format != "table":
            write_frame(front if args.front_only else frame, args.format, sys.stdout)
            return 0
        if frame.empty:
            print(f"study {args.study} has no trials yet")
            return 0
        names = objective_names(study)
        metrics = shown_metrics(frame, names)
        labels = [metric_label(name) for name in metrics]
        with pd.option_context("display.max_colwidth", None):  # an architecture in full
            if not args.front_only:
                summary = count_summary(study)  # copies and warm-started trials are listed, not counted
                print(f"trials of {args.study} ({len(frame)}{'' if summary is None else f'; {summary}'}):")
                print(_aligned(readable_frame(frame, metrics).drop(columns=["architecture"])))
                print()
            print(f"Pareto front ({len(front)} trials, {' vs '.join(names)}):")
            print(_aligned(readable_frame(front, metrics)[["trial", *labels, "architecture"]]))
            final = load_final(args.study, args.folder, objectives=study_objectives(study))
            if final is not None:
                print()
                print(format_final(final))
        return 0


def write_frame(frame: pd.DataFrame, form: str, stream: TextIO) -> None:
    """``frame`` as CSV or as a JSON array of row objects: raw numbers, missing values empty or null."""
    if form == "csv":
        frame.to_csv(stream, index=False)
        return
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    stream.write(json.dumps(rows, indent=1, allow_nan=False) + "\n")


def shown_metrics(frame: pd.DataFrame, objectives: Sequence[str]) -> list[str]:
    """The objectives, then every other metric of the table that some trial has (a study
    screened by no proxy shows no proxy columns)."""
    others = [name for name in METRICS if name not in objectives and frame[name].notna().any()]
    return [*objectives, *others]


def readable_frame(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """``trials_frame``'s rows as a reader wants them: each value of ``metrics`` formatted as the
    progress line and the report format it (``format_metric``: 73.12 %, 17.7 M) under its label,
    the training time as the progress line gives durations, blank where a value is missing."""
    columns: dict[str, list[str]] = {
        "trial": [str(n) for n in frame["number"]],
        "state": list(frame["state"]),
        "outcome": list(frame["outcome"]),
    }
    for name in metrics:
        columns[metric_label(name)] = [format_metric(name, _present(v)) for v in frame[name]]
    columns["epochs"] = [str(e) for e in frame["epochs"]]
    columns["train time"] = [format_duration(s) if s else "" for s in frame["train_s"]]
    columns["rank"] = ["" if _present(r) is None else str(r) for r in frame["rank"]]
    columns["architecture"] = [_present(v) or "" for v in frame["architecture"]]
    columns["reason"] = [_present(v) or "" for v in frame["reason"]]
    return pd.DataFrame(columns)


def _aligned(table: pd.DataFrame) -> str:
    """The table as text, words (architecture, reason) left-aligned and figures right-aligned."""
    words = [c for c in ("architecture", "reason") if c in table]
    widths = {c: max(len(c), *table[c].str.len()) for c in words}
    padded = table.assign(**{c: table[c].str.ljust(widths[c]) for c in words})
    text = padded.rename(columns={c: c.ljust(widths[c]) for c in words}).to_string(index=False)
    return "\n".join(line.rstrip() for line in text.splitlines())


def _present(value: Any) -> Any:
    """None for pandas' marks of a missing value (NaN, NA), the value otherwise."""
    return None if pd.isna(value) else value


def format_final(final: FinalResults) -> str:
    """The finalized models as a table, then the rank correlation, as ``show`` and ``finalize`` print them."""
    rows = [
        {
            "trial": m.trial,
            "seeds": m.seeds,
            "test accuracy": format_metric("accuracy", m.test_mean),
            "std": "n/a (1 seed)" if m.test_std is None else format_metric("accuracy", m.test_std),
            "held-out val. accuracy": format_metric("accuracy", m.val_mean),
            "search val. accuracy": format_metric("accuracy", m.search_val_accuracy),
            "MACs": format_metric("macs", m.macs),
            "params": format_metric("params", m.params),
            "latency": format_metric("latency_ms", m.latency_ms),
            "final front": "*" if m.on_final_front else "",
        }
        for m in final.models
    ]
    rho = final.rank_correlation
    said = (
        f"{rho:.2f} ({len(final.models)} models)"
        if rho is not None
        else f"n/a (needs {MIN_RANK_PAIRS} models whose accuracies differ)"
    )
    agreement = f"Spearman's rho of search validation accuracy and final test accuracy: {said}"
    return "\n".join(
        [
            f"Final training ({final.source}; test accuracy is the mean over seeds, std the sample standard deviation):",
            pd.DataFrame(rows).to_string(index=False),
            agreement,
        ]
    )
