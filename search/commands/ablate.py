"""``search ablate``: variants of one architecture differing in one knob, over seeds, compared in pairs."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation import load_architecture
from evaluation.metrics import format_metric
from search.commands._common import positive_int
from search.commands._training import JobProgress, add_training_arguments, load_training_data, train_config
from search.post.ablate import MAX_SEEDS, ablate, make_variants, parse_variation, table_paths
from search.post.full_training import needed_resize

DEFAULT_SEEDS = 3

DESCRIPTION = """\
Train the variants of one architecture (a preset or a YAML file) that differ in
one knob, each with seeds 0 to S-1 on the whole training split, test each once,
and print a table: mean test accuracy, sample standard deviation, params, MACs,
latency, and for every variant against the first the mean paired difference
with two two-sided p-values, the paired t-test's and an exact sign-flip
permutation test's (2^S sign patterns; with 2 seeds it cannot go below 0.5,
with 1 seed no p-value exists). Writes the table as ablation-KEY.csv and
ablation-KEY.json into --out, beside each training's files
(KEY=VALUE/seed-S/weights.pt, architecture.yaml, result.json). Resumable: a
training whose result.json exists is not repeated.

--vary KEY=V1,V2[,...], KEY one of:
  stem.width, stem.style, head.norm, head.dropout, conv_bias
  stages.KNOB        every stage that has KNOB (block, depth, stride, growth_rate, ...)
  stages.I.KNOB      stage I alone, counting from 0 (as stages[I] in the YAML)
  transitions.KNOB   every transition; transitions.I.KNOB transition I alone
A new block keeps the stage's depth, stride and the knobs both blocks have.

Examples:
  python -m search ablate mine.yaml --vary transitions.pooling=avg,max --seeds 3 --epochs 10
  python -m search ablate d2l_densenet --vary stages.growth_rate=16,32 --recipe d2l
  python -m search ablate mine.yaml --vary stages.1.block=dense,csp_dense
Variants train at one input size: without --resize, the smallest side every
variant can take.
"""


class AblateCommand:
    help = "Train variants of one architecture that differ in one knob over seeds; compare them in pairs."
    description = DESCRIPTION

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("architecture", metavar="CONFIG", help="A preset name or an architecture YAML file.")
        parser.add_argument("--vary", required=True, metavar="KEY=V1,V2", help="The knob and its values (see above).")
        parser.add_argument(
            "--seeds",
            type=positive_int,
            default=DEFAULT_SEEDS,
            help=f"Trainings per variant, seeds 0 to S-1, at most {MAX_SEEDS} (default: {DEFAULT_SEEDS}).",
        )
        add_training_arguments(parser)
        parser.add_argument(
            "--out", type=Path, default=None, metavar="DIR", help="Output folder (default: runs/ablate-<name>)."
        )

    def run(self, args: argparse.Namespace) -> int:
        arch = load_architecture(args.architecture)
        variation = parse_variation(args.vary)
        variants = make_variants(arch, variation)  # a bad --vary fails before the data set is loaded
        data = load_training_data(args)
        resize = args.resize
        if resize is None:
            sides = [needed_resize(v.arch, data) for v in variants]
            resize = max((s for s in sides if s is not None), default=None)
            if resize is not None:
                print(
                    f"note: resizing images to {resize} px, the smallest side every variant can take", file=sys.stderr
                )
        config = train_config(args, seed=0, resize=resize)
        out = args.out or Path("runs") / f"ablate-{Path(args.architecture).stem}"
        progress = JobProgress(config.epochs)
        try:
            table = ablate(
                arch,
                variation,
                data,
                config,
                out,
                seeds=args.seeds,
                source=args.architecture,
                memory_limit=args.memory_limit,
                reporter=progress,
            )
        finally:
            progress.close()
        print(format_table(table))
        print("wrote {} and {}".format(*table_paths(out, variation)), file=sys.stderr)
        return 0


def format_table(table: pd.DataFrame) -> str:
    """The ablation table for the terminal: accuracies in percent, p-values or why there is none."""
    rows = []
    for row in table.to_dict(orient="records"):
        rows.append(
            {
                "variant": row["variant"],
                "seeds": row["seeds"],
                "mean test accuracy": format_metric("accuracy", row["mean_test_accuracy"]),
                "std": _or(row["std"], lambda v: format_metric("accuracy", v), "n/a (1 seed)"),
                "params": format_metric("params", row["params"]),
                "MACs": format_metric("macs", row["macs"]),
                "latency": format_metric("latency_ms", row["latency_ms"]),
                "diff vs first": _or(row["diff_vs_first"], lambda v: f"{v * 100:+.2f} pts", "-"),
                "p (t-test)": _or(row["p_ttest"], lambda v: f"{v:.3g}", "n/a"),
                "p (sign-flip)": _or(row["p_sign_flip"], lambda v: f"{v:.3g}", "n/a"),
                "note": row["note"],
            }
        )
    return pd.DataFrame(rows).to_string(index=False)


def _or(value: Any, shown: Any, missing: str) -> str:
    """``shown(value)``, or ``missing`` for a value that is absent (None or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return shown(value)
