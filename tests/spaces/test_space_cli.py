"""The command line's side of spaces: ``search list``, and a bad space file as exit code 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from evaluation.blocks import BLOCKS, field_types
from search.cli import main
from search.commands import COMMANDS
from spaces import builtin_space_names, load_space


def test_list_command_shows_each_builtin_with_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0, "search list failed"
    out = capsys.readouterr().out
    for name in builtin_space_names():
        space = load_space(name)
        data = (
            "your images: --data SOURCE, input and classes from the data"
            if name == "images"
            else "fashion_mnist, 1x28x28, 10 classes"
        )
        assert f"{name}  ({data}; {space.size():,} architectures)" in out, out
        assert space.description.split()[0] in out, f"{name}: description missing"
    assert "images  (" in out, "the space for a user's images is listed"
    for kind, family in BLOCKS.items():
        assert f"\n  {kind}: " in out, f"block {kind} is not listed"
        for knob in field_types(family.spec):
            assert f"{knob}: " in out.split(f"\n  {kind}: ")[1], f"{kind}.{knob} is not listed"


class _LoadSpaceCommand:
    """Stands in for ``search run --space``: loads the space and nothing else."""

    help = "load a space"
    description = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--space")

    def run(self, args: argparse.Namespace) -> int:
        load_space(args.space)
        return 0


def test_cli_bad_space_file_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "description: d\ndataset: d\ninput: [1, 28, 28]\nnum_classes: 10\nobjectives: {accuracy: maximize}\n"
        "stages:\n  count: 2\n  each: {block: dense, depth: {low: 0, high: 3}}\n"
    )
    monkeypatch.setitem(COMMANDS, "load-space", _LoadSpaceCommand())
    assert main(["load-space", "--space", str(broken)]) == 2, "a bad space file must exit with code 2"
    err = capsys.readouterr().err
    assert err == f"error: {broken}: stages.each.depth: low (0) must be >= 1\n", repr(err)
