"""``python -m search``: one subcommand per class in ``search.commands``.

A user's mistake (bad file, unknown name, impossible architecture) prints one
line on stderr and exits with code 2; ``--debug`` shows the traceback instead.
So does a fault of the machine under a command, which running it again as it
is cannot mend: a full disk, or a study's database failing under it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from evaluation.atomic import NO_ROOM
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
        with _faults_as_errors():
            return int(args.run(args) or 0)
    except ToolkitError as error:  # a user's mistake, never a bug
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (search.errors.Terminated): 130 or 143
        print("interrupted", file=sys.stderr)
        return exit_code_of(stop)


class MachineFault(ToolkitError):
    """A fault of the machine under a command (a full disk, a failing database), met where no
    ``ToolkitError`` of its own was raised; the cause is chained (``--debug`` shows it)."""


@contextmanager
def _faults_as_errors() -> Iterator[None]:
    """Faults of the machine as ``MachineFault``: a write that found no room, and a study's
    database that fails (SQLite's "database or disk is full", a malformed page, a lost
    server). Any other exception is a bug and keeps its traceback."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import DatabaseError

    from search.storage.backends import storage_failure

    try:
        yield
    except OSError as error:
        if error.errno not in NO_ROOM or isinstance(error, ToolkitError):
            raise
        where = f" writing {error.filename}" if error.filename else ""
        raise MachineFault(f"no room{where}: {error.strerror} (make room and run again)") from error
    except (StorageInternalError, DatabaseError) as error:
        raise MachineFault(f"the study's storage failed: {storage_failure(error)}") from error
