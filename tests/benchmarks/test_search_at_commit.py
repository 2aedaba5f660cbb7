"""benchmarks/search_at_commit.py: an older commit's search, run by that commit's code, journalled for scoring here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import search_at_commit  # noqa: E402

from result_cache import journal_to_read  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_a_commit_git_does_not_know_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        search_at_commit.main(["no-such-commit", "--method", "tpe", "--as", "x", "--seeds", "0",
                               "--out", str(tmp_path / "e.json"), "--worktrees", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: no worktree of no-such-commit:"), err
    assert err.count("\n") == 1, err


def test_the_commits_own_code_runs_the_search_and_its_journal_is_packed_under_the_new_name(tmp_path: Path) -> None:
    out = tmp_path / "confirmation.json"
    worktrees = tmp_path / "worktrees"
    worktrees.mkdir()
    try:
        code = search_at_commit.main(["HEAD", "--method", "tpe", "--as", "tpe_then", "--seeds", "3", "--minutes",
                                      "0.01", "--out", str(out), "--worktrees", str(worktrees)])  # fmt: skip
        checkout = next(worktrees.iterdir())
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert (
            subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
            == head
        )
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", *map(str, worktrees.iterdir())])
    assert code == 0
    journal = out.with_suffix("") / "tpe_then-s3.log"
    assert journal.with_name(journal.name + ".gz").is_file(), "packed as this code commits journals"
    with journal_to_read(journal) as path:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        trials = optuna.load_study(study_name="tpe_then-s3", storage=storage).trials
    # A budget of 0.6 s: the first trial starts before the budget is spent, and no other.
    assert len(trials) == 1 and trials[0].state == optuna.trial.TrialState.COMPLETE, trials
    assert trials[0].user_attrs["outcome"] == "trained", trials[0].user_attrs
