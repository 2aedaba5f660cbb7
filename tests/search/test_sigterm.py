"""SIGTERM, what Slurm and Kubernetes send before they kill, is a clean stop: real processes, real signals.

``search run`` with one worker and with two: the trial SIGTERM cuts is failed
with its reason, nothing is left RUNNING, the command exits 143, and its
parameters are queued again, so a restart of the same command trains them
once and meets the budget exactly. ``search finalize`` stops as on Ctrl-C, its
last whole epoch saved, exits 143, and a rerun resumes the training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

import search
from search.execution.distinct import holds_budget_slot
from search.execution.runner import REQUEUED_FROM, TERMINATED
from search.post.full_training import RESULT_FILE, STATE_FILE
from search.storage.studies import make_storage, storage_url

TRIALS = 2  # enough for a cut trial and one after it; each trial costs seconds of the suite
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _run_command(space: Path, study: str, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "search",
        "run",
        "--space",
        str(space),
        "--study",
        study,
        "--trials",
        str(TRIALS),
        "--epochs",
        "4",  # long enough for a trial seen training to be cut in training
        "--workers",
        str(workers),
        "--no-report",
    ]


def _load(name: str, workers: int) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(storage_url(name, None, workers=workers)))


def _training(name: str, workers: int, process: subprocess.Popen[str], deadline: float) -> FrozenTrial:
    """A trial of the study seen training, while the command runs: its latency, measured on the
    built model just before training, is recorded."""
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            running = _load(name, workers).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        for trial in running:
            if "latency_ms" in trial.user_attrs:
                return trial
    raise AssertionError(f"no trial of {name} was seen training (exit code {process.poll()})")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_trial_stops_cleanly_and_a_restart_trains_the_cut_trial_once(
    tiny_space_file, studies_dir, workers
) -> None:
    name = f"sigterm-{workers}"
    env = {**os.environ, "SEARCH_STUDIES_DIR": str(studies_dir)}
    command = _run_command(tiny_space_file, name, workers)
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    cut = _training(name, workers, process, time.monotonic() + 180)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, f"SIGTERM exits 143, got {process.returncode}: {err[-800:]}"
    assert "terminated (SIGTERM): finished trials are kept" in err, err[-800:]

    trials = {t.number: t for t in _load(name, workers).trials}
    assert not [n for n, t in trials.items() if t.state == TrialState.RUNNING], "nothing is left RUNNING"
    assert trials[cut.number].state == TrialState.FAIL, f"the cut trial is failed: {trials[cut.number]}"
    assert trials[cut.number].user_attrs["reason"] == TERMINATED, trials[cut.number].user_attrs
    terminated = [t for t in trials.values() if t.user_attrs.get("reason") == TERMINATED]
    queued = [t for t in trials.values() if t.state == TrialState.WAITING]
    sampled = [t for t in terminated if "architecture_key" in t.user_attrs]
    assert sorted(t.user_attrs[REQUEUED_FROM] for t in queued) == sorted(t.number for t in sampled), (
        f"each terminated trial that had its architecture is queued again once: {queued} for {terminated}"
    )

    restarted = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True, timeout=300)
    assert restarted.returncode == 0, f"the same command resumes the study: {restarted.stderr[-800:]}"
    trials = {t.number: t for t in _load(name, workers).trials}
    states = Counter(t.state for t in trials.values())
    counted = [t for t in trials.values() if t.state in FINISHED and holds_budget_slot(t)]
    assert len(counted) == TRIALS, f"the budget, exactly: {states}"
    assert not states[TrialState.RUNNING] and not states[TrialState.WAITING], (
        f"nothing left running or queued: {states}"
    )
    cut_numbers = {t.number for t in sampled}
    requeued = [t for t in trials.values() if t.user_attrs.get(REQUEUED_FROM) in cut_numbers]
    assert sorted(t.user_attrs[REQUEUED_FROM] for t in requeued) == sorted(cut_numbers), "each runs again once"
    for again in requeued:
        assert again.state in FINISHED, f"trial {again.number} finished: {again}"
        assert again.params == trials[again.user_attrs[REQUEUED_FROM]].params, "with the cut trial's parameters"
    for key in {t.user_attrs["architecture_key"] for t in sampled}:
        trained = [
            n
            for n, t in trials.items()
            if t.user_attrs.get("architecture_key") == key and t.user_attrs.get("outcome") in ("trained", "pruned")
        ]
        assert len(trained) == 1 and trained[0] in {t.number for t in requeued}, (
            f"the cut architecture is trained again once, by a requeued trial: {trained}"
        )


def test_sigterm_stops_finalize_after_its_last_epoch_and_a_rerun_resumes(tiny_space, studies_dir) -> None:
    known = search.StudySpec("final", enqueue=(tiny_space.example(),), report=False)  # a trial that trains
    search.run_search(space=tiny_space, study=known, budget=search.Budget(trials=1))
    env = {**os.environ, "SEARCH_STUDIES_DIR": str(studies_dir)}
    command = [sys.executable, "-m", "search", "finalize", "final", "--top", "1", "--seeds", "1", "--epochs", "4"]
    command += ["--device", "cpu"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    states: list[Path] = []
    while not states and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        states = list((studies_dir / "final").glob(f"final/*/*/{STATE_FILE}"))
    assert states, f"a training saved its first epoch before the deadline (exit code {process.poll()})"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, f"SIGTERM exits 143, got {process.returncode}: {err[-800:]}"
    folder = states[0].parent
    assert (folder / STATE_FILE).is_file() and not (folder / RESULT_FILE).exists(), "its state is kept, unfinished"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, f"a rerun finishes: {rerun.stderr[-800:]}"
    result = json.loads((folder / RESULT_FILE).read_text())
    assert result["resumed_after_epoch"] >= 1 and result["epochs"] == 4, (
        f"the rerun resumed after a saved epoch: {result['resumed_after_epoch']}"
    )
