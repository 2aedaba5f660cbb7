"""The subcommands of ``python -m search``, in the order ``--help`` lists them."""

from __future__ import annotations

import argparse
from typing import Protocol

from search.commands.ablate import AblateCommand
from search.commands.dashboard import DashboardCommand
from search.commands.data import DataCommand
from search.commands.export import ExportCommand
from search.commands.finalize import FinalizeCommand
from search.commands.list import ListCommand
from search.commands.onnx import OnnxCommand
from search.commands.predict import PredictCommand
from search.commands.profile import ProfileCommand
from search.commands.report import ReportCommand
from search.commands.run import RunCommand
from search.commands.show import ShowCommand
from search.commands.train import TrainCommand


class Command(Protocol):
    """A subcommand: its one-line ``help``, its ``--help`` text (None: the one line), its
    arguments and what it does with them. Read-only, so a class attribute of type str fits."""

    @property
    def help(self) -> str: ...

    @property
    def description(self) -> str | None: ...

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, Command] = {
    "run": RunCommand(),
    "list": ListCommand(),
    "data": DataCommand(),
    "show": ShowCommand(),
    "report": ReportCommand(),
    "dashboard": DashboardCommand(),
    "export": ExportCommand(),
    "train": TrainCommand(),
    "finalize": FinalizeCommand(),
    "ablate": AblateCommand(),
    "onnx": OnnxCommand(),
    "predict": PredictCommand(),
    "profile": ProfileCommand(),
}
