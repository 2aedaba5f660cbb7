"""Argument parsers shared by several subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N")  # int, float, Fraction: what the converter makes


def input_size(text: str) -> tuple[int, int, int]:
    """Parse ``C,H,W`` (e.g. ``3,224,224``)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W with positive integers, got {text!r}")
    return values


def checked_number(convert: Callable[[str], N], ok: Callable[[N], bool], expected: str) -> Callable[[str], N]:
    """An argparse ``type``: ``convert(text)`` when ``ok`` of it, else ``expected X, got 'text'``."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except (ValueError, ArithmeticError):  # ArithmeticError: 1/0, a float too large for a Fraction
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = checked_number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = checked_number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = checked_number(float, lambda v: 0 < v < math.inf, "a positive number")
unit_fraction = checked_number(float, lambda v: 0 < v <= 1, "a fraction in (0, 1]")
# NumPy's generators, which Optuna's samplers seed, take 0 to 2**32 - 1.
random_seed = checked_number(int, lambda v: 0 <= v < 2**32, "a seed from 0 to 2**32 - 1")
port_number = checked_number(int, lambda v: 0 <= v <= 65535, "a port from 0 to 65535")
# A number of gigabytes (10**9 bytes), given in bytes.
gigabytes = checked_number(lambda text: float(text) * 1e9, lambda v: 0 < v < math.inf, "a positive number of GB")


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N; whether device N exists is checked when the command starts."""
    index = text.removeprefix("cuda:")
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def shard(text: str) -> tuple[int, int]:
    """``I/N`` as (I, N), with 0 <= I < N: the I-th of N processes sharing some work."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N, got {text!r}")
    return index, count


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The STUDY argument and --storage, as every command that reads a study takes them."""
    parser.add_argument("study", metavar="STUDY", help="The study's name (its folder under studies/).")
    parser.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="An Optuna storage URL holding the study (default: studies/<study>/study.db).",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device, as every command that trains takes it: auto, cpu, cuda or cuda:N."""
    parser.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help="Where to train: auto, cpu, cuda or cuda:N, the N-th GPU (default: auto, CUDA when available).",
    )


def add_memory_limit_argument(parser: argparse.ArgumentParser) -> None:
    """--memory-limit: the most training memory a model may be estimated to need before it is built."""
    parser.add_argument(
        "--memory-limit",
        type=gigabytes,
        default=None,
        metavar="GB",
        help=(
            "Refuse, before building it, a model whose estimated training memory (weights, gradients, "
            "optimizer state and the batch's activations; see evaluation/memory.py) exceeds this many GB "
            "(default: the machine's RAM, or the GPU's memory when training there)."
        ),
    )
