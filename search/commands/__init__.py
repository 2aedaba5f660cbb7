"""The subcommands of ``python -m search``, in the order ``--help`` lists them."""

from __future__ import annotations

import argparse
from typing import Protocol

from search.commands.export import ExportCommand
from search.commands.profile import ProfileCommand
from search.commands.show import ShowCommand


class Command(Protocol):
    help: str
    description: str | None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, Command] = {
    "show": ShowCommand(),
    "export": ExportCommand(),
    "profile": ProfileCommand(),
}
