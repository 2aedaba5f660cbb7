"""``search show``: a readable table by default, CSV and JSON with raw numbers for scripts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from synthetic_study import make_study

from evaluation.metrics import METRICS, format_metric
from search.cli import main
from search.commands._progress import format_duration
from search.pareto import TRIAL_COLUMNS, ranked_trials
from search.post.export import export_study
from search.storage.records import TrialRecord
from search.storage.studies import make_storage, study_dir

optuna.logging.set_verbosity(optuna.logging.WARNING)

COLUMNS = ["number", "state", "outcome", *METRICS, *TRIAL_COLUMNS]  # the same for every study of this tool


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A studies folder holding "shown": 30 trials of every outcome, screened by zero-cost proxies,
    stored as ``search run`` stores a study (a journal file in its folder)."""
    root = tmp_path_factory.mktemp("studies")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEARCH_STUDIES_DIR", str(root))
        storage = make_storage(f"journal:{study_dir('shown') / 'journal.log'}")
        make_study(30, seed=2, storage=storage, name="shown", proxies=True)
        yield root


@pytest.fixture
def study(studies: Path, monkeypatch: pytest.MonkeyPatch) -> optuna.Study:
    monkeypatch.setenv("SEARCH_STUDIES_DIR", str(studies))
    return optuna.load_study(study_name="shown", storage=make_storage(f"journal:{study_dir('shown') / 'journal.log'}"))


def _show(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(["show", "shown", *argv]) == 0
    return capsys.readouterr().out


def _missing_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON's null and CSV's empty cell both as None, so the two compare."""
    return frame.astype(object).where(frame.notna(), None)


def test_show_table_formats_values_as_the_progress_line_does(study, capsys) -> None:
    shown = _show(capsys, "--format", "table")
    assert shown == _show(capsys), "table is the default"
    assert "NaN" not in shown and "None" not in shown, "a missing value (a reason, an accuracy) is blank"
    lines = {int(line.split()[0]): line for line in shown.split("Pareto front")[0].splitlines()[2:] if line.strip()}
    for trial in study.trials:
        record = TrialRecord.load(trial)
        line = lines[trial.number]
        assert format_metric("macs", record.macs) in line, f"MACs as '17.7 M': {line}"
        assert format_metric("params", record.params) in line, f"params as '562 k': {line}"
        if record.proxies:
            assert format_metric("naswot", record.proxies["naswot"]) in line, f"a proxy, readable: {line}"
        if trial.values is not None and record.outcome == "trained":
            assert format_metric("accuracy", trial.values[0]) in line, f"accuracy as '81.94 %': {line}"
        if record.train_seconds:
            assert format_duration(record.train_seconds) in line, line
        if record.reason:
            assert line.rstrip().endswith(record.reason), f"the reason, left-aligned at the end: {line}"
    header = shown.splitlines()[1].split()
    assert header[:6] == ["trial", "state", "outcome", "accuracy", "MACs", "parameters"], header
    assert "SNIP" not in shown, "a proxy no trial has (SNIP failed everywhere) is left out of the table"
    front = shown.split("Pareto front")[1].splitlines()[2:]
    ranked = [r.trial.number for r in ranked_trials(study) if r.rank == 1]
    assert [int(line.split()[0]) for line in front] == ranked, "the front, best first, as export and finalize"


def test_show_csv_carries_raw_numbers_under_stable_names(study, capsys) -> None:
    frame = pd.read_csv(io.StringIO(_show(capsys, "--format", "csv")))
    assert list(frame.columns) == COLUMNS
    assert frame["number"].tolist() == [t.number for t in study.trials]
    by_number = frame.set_index("number")
    rank = {r.trial.number: r.rank for r in ranked_trials(study)}
    for trial in study.trials:
        row, record = by_number.loc[trial.number], TrialRecord.load(trial)
        assert row["macs"] == pytest.approx(record.macs) and row["params"] == record.params, row
        if trial.values is not None:
            assert row["accuracy"] == pytest.approx(trial.values[0], abs=0), "the value Optuna holds, unrounded"
        assert (row["state"], row["outcome"]) == (trial.state.name, record.outcome)
        assert pd.isna(row["reason"]) if record.reason is None else row["reason"] == record.reason
        assert pd.isna(row["rank"]) if trial.number not in rank else row["rank"] == rank[trial.number]
        assert row["front"] == (rank.get(trial.number) == 1)
        if record.proxies:
            assert row["naswot"] == pytest.approx(record.proxies["naswot"], abs=0) and pd.isna(row["snip"]), row


def test_show_json_matches_the_csv_and_front_only_is_exports_pareto_csv(study, capsys, tmp_path) -> None:
    rows = json.loads(_show(capsys, "--format", "json"))
    assert all(list(row) == COLUMNS for row in rows), "every row has every column, in order"
    from_csv = pd.read_csv(io.StringIO(_show(capsys, "--format", "csv")))
    pd.testing.assert_frame_equal(_missing_as_none(pd.DataFrame(rows)), _missing_as_none(from_csv), check_dtype=False)
    trained = next(row for row in rows if row["outcome"] == "trained")
    macs = TrialRecord.load(study.trials[trained["number"]]).macs
    assert trained["macs"] == macs and not isinstance(trained["macs"], str), "a number, not '17.7 M'"
    assert trained["reason"] is None and isinstance(trained["rank"], int), trained

    front = json.loads(_show(capsys, "--format", "json", "--front-only"))
    assert [row["number"] for row in front] == [r.trial.number for r in ranked_trials(study) if r.rank == 1]
    export_study(study, tmp_path, top=None, python=False)
    exported = pd.read_csv(tmp_path / "pareto.csv")
    shown = pd.read_csv(io.StringIO(_show(capsys, "--format", "csv", "--front-only")))
    pd.testing.assert_frame_equal(shown, exported)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "trials.csv"), from_csv)


def test_show_scripts_get_an_empty_table_for_a_study_without_trials(studies_dir, capsys) -> None:
    optuna.create_study(
        study_name="empty",
        storage=make_storage(f"journal:{study_dir('empty') / 'journal.log'}"),
        directions=["maximize"],
    )
    capsys.readouterr()
    assert main(["show", "empty", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["show", "empty", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().split(",")[:3] == ["number", "state", "outcome"]
    assert main(["show", "empty"]) == 0
    assert "has no trials yet" in capsys.readouterr().out
