"""Studies on a real PostgreSQL server: one run, then many "machines" on one study, one of them killed.

Each machine of a shared search runs the same ``search run --storage <url>``
command; here four processes on this machine stand in for them. The server is
a throwaway one (``postgres_server`` fixture); without PostgreSQL these skip,
or fail under CI=true.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from search.cli import main
from search.execution.distinct import counted_trials, holds_budget_slot
from search.execution.runner import is_given_back
from search.storage.studies import create_or_resume

REPO = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# What every trained trial records (search.storage.records.TrialRecord), read back from the server.
TRAINED_FACTS = {
    "outcome",
    "architecture",
    "architecture_key",
    "params",
    "macs",
    "latency_ms",
    "val_accuracy_per_epoch",
    "epochs_run",
    "train_seconds",
    "eval_seconds",
    "device",
}
MACHINES = 4
HEARTBEAT, GRACE = 1, 3


def _check_facts(trial: FrozenTrial) -> None:
    """A trial carries its facts: all of them when trained, else at least its outcome and why."""
    attrs = trial.user_attrs
    if attrs.get("outcome") == "trained":
        assert set(attrs) >= TRAINED_FACTS, f"trial {trial.number} lacks {TRAINED_FACTS - set(attrs)}"
    else:
        assert attrs.get("outcome") in {"rejected", "duplicate"}, f"trial {trial.number}: {attrs}"
        assert "reason" in attrs or "duplicate_of" in attrs, f"trial {trial.number} says why: {attrs}"


def test_run_on_postgres_records_every_fact_and_show_reads_them(tiny_space_file, studies_dir, postgres_url, capsys):
    code = main(["run", "--space", str(tiny_space_file), "--study", "pg", "--storage", postgres_url]
                + ["--trials", "3", "--no-report"])  # fmt: skip
    assert code == 0, "a run on PostgreSQL"
    capsys.readouterr()
    assert main(["show", "pg", "--storage", postgres_url]) == 0, "show reads the study from the server"
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    assert f"trials of pg ({len(study.trials)}" in capsys.readouterr().out, "show sees every trial"
    assert len(optuna.get_all_study_names(postgres_url)) == 1, "the study is created once"
    assert study.user_attrs["settings"]["trials"] == 3, "the run's settings are stored on the server"
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * len(states) and counted_trials(study) == 3, states
    for trial in study.trials:
        _check_facts(trial)


def _create_study(url: str, name: str) -> None:
    """Create the study before the machines start: concurrent creation collides (optuna#1092)."""
    create_or_resume(
        name=name,
        storage=url,
        directions=["maximize", "minimize"],
        metric_names=["accuracy", "macs"],
        sampler=optuna.samplers.RandomSampler(seed=0),
        settings={"created_by": "test"},
    )


def _machine(space: Path, url: str, study: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """One machine's ``search run`` on the shared study, one thread, output to ``log``."""
    command = [sys.executable, "-m", "search", "run", "--space", str(space), "--study", study, "--storage", url]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "SEARCH_STUDIES_DIR": os.environ["SEARCH_STUDIES_DIR"],
    }
    with log.open("ab") as out:
        return subprocess.Popen([*command, "--no-report", *extra], env=env, stdout=out, stderr=out)


def _wait_all(machines: list[subprocess.Popen[bytes]], logs: list[Path], timeout: float = 300) -> None:
    """Wait for every machine to exit 0; a hang guard (generous: the shared CI box may be loaded), then kill."""
    try:
        for machine, log in zip(machines, logs):
            code = machine.wait(timeout=timeout)
            assert code == 0, f"machine {machine.pid} exited {code}: {log.read_text()[-1500:]}"
    finally:
        for machine in machines:
            if machine.poll() is None:
                machine.kill()
                machine.wait()


def test_four_machines_share_one_study(tiny_space_file, studies_dir, postgres_url, tmp_path):
    _create_study(postgres_url, "shared")
    logs = [tmp_path / f"machine-{i}.log" for i in range(MACHINES)]
    machines = [_machine(tiny_space_file, postgres_url, "shared", log, "--trials", "3") for log in logs]
    _wait_all(machines, logs)
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers), f"unique trial numbers: {numbers}"
    # Machines that asked at the same moment give their slots back (FAIL, never run); all others complete.
    ran = [t for t in trials if not is_given_back(t)]
    assert [t.state for t in ran] == [TrialState.COMPLETE] * len(ran), [
        (t.number, t.state, t.user_attrs) for t in trials
    ]
    assert sum(holds_budget_slot(t) for t in ran) == 3, "three architectures evaluated; copies hold no slot"
    assert all(t.state == TrialState.FAIL for t in trials if is_given_back(t)), "a given-back slot never runs"
    for trial in ran:
        _check_facts(trial)


def _poll_until_running(study: optuna.Study, machines: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Wait until a trial has finished and another is RUNNING, failing early when a machine gave up.

    A hang guard, as generous as ``_wait_all``'s: four machines starting on a loaded 2-core CI box
    took longer than 60 s to reach the first finished trial."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for machine, log in zip(machines, logs):
            assert machine.poll() in (None, 0), f"machine exited {machine.returncode}: {log.read_text()[-1500:]}"
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.COMPLETE for t in trials) and any(t.state == TrialState.RUNNING for t in trials):
            return
        time.sleep(0.2)
    pytest.fail("no trial was RUNNING within 180 s")


def test_a_killed_machine_loses_nothing_and_the_budget_is_exact(tiny_space_file, studies_dir, postgres_url, tmp_path):
    """SIGKILL one machine mid-trial, restart it: its trial is failed by heartbeat, the others are intact."""
    budget = 6  # distinct architectures, of the tiny space's 8
    _create_study(postgres_url, "killed")
    study = optuna.load_study(study_name="killed", storage=postgres_url)
    flags = ["--trials", str(budget), "--epochs", "10", "--heartbeat-interval", str(HEARTBEAT)]
    flags += ["--grace-period", str(GRACE)]
    logs = [tmp_path / f"machine-{i}.log" for i in range(MACHINES)]
    machines = [_machine(tiny_space_file, postgres_url, "killed", log, *flags) for log in logs]
    _poll_until_running(study, machines, logs)
    before = {t.number: t for t in study.get_trials(states=(TrialState.COMPLETE,))}
    machines[0].send_signal(signal.SIGKILL)
    machines[0].wait(timeout=10)
    time.sleep(GRACE + HEARTBEAT)  # the killed machine's trial is stale by the time it comes back
    machines[0] = _machine(tiny_space_file, postgres_url, "killed", logs[0], *flags)
    _wait_all(machines, logs)

    trials = study.get_trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING], "no trial stays RUNNING past the grace"
    after = {t.number: t for t in trials}
    for number, trial in before.items():
        kept = after[number]
        assert (kept.state, kept.values, kept.user_attrs, kept.datetime_complete) == (
            trial.state,
            trial.values,
            trial.user_attrs,
            trial.datetime_complete,
        ), f"trial {number} finished before the kill is intact"
    finished = [t for t in trials if t.state in FINISHED]
    counted = [t for t in finished if holds_budget_slot(t)]
    assert len(counted) == budget, f"exactly {budget} architectures evaluated across machines, got {len(counted)}"
    for trial in finished:
        _check_facts(trial)
