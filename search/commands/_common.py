"""Argument parsers shared by several subcommands."""

from __future__ import annotations

import argparse


def input_size(text: str) -> tuple[int, int, int]:
    """Parse ``C,H,W`` (e.g. ``3,224,224``)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W with positive integers, got {text!r}")
    return values  # type: ignore[return-value]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The STUDY argument and --storage, as every command that reads a study takes them."""
    parser.add_argument("study", metavar="STUDY", help="The study's name (its folder under studies/).")
    parser.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="An Optuna storage URL holding the study (default: studies/<study>/study.db).",
    )
