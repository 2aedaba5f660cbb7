"""``search train --recipe d2l`` and the single-knob flags: the book's plain SGD, overridable one flag at a time."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from evaluation import TrainConfig
from search.cli import build_parser, main
from search.commands._training import train_config

D2L = {
    "lr": 0.1,
    "batch_size": 256,
    "schedule": "constant",
    "momentum": 0.0,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "augment": False,
}


def _config(*flags: str) -> TrainConfig:
    args = build_parser().parse_args(["train", "d2l_densenet", *flags])
    return train_config(args, seed=0, resize=96)


def test_d2l_recipe_is_the_books_plain_sgd() -> None:
    config = dataclasses.asdict(_config("--recipe", "d2l"))
    assert {k: config[k] for k in D2L} == D2L, config


def test_default_recipe_is_train_configs_defaults() -> None:
    assert _config() == dataclasses.replace(TrainConfig(), resize=96), "no flag: TrainConfig's defaults"


def test_a_flag_overrides_its_recipe_value_only() -> None:
    config = _config("--recipe", "d2l", "--momentum", "0.9", "--augment", "--batch-size", "64")
    assert (config.momentum, config.augment, config.batch_size) == (0.9, True, 64), config
    assert (config.weight_decay, config.label_smoothing, config.schedule) == (0.0, 0.0, "constant"), config
    assert _config("--no-augment", "--weight-decay", "0").augment is False


@pytest.mark.parametrize("flags", [["--momentum", "1"], ["--label-smoothing", "-0.1"], ["--weight-decay", "x"]])
def test_out_of_range_recipe_flags_exit_2(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["train", "d2l_densenet", *flags])
    assert stopped.value.code == 2 and flags[0] in capsys.readouterr().err


def test_train_records_the_recipe_it_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text("stem: {style: small, width: 8}\nstages:\n  - {block: dense, depth: 1, growth_rate: 4}\n")
    out = tmp_path / "out"
    argv = ["train", str(config_path), "--dataset", "digits", "--epochs", "1", "--recipe", "d2l"]
    code = main([*argv, "--batch-size", "64", "--precision", "fp32", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    settings = json.loads((out / "result.json").read_text())["settings"]
    assert {k: settings[k] for k in D2L} == {**D2L, "batch_size": 64}, settings
