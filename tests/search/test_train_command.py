"""``python -m search train``: outputs, reloadable weights, one-line user errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from evaluation import EpochReport, TrainConfig, build_model, evaluate, load_architecture
from evaluation.data import load_dataset
from search.cli import main
from search.commands import train as train_command

TINY_YAML = """\
stem: {style: small, width: 8}
stages:
  - {block: dense, depth: 2, growth_rate: 8, bn_size: 0}
transitions: []
"""


def test_train_command_writes_result_and_reloadable_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY_YAML)
    out = tmp_path / "out"
    code = main(
        [
            "train",
            str(config_path),
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--precision",
            "fp32",
            "--out",
            str(out),
        ]
    )
    assert code == 0, f"exit code {code}: {capsys.readouterr().err}"
    result = json.loads((out / "result.json").read_text())
    for key in ("test_accuracy", "params", "macs", "epochs", "seconds", "settings"):
        assert key in result, f"result.json lacks {key!r}: {sorted(result)}"
    assert result["epochs"] == 2 and result["settings"]["batch_size"] == 64, f"settings not recorded: {result}"
    assert "epoch 2/2" in capsys.readouterr().err, "progress must show each epoch"

    arch = load_architecture(out / "architecture.yaml")
    model = build_model(arch, (1, 8, 8), 10)
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    data = load_dataset("digits", validation_size=0)
    config = TrainConfig(**{**result["settings"], "device": "cpu"})
    accuracy = evaluate(model, *data.test, config, mean=data.mean, std=data.std)
    assert accuracy == pytest.approx(result["test_accuracy"]), (
        f"reloaded weights give {accuracy}, the run reported {result['test_accuracy']}"
    )


def test_train_command_interrupted_continues_after_its_last_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in epoch 2 of 3, then the same command: the weights of a run never interrupted."""
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY_YAML)
    common = ["train", str(config_path), "--dataset", "digits", "--epochs", "3", "--batch-size", "64"]
    common += ["--precision", "fp32", "--out"]
    assert main([*common, str(tmp_path / "whole")]) == 0

    def interrupt_after_epoch_1(epochs: int) -> Callable[[EpochReport], bool]:
        def show(report: EpochReport) -> bool:
            if report.epoch == 1:
                raise KeyboardInterrupt
            return False

        return show

    cut = tmp_path / "cut"
    with monkeypatch.context() as patch:
        patch.setattr(train_command, "print_epoch", interrupt_after_epoch_1)
        assert main([*common, str(cut)]) == 130
    assert (cut / "training-state.pt").is_file() and not (cut / "result.json").exists()
    capsys.readouterr()

    assert main([*common, str(cut)]) == 0
    err = capsys.readouterr().err
    assert f"continuing after the last epoch saved in {cut / 'training-state.pt'}" in err, err
    assert "epoch 1/3" not in err and "epoch 3/3" in err, "only epochs 2 and 3 train again"
    assert not (cut / "training-state.pt").exists(), "the state goes once result.json is written"
    whole, resumed = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("whole", "cut"))
    assert (whole["resumed_after_epoch"], resumed["resumed_after_epoch"]) == (0, 1)
    assert resumed["test_accuracy"] == whole["test_accuracy"] and len(resumed["history"]) == 3
    weights = [torch.load(tmp_path / d / "weights.pt", weights_only=True) for d in ("whole", "cut")]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), f"{name} differs from the uninterrupted run's"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "d2l_densenet", "--dataset", "svhn"], "unknown dataset 'svhn'"),
        (["train", "no/such/file.yaml", "--dataset", "digits"], "neither a preset nor a file"),
    ],
)
def test_train_command_user_errors_exit_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"a user's mistake must exit 2, got {code}"
    assert fragment in err and "\n" not in err, f"expected one line with {fragment!r}, got {err!r}"
