"""`search run` end to end: bad input, resume without retraining, export, train."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml
from optuna.trial import TrialState

from evaluation import Architecture, load_architecture
from search.cli import main
from search.execution.distinct import counted_trials
from search.pareto import front_trials
from search.storage.studies import open_study


def test_run_with_broken_space_exits_2_with_one_line_and_no_study(tmp_path, studies_dir, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("description: x\nstages: []\n")
    code = main(["run", "--space", str(broken), "--study", "broken"])
    err = capsys.readouterr().err
    assert code == 2, f"a broken space is a user error, exit 2, got {code}"
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"error: {broken}: "), (
        f"one line naming the file: {err!r}"
    )
    assert not studies_dir.exists(), "no study is created"


def _run(space, study, trials):
    return main(["run", "--space", str(space), "--study", study, "--trials", str(trials), "--no-report"])


def test_run_resumes_without_training_twice_and_exports_for_train(tiny_space_file, studies_dir, tmp_path, capsys):
    assert _run(tiny_space_file, "tiny", 3) == 0, "first run"
    first = {t.number: t.datetime_complete for t in open_study("tiny").trials}
    assert _run(tiny_space_file, "tiny", 5) == 0, "resumed run"
    study = open_study("tiny")
    trials = study.trials
    assert counted_trials(study) == 5, f"resume tops up to 5 distinct architectures, got {counted_trials(study)}"
    keys = [t.user_attrs["architecture_key"] for t in trials if t.user_attrs["outcome"] != "duplicate"]
    assert len(set(keys)) == len(keys) == 5, f"each counted trial is a distinct architecture: {keys}"
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert {t.number: t.datetime_complete for t in trials[: len(first)]} == first, "earlier trials are kept, not rerun"
    settings = yaml.safe_load((studies_dir / "tiny" / "settings.yaml").read_text())
    assert settings["dataset"] == "digits" and settings["trials"] == 5, f"resolved settings are written: {settings}"

    out = tmp_path / "export"
    assert main(["export", "tiny", "--out", str(out)]) == 0, "export"
    best = out / "best-1.yaml"
    assert best.is_file() and (out / "pareto.csv").is_file() and (out / "trials.csv").is_file(), sorted(out.iterdir())
    exported = yaml.safe_load(best.read_text())
    trial = trials[exported["source"]["trial"]]
    assert Architecture.from_dict(trial.user_attrs["architecture"]) == load_architecture(best), (
        "export keeps the architecture"
    )

    capsys.readouterr()
    assert main(["show", "tiny", "--front-only"]) == 0, "show"
    shown = capsys.readouterr().out
    front = [t.number for t in front_trials(open_study("tiny"))]
    assert f"Pareto front ({len(front)} trials, accuracy vs macs)" in shown, shown
    assert len(list((out).glob("best-*.yaml"))) == len(front), "every front member is exported"

    assert (
        main(["train", str(best), "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "trained")]) == 0
    ), "train accepts it"
    result = json.loads((tmp_path / "trained" / "result.json").read_text())
    assert result["params"] == exported["metrics"]["params"], "the trained model is the exported one"


def test_run_on_fashion_mnist_smoke(studies_dir, capsys):
    """A real, short search on Fashion-MNIST with the default space."""
    code = main(
        [
            "run",
            "--space",
            "densenet_hybrid",
            "--study",
            "smoke",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--train-fraction",
            "0.02",
            "--no-report",
        ]
    )
    assert code == 0, "the default space runs on Fashion-MNIST"
    study = open_study("smoke")
    outcomes = [t.user_attrs.get("outcome") for t in study.trials]
    assert len(outcomes) == 2 and set(outcomes) <= {"trained", "rejected", "duplicate"}, outcomes
    err = capsys.readouterr().err
    assert "trial 1" in err and "[2/2]" in err, f"progress lines are printed: {err[-500:]}"


def test_run_interrupted_with_ctrl_c_keeps_finished_trials(tiny_space_file, studies_dir):
    """SIGINT mid-study: exit 130, every finished trial kept, the next run resumes."""
    env = {**os.environ, "SEARCH_STUDIES_DIR": str(studies_dir)}
    command = [
        sys.executable,
        "-m",
        "search",
        "run",
        "--space",
        str(tiny_space_file),
        "--study",
        "stopped",
        "--trials",
        "200",
        "--epochs",
        "3",
        "--no-report",
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    finished = 0
    while finished < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        # settings.yaml is written once the study exists in the storage.
        if (studies_dir / "stopped" / "settings.yaml").exists():
            finished = len(open_study("stopped").get_trials(states=(TrialState.COMPLETE,)))
    assert finished >= 2, "the study made progress before the interrupt"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, f"Ctrl-C exits 130, got {process.returncode}: {err[-500:]}"
    assert "interrupted: finished trials are kept" in err, err[-500:]
    trials = open_study("stopped").trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= finished, "no finished trial is lost"
    assert not [t for t in trials if t.state == TrialState.RUNNING], "no trial is left RUNNING"
    evaluated = counted_trials(open_study("stopped"))
    assert _run(tiny_space_file, "stopped", evaluated + 1) == 0, "the study resumes"
    assert counted_trials(open_study("stopped")) == evaluated + 1, "one more architecture"
