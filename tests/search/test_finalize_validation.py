"""``search finalize --validation-size N``: images held out of every final training, and each model's accuracy on them.

The headline benchmark chooses among final models by it, so the test set chooses nothing.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from test_finalize import _arch, _digits_study

from evaluation import build_model, load_architecture
from evaluation.data import load_dataset
from search.cli import main
from search.post.final_results import final_dir

HELD_OUT = 300
FINALIZE = ["--epochs", "1", "--seeds", "1", "--device", "cpu", "--precision", "fp32"]


def _accuracy_by_hand(run, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The saved model's accuracy, normalised and batched here rather than through evaluation.evaluate."""
    data = load_dataset("digits", validation_size=0)
    model = build_model(load_architecture(run / "architecture.yaml"), data.input_size, data.num_classes)
    model.load_state_dict(torch.load(run / "weights.pt", weights_only=True))
    mean, std = torch.tensor(data.mean).view(1, -1, 1, 1), torch.tensor(data.std).view(1, -1, 1, 1)
    with torch.no_grad():
        predicted = model.eval()((images.float() / 255 - mean) / std).argmax(1)
    return (predicted == labels).float().mean().item()


def test_held_out_images_are_not_trained_on_and_their_accuracy_is_recorded(studies_dir, capsys) -> None:
    _digits_study("held", [(_arch(8, 1), 0.7)])
    assert main(["finalize", "held", *FINALIZE, "--validation-size", str(HELD_OUT)]) == 0, capsys.readouterr().err
    run = final_dir("held") / "trial-0" / "seed-0"
    record = json.loads((run / "result.json").read_text())
    split = load_dataset("digits", validation_size=HELD_OUT, seed=0)
    assert record["val_images"] == HELD_OUT and record["train_images"] == len(split.train[1]), record
    assert record["val_accuracy"] == pytest.approx(_accuracy_by_hand(run, *split.val), abs=1.5 / HELD_OUT), record
    assert record["search_val_accuracy"] == 0.7, "the search's validation accuracy stays apart"
    row = pd.read_csv(final_dir("held") / "final.csv").iloc[0]
    assert (row["val_accuracy"], row["search_val_accuracy"]) == (record["val_accuracy"], 0.7), row

    capsys.readouterr()
    assert main(["show", "held"]) == 0
    shown = capsys.readouterr().out
    lines = shown.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("Final training"))
    header, line = lines[start + 1], lines[start + 2]  # the final models' table: its header, then trial 0
    assert header.split().index("held-out") < header.split().index("search"), header
    assert f"{record['val_accuracy'] * 100:.2f} %" in line and "70.00 %" in line, f"show: {line!r}"


def test_without_the_flag_every_image_trains_and_no_validation_accuracy_is_recorded(studies_dir) -> None:
    _digits_study("all", [(_arch(4, 1), 0.6)])
    assert main(["finalize", "all", *FINALIZE]) == 0
    record = json.loads((final_dir("all") / "trial-0" / "seed-0" / "result.json").read_text())
    assert (record["val_accuracy"], record["val_images"]) == (None, 0), record


def test_results_or_starts_trained_on_the_held_out_images_are_refused(studies_dir, capsys) -> None:
    _digits_study("mixed", [(_arch(4, 1), 0.6)])
    assert main(["finalize", "mixed", *FINALIZE]) == 0
    capsys.readouterr()
    assert main(["finalize", "mixed", *FINALIZE, "--validation-size", str(HELD_OUT)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"0 training images held out for validation, not {HELD_OUT}" in err and "\n" not in err, err

    second = ["finalize", "mixed", *FINALIZE, "--folder", "swa", "--init-from", "final", "--schedule", "constant",
              "--validation-size", str(HELD_OUT)]  # fmt: skip
    assert main(second) == 2
    err = capsys.readouterr().err.strip()
    assert "held out for validation" in err and "\n" not in err, err
    assert not (final_dir("mixed", "swa") / "trial-0" / "seed-0" / "result.json").exists(), "nothing trained"


def test_show_lists_the_final_trainings_of_the_folder_it_is_given(studies_dir, capsys) -> None:
    _digits_study("folders", [(_arch(4, 1), 0.6)])
    assert main(["finalize", "folders", *FINALIZE, "--folder", "long"]) == 0
    capsys.readouterr()
    assert main(["show", "folders"]) == 0
    assert "Final training" not in capsys.readouterr().out, "the default folder, final/, holds nothing"
    assert main(["show", "folders", "--folder", "long"]) == 0
    shown = capsys.readouterr().out
    assert f"Final training ({final_dir('folders', 'long') / 'final.csv'};" in shown, shown

    assert main(["show", "no-such-study", "--folder", "../long"]) == 2
    err = capsys.readouterr().err.strip()
    assert "final folder" in err and "'../long'" in err and "\n" not in err, f"the path is refused first: {err}"
