"""``python -m search``: one subcommand per class in ``search.commands``.

A user's mistake (bad file, unknown name, impossible architecture) prints one
line on stderr and exits with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evaluation.errors import ToolkitError
from search.commands import COMMANDS
from search.errors import exit_code_of

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m search",
        description="Search DenseNet, ResNet and hybrid architectures with Optuna.",
    )
    parser.add_argument("--debug", action="store_true", help="Show tracebacks instead of one-line errors.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(
            name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ToolkitError as error:  # a user's mistake, never a bug
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (search.errors.Terminated): 130 or 143
        print("interrupted", file=sys.stderr)
        return exit_code_of(stop)
