"""``search export``: the best architectures of a study as files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from search.commands._common import add_study_arguments, positive_int
from search.post.export import export_study
from search.storage.studies import open_study, study_dir


class ExportCommand:
    help = "Write a study's Pareto-front architectures as YAML (and standalone PyTorch, ONNX) files."
    description = (
        "Write the Pareto front of a study, one member per architecture, best first\n"
        "by accuracy (the order of 'search show' and 'search finalize'), as\n"
        "best-K.yaml (the architecture plus its recorded metrics; accepted by\n"
        "'search train' and 'search profile'), pareto.csv (row K is best-K) and\n"
        "trials.csv (the table 'search show --format csv' prints). With --format\n"
        "python, also best-K.py: a file that builds the\n"
        "model with nothing but torch installed. With --format onnx, also best-K.onnx:\n"
        "the network as initialised (seed 0), NOT trained, since a study keeps no\n"
        "weights; input 'images' (batch, C, H, W) with a dynamic batch, output 'logits',\n"
        "checked in onnxruntime. For a trained model: 'search train', then\n"
        "'search onnx RUN_DIR'. --format may be given more than once."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_arguments(parser)
        parser.add_argument("--top", type=positive_int, help="Export only the K best front members (default: all).")
        parser.add_argument("--out", type=Path, help="Output folder (default: studies/STUDY/export/).")
        parser.add_argument(
            "--format",
            choices=("yaml", "python", "onnx"),
            action="append",
            help=(
                "YAML is always written; python adds a standalone PyTorch file per member, onnx an ONNX file "
                "of the untrained network. Repeatable (default: yaml)."
            ),
        )

    def run(self, args: argparse.Namespace) -> int:
        study = open_study(args.study, storage=args.storage)
        out = args.out or study_dir(args.study) / "export"
        formats = set(args.format or ())
        for path in export_study(study, out, top=args.top, python="python" in formats, onnx="onnx" in formats):
            print(path)
        if not any(out.glob("best-*.yaml")):
            print(f"study {args.study} has no feasible finished trial yet: nothing on the front", file=sys.stderr)
        return 0
