"""benchmarks/headline.py: its stages, and its pick of the best final model under 100K parameters."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import headline  # noqa: E402
from headline import HELD_OUT, MAX_PARAMS, best_under_limit, final_trainings, stages  # noqa: E402

EPOCHS = {"final-20-epochs": 20, "final-80-epochs": 80, "final-80-epochs-swa-20": 20}


def _row(model: str, folder: str, seed: int, val: float | None, test: float, params: int) -> dict[str, object]:
    return {"model": model, "folder": folder, "epochs": EPOCHS[folder], "seed": seed, "val_accuracy": val,
            "test_accuracy": test, "params": params, "macs": 7}  # fmt: skip


def test_the_best_mean_validation_accuracy_within_the_limit_wins_per_model_and_stage() -> None:
    rows = pd.DataFrame(
        [
            _row("trial-1", "final-20-epochs", 0, 0.910, 0.925, 60_000),
            _row("trial-1", "final-20-epochs", 1, 0.912, 0.923, 60_000),
            _row("trial-1", "final-80-epochs", 0, 0.921, 0.934, 60_000),  # the longer budget: its own mean, not pooled
            _row("trial-1", "final-80-epochs", 1, 0.919, 0.930, 60_000),
            _row("trial-1", "final-80-epochs-swa-20", 0, 0.917, 0.929, 60_000),  # 20 epochs too, but another stage
            _row("trial-1", "final-80-epochs-swa-20", 1, 0.917, 0.929, 60_000),
            _row("trial-2", "final-20-epochs", 0, 0.950, 0.950, MAX_PARAMS + 1),  # best, but over the limit
            _row("trial-3", "final-20-epochs", 0, 0.915, 0.931, MAX_PARAMS),  # one seed: a mean below trial-1's at 80
        ]
    )
    best = best_under_limit(rows)
    assert best is not None, rows
    assert (best["model"], best["folder"], best["epochs"], best["seeds"]) == ("trial-1", "final-80-epochs", 80, 2)
    assert best["val_accuracy_mean"] == pytest.approx(0.920)
    assert best["test_accuracy_mean"] == pytest.approx(0.932)
    assert best["test_accuracy_std"] == pytest.approx(pd.Series([0.934, 0.930]).std())
    assert best["params"] == 60_000


def test_the_test_set_chooses_nothing() -> None:
    """A stage ahead on test but behind on validation loses; its test accuracy is not what is reported."""
    rows = pd.DataFrame(
        [
            _row("trial-1", "final-80-epochs", 0, 0.921, 0.930, 60_000),
            _row("trial-1", "final-80-epochs", 1, 0.923, 0.928, 60_000),
            _row("trial-1", "final-80-epochs-swa-20", 0, 0.915, 0.941, 60_000),  # best on test, worse on validation
            _row("trial-1", "final-80-epochs-swa-20", 1, 0.916, 0.940, 60_000),
        ]
    )
    best = best_under_limit(rows)
    assert best is not None and best["folder"] == "final-80-epochs", best
    assert best["test_accuracy_mean"] == pytest.approx(0.929), "the chosen stage's test accuracy, not the best one"


def test_stages_without_a_held_out_validation_accuracy_are_not_chosen() -> None:
    rows = pd.DataFrame(
        [
            _row("trial-1", "final-80-epochs", 0, None, 0.934, 60_000),  # trained on every image: nothing held out
            _row("trial-1", "final-20-epochs", 0, 0.900, 0.920, 60_000),
        ]
    )
    best = best_under_limit(rows)
    assert best is not None and best["folder"] == "final-20-epochs", best
    assert best_under_limit(rows[rows["folder"] == "final-80-epochs"]) is None


def test_nothing_within_the_limit_is_none() -> None:
    rows = pd.DataFrame([_row("trial-2", "final-20-epochs", 0, 0.95, 0.95, MAX_PARAMS + 1)])
    assert best_under_limit(rows) is None


def test_final_trainings_read_each_stages_results_with_their_held_out_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(tmp_path))
    for folder, val in (("final-80-epochs", 0.92), ("final-20-epochs", None)):
        out = tmp_path / headline.STUDY / folder / "trial-188" / "seed-0"
        out.mkdir(parents=True)
        record = {"model": "trial-188", "trial": 188, "epochs": EPOCHS[folder], "seed": 0, "params": 61_530,
                  "macs": 4_444_992, "train_seconds": 60.0, "diverged": False,
                  "search_val_accuracy": 0.762, "val_accuracy": val, "test_accuracy": 0.93}  # fmt: skip
        (out / "result.json").write_text(json.dumps(record))
    rows = final_trainings().set_index("folder")
    assert rows.loc["final-80-epochs", "val_accuracy"] == 0.92
    missing = rows.loc["final-20-epochs", "val_accuracy"]
    assert missing is None or math.isnan(missing), "trained on every image: no validation accuracy"
    assert (rows["search_val_accuracy"] == 0.762).all(), "the search's validation accuracy is kept apart"


def test_every_stage_holds_out_the_same_validation_images() -> None:
    held_out = ["--validation-size", str(HELD_OUT)]
    assert stages(80) == [("final-80-epochs", ["--epochs", "80", *held_out])]
    (main, _), (folder, swa) = stages(80, swa_epochs=20, swa_lr=0.15)
    assert (main, folder) == ("final-80-epochs", "final-80-epochs-swa-20")
    assert " ".join(swa) == (
        f"--init-from final-80-epochs --epochs 20 --schedule constant --lr 0.15 --swa-epochs 20 "
        f"--validation-size {HELD_OUT}"
    )


def test_each_training_gets_its_share_of_the_cores_in_the_hours_left() -> None:
    # 3 trainings on 2 cores in 5 h: 10 core-hours, 3.33 each, less the overhead kept aside.
    assert headline.hours_per_training(5.0, trainings=3, cores=2) == pytest.approx(5 * 2 / 3 * 0.9)
    assert headline.hours_per_training(5.0, trainings=1, cores=2) == pytest.approx(5 * 0.9), "one core per training"


# A stand-in for a `search finalize` shard started in the background, as `nohup ... &` leaves it: SIGINT
# ignored. Once it says it is training (its file argv[1]) it trains until SIGTERM stops it, with 143 as
# the command exits.
SHARD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
pathlib.Path(sys.argv[1]).touch()
time.sleep(120)
"""


def test_a_stop_reaches_every_process_side_by_side_and_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(headline.subprocess, "Popen", popen)
    training = [tmp_path / f"shard-{i}" for i in range(2)]

    def stop_once_both_train() -> None:
        # SIGINT to this process alone, as a scheduler's SIGTERM (turned into one) comes: not to the shards.
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in training) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    stopper = threading.Thread(target=stop_once_both_train)
    stopper.start()
    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        headline.side_by_side([[sys.executable, "-c", SHARD, str(path)] for path in training], dict(os.environ))
    stopper.join()
    assert [process.returncode for process in started] == [143, 143], "each was stopped by SIGTERM, and ended"
    assert time.monotonic() - begun < 100, "they stopped, not slept on"
