"""Parallel workers on one study: real processes on a real journal file, a SIGKILL, a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import search
from evaluation import TrainConfig
from search.execution.distinct import counted_trials, holds_budget_slot
from search.execution.plan import SearchPlan
from search.execution.workers import prepare_study
from search.samplers import worker_seed
from search.storage.leases import HEARTBEAT_ATTR
from search.storage.studies import busy_seconds, make_storage, open_study
from spaces import load_space

GRACE_PERIOD = 3


def _command(space: Path, study: str, trials: int, workers: int, retry_failed: int = 0) -> list[str]:
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
        str(trials),
        "--epochs",
        "2",
        "--workers",
        str(workers),
        "--heartbeat-interval",
        "1",
        "--grace-period",
        str(GRACE_PERIOD),
        "--retry-failed",
        str(retry_failed),
        "--no-report",
    ]


def _load(studies_dir: Path, name: str) -> optuna.Study:
    storage = make_storage(f"journal:{studies_dir / name / 'journal.log'}")
    return optuna.load_study(study_name=name, storage=storage)


def _kill_a_worker_mid_trial(studies_dir: Path, name: str, deadline: float) -> tuple[int, dict[int, list[float]]]:
    """SIGKILL the worker of the first trial seen training; its number and the trials complete before."""
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not (studies_dir / name / "journal.log").is_file():
            continue
        study = _load(studies_dir, name)
        for trial in study.get_trials(states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("architecture_claim") == "train" and "worker" in trial.user_attrs:
                os.kill(int(trial.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
                complete = {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}
                return trial.number, complete
    raise AssertionError("no trial was seen training before the deadline")


def test_workers_survive_a_sigkill_and_reach_the_budget_exactly(tiny_space_file, studies_dir) -> None:
    env = {**os.environ, "SEARCH_STUDIES_DIR": str(studies_dir)}
    command = _command(tiny_space_file, "crash", 4, workers=2, retry_failed=1)
    run = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    killed, before = _kill_a_worker_mid_trial(studies_dir, "crash", time.monotonic() + 60)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, f"the other worker finishes the run: {err[-800:]}"
    # One worker now: the study's folder holds a journal, so it is found without --storage.
    restarted = subprocess.run(
        _command(tiny_space_file, "crash", 6, workers=1), env=env, stderr=subprocess.PIPE, text=True, timeout=120
    )
    assert restarted.returncode == 0, f"a restart resumes the study: {restarted.stderr[-800:]}"

    trials = _load(studies_dir, "crash").trials
    by_number = {t.number: t for t in trials}
    assert len(by_number) == len(trials), f"trial numbers are unique: {[t.number for t in trials]}"
    for number, values in before.items():
        assert by_number[number].state == TrialState.COMPLETE and by_number[number].values == values, (
            f"trial {number}, complete before the kill, is kept as it was"
        )
    assert by_number[killed].state == TrialState.FAIL, f"the killed worker's trial {killed} is failed"
    assert "no heartbeat" in by_number[killed].user_attrs["reason"], by_number[killed].user_attrs
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert [t.params for t in retried] == [by_number[killed].params], (
        f"--retry-failed 1 queues the killed trial's parameters once: {[t.number for t in retried]}"
    )
    assert not [t.number for t in trials if t.state == TrialState.RUNNING], "no trial is left RUNNING"
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and holds_budget_slot(t)]
    assert len(counted) == 6, f"exactly the budget is evaluated: {[(t.number, t.state.name) for t in trials]}"
    assert len({t.user_attrs["architecture_key"] for t in counted}) == 6, "six distinct architectures"
    trained = Counter(t.user_attrs["architecture_key"] for t in trials if t.user_attrs.get("outcome") == "trained")
    assert max(trained.values()) == 1, f"no architecture is trained twice: {trained}"


def test_workers_refuse_sqlite(tiny_space, studies_dir) -> None:
    with pytest.raises(search.UsageError, match=r"--workers 2 needs a storage safe for concurrent writers"):
        search.run_search(
            space=tiny_space,
            study=search.StudySpec(storage=f"sqlite:///{studies_dir}/x.db", report=False),
            workers=search.Workers(count=2),
        )


def test_a_later_start_with_other_settings_is_told_what_differs(tiny_space, studies_dir) -> None:
    search.run_search(space=tiny_space, study=search.StudySpec("changed", report=False), budget=search.Budget(trials=1))
    plans: list[search.RunPlan] = []
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("changed", report=False),
        budget=search.Budget(trials=1, epochs=2),
        seed=3,
        on_start=plans.append,
    )
    assert plans[0].settings_changed == "training.epochs 1 -> 2; training.seed 0 -> 3; seed 0 -> 3", plans[0]
    settings = study.user_attrs["settings"]
    assert settings["training"]["epochs"] == 1 and len(settings["changes"]) == 1, "the creation settings are kept"


def test_worker_seeds_differ_per_worker_and_per_start() -> None:
    seeds = {worker_seed(0, worker=w, existing_trials=n) for w in range(3) for n in (0, 5)}
    assert len(seeds) == 6, f"every worker and start has its own seed: {seeds}"
    assert worker_seed(7, worker=0, existing_trials=0) == 7, "a fresh one-process study keeps the run's seed"


def test_busy_seconds_skips_pauses_between_runs_and_counts_side_by_side_workers_once() -> None:
    t0 = datetime(2026, 1, 1)

    def trial(start: float, stop: float | None) -> optuna.trial.FrozenTrial:
        frozen = optuna.trial.create_trial(value=0.0)
        frozen.datetime_start = t0 + timedelta(seconds=start)
        frozen.datetime_complete = None if stop is None else t0 + timedelta(seconds=stop)
        return frozen

    first_run = [trial(0, 60), trial(30, 90), trial(90, 100)]  # two workers overlap for 30 s
    next_day = [trial(86_400, 86_460), trial(86_450, None)]  # a day later; the last one still running
    assert busy_seconds(first_run) == 100
    assert busy_seconds(first_run + next_day) == 160, "the day between the runs is not search time"
    assert busy_seconds([]) == 0


def test_busy_seconds_ends_a_trial_failed_as_stale_at_its_last_beat() -> None:
    t0 = datetime(2026, 1, 1)
    killed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)
    killed.datetime_start, killed.datetime_complete = t0, t0 + timedelta(days=1)  # failed by the next day's worker
    killed.set_user_attr(HEARTBEAT_ATTR, (t0 + timedelta(seconds=40)).timestamp())
    assert busy_seconds([killed]) == 40, "the day it lay dead until a worker failed it is not search time"
    finished = optuna.trial.create_trial(value=0.0)
    finished.datetime_start, finished.datetime_complete = t0, t0 + timedelta(seconds=90)
    finished.set_user_attr(HEARTBEAT_ATTR, (t0 + timedelta(seconds=80)).timestamp())
    assert busy_seconds([finished]) == 90, "a finished trial ran until its end"


def _search(space: Path, study: str, workers: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same 4-trial search, screened and pruned by ASHA, on ``workers`` processes."""
    command = [*_command(space, study, 4, workers=workers), "--screen", "2", "--pruner", "asha"]
    return subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True, timeout=300)


def test_one_and_two_workers_run_the_same_search_with_screening_and_the_same_pruner(
    tiny_space_file, studies_dir
) -> None:
    """One set-up path: a worker process samples, screens and prunes as the run in one process does."""
    env = {**os.environ, "SEARCH_STUDIES_DIR": str(studies_dir)}
    for name, workers in (("one", 1), ("two", 2)):
        done = _search(tiny_space_file, name, workers, env)
        assert done.returncode == 0, f"--workers {workers} --screen 2 runs: {done.stderr[-800:]}"
    one, two = open_study("one"), open_study("two")  # SQLite for one worker, the journal file for two
    volatile = ("command", "written")
    settings = [{k: v for k, v in s.user_attrs["settings"].items() if k not in volatile} for s in (one, two)]
    assert settings[0] == settings[1], "both record the same settings"
    assert settings[0]["pruner"]["kind"] == "asha" and settings[0]["screening"] == {"count": 2, "by": "vote"}
    assert one.user_attrs["pruner"] == two.user_attrs["pruner"] == settings[0]["pruner"], "and the same pruner"
    for study in (one, two):
        trials = study.trials
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert counted_trials(study) == 4, (
            f"{study.study_name}: the budget: {[(t.number, t.state.name) for t in trials]}"
        )
        for trial in finished:
            screened = trial.user_attrs.get("screened", [])
            assert len(screened) == 2 and trial.user_attrs["screened_by"] == "vote", (
                f"{study.study_name} trial {trial.number} is screened: {trial.user_attrs}"
            )
            if trial.user_attrs["outcome"] in ("trained", "pruned"):
                decisions = trial.user_attrs.get("rung_decisions", [])
                assert decisions and {d["pruner"] for d in decisions} == {"asha"}, (
                    f"{study.study_name} trial {trial.number} is judged by ASHA at its rungs: {trial.user_attrs}"
                )


def test_every_worker_gives_its_study_the_runs_pruner_and_its_own_sampler(tiny_space_file, digits, tmp_path) -> None:
    """Hyperband's brackets: the pruner the rules ask is the one the study (so its sampler) holds, in every worker."""
    single = tmp_path / "single.yaml"
    single.write_text(
        tiny_space_file.read_text().replace("{accuracy: maximize, macs: minimize}", "{accuracy: maximize}")
    )
    space = load_space(single)
    plan = SearchPlan(
        study_name="plan",
        storage_url="journal:unused",
        space=space,
        data=search.DataSpec("digits"),
        seed=0,
        config=TrainConfig(epochs=1, batch_size=64, device="cpu"),
        budget=search.Budget(trials=4),
        sampler=search.SamplerSpec("tpe"),
        pruning=search.Pruning("hyperband"),
        leases=search.LeasePolicy(),
        screening=search.Screening(),
        devices=("cpu", "cpu"),
        threads=1,
        memory_limit=None,
        existing_trials=0,
    )
    proposals = []
    for worker in range(plan.workers):
        study = optuna.create_study(direction="maximize")
        pruner = prepare_study(plan, study, worker, digits)
        assert isinstance(study.pruner, optuna.pruners.HyperbandPruner) and study.pruner is pruner.optuna, (
            f"worker {worker}: the study holds the pruner its rules decide with"
        )
        assert isinstance(study.sampler, optuna.samplers.TPESampler), study.sampler
        proposals.append(study.ask().suggest_float("x", 0.0, 1.0))
    assert proposals[0] != proposals[1], f"each worker's sampler has its own seed: {proposals}"
