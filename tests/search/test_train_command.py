"""``python -m search train``: outputs, reloadable weights, one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from evaluation import TrainConfig, build_model, evaluate, load_architecture
from evaluation.data import load_dataset
from search.cli import main

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
