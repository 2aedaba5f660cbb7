"""``search finalize``: the front retrained over seeds, final.csv, resuming, show and the report's final front."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from evaluation import Architecture, TrainConfig, count
from search.cli import main
from search.pareto import study_objectives
from search.post.final_results import final_dir, load_final
from search.post.finalize import TimeLimit, select_trials
from search.report import collect_report
from search.storage.records import TrialRecord, architecture_key
from search.storage.studies import default_storage, make_storage, open_study, study_dir

optuna.logging.set_verbosity(optuna.logging.WARNING)

TRAINING = TrainConfig(epochs=1, batch_size=64, lr=0.05, device="cpu", precision="fp32")


def _arch(width: int, depth: int) -> Architecture:
    return Architecture.from_dict(
        {
            "stem": {"style": "small", "width": width},
            "stages": [{"block": "dense", "depth": depth, "growth_rate": 4, "bn_size": 0}],
        }
    )


def _digits_study(
    name: str, trials: list[tuple[Architecture, float]], train_seconds: list[float] | None = None
) -> optuna.Study:
    """A study in studies/<name>/study.db, as ``search run`` leaves one on digits, of the given
    (architecture, validation accuracy) trials, each trained on 1,000 images in ``train_seconds``
    (default: 1 s); nothing is trained to make it."""
    study = optuna.create_study(
        study_name=name, storage=make_storage(default_storage(name)), directions=["maximize", "minimize"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"])
    study.set_user_attr(
        "settings",
        {"dataset": "digits", "input_size": [1, 8, 8], "num_classes": 10, "training": dataclasses.asdict(TRAINING)},
    )
    seconds = train_seconds or [1.0] * len(trials)
    for number, ((arch, accuracy), spent) in enumerate(zip(trials, seconds, strict=True)):
        counts = count(arch, (1, 8, 8), 10)
        record = TrialRecord(
            outcome="trained",
            architecture=arch.to_dict(),
            architecture_key=architecture_key(arch.to_dict()),
            params=counts.params,
            macs=counts.macs,
            latency_ms=0.1,
            val_accuracy_per_epoch=[accuracy],
            epochs_run=1,
            train_seconds=spent,
            images_seen=1_000,
        )
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE,
                values=[accuracy, counts.macs],
                params={"n": number},
                distributions={"n": IntDistribution(0, 100)},
                user_attrs={k: v for k, v in vars(record).items() if v is not None},
                constraints={"valid": 0.0},
            )
        )
    return study


def _front_of_three(name: str) -> optuna.Study:
    """Three trials, each on the front: more MACs buy more validation accuracy."""
    return _digits_study(name, [(_arch(4, 1), 0.60), (_arch(8, 1), 0.70), (_arch(8, 2), 0.80)])


def _finalize(name: str, *extra: str) -> int:
    return main(["finalize", name, "--epochs", "1", "--seeds", "2", "--device", "cpu", "--precision", "fp32", *extra])


def test_finalize_writes_two_rows_per_model_shows_the_final_front_and_resumes_without_training(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _front_of_three("three")
    assert _finalize("three") == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    folder = final_dir("three")
    frame = pd.read_csv(folder / "final.csv")
    assert frame.groupby("trial").size().to_dict() == {0: 2, 1: 2, 2: 2}, f"2 rows per model:\n{frame}"
    assert sorted(frame["seed"].unique()) == [0, 1], frame
    for column in ("test_accuracy", "params", "macs", "latency_ms", "train_seconds"):
        assert frame[column].notna().all(), f"final.csv lacks {column}:\n{frame}"
    for _, row in frame.iterrows():
        run = folder / f"trial-{row['trial']}" / f"seed-{row['seed']}"
        assert {p.name for p in run.iterdir()} == {"weights.pt", "model.onnx", "architecture.yaml", "result.json"}, run
        assert json.loads((run / "result.json").read_text())["test_accuracy"] == pytest.approx(row["test_accuracy"])
    assert "ETA" in captured.err and "[6/6]" in captured.err, f"progress with ETA on stderr: {captured.err}"

    # show and the report give each model's mean and standard deviation over its seeds
    stats = frame.groupby("trial")["test_accuracy"].agg(["mean", "std"])
    assert main(["show", "three"]) == 0
    shown = capsys.readouterr().out
    assert "Final training" in shown and "Spearman" in shown, shown
    for trial, (mean, std) in stats.iterrows():
        line = next(x for x in shown.splitlines() if re.match(rf"\s*{trial}\s+2\s", x))
        assert f"{mean * 100:.2f} %" in line and f"{std * 100:.2f} %" in line, f"trial {trial}: {line!r}"
    page = (study_dir("three") / "report.html").read_text()
    assert 'id="section-final"' in page and 'id="final-front"' in page, "finalize writes the report's final front"
    blob = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page, re.S)
    drawn = next(t for t in json.loads(blob.group(1))["final-front"]["data"] if t.get("meta") == "final")
    for trial, mean, bar in zip(drawn["customdata"], drawn["y"], drawn["error_y"]["array"]):
        assert (mean, bar) == pytest.approx(tuple(stats.loc[trial])), f"trial {trial}: the mean with a std error bar"
    assert sorted(drawn["customdata"]) == [0, 1, 2], drawn["customdata"]
    final = collect_report(optuna.load_study(study_name="three", storage=default_storage("three"))).final
    assert final is not None and [m.trial for m in final.models] == [0, 1, 2], final
    for model in final.models:
        assert model.test_mean == pytest.approx(stats.loc[model.trial, "mean"]), model
        assert model.test_std == pytest.approx(stats.loc[model.trial, "std"]), model

    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*/seed-*/*")}
    assert _finalize("three") == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "6 of 6 trainings already done" in err and "epoch 1/1" not in err, f"nothing retrained: {err}"
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*/seed-*/*")} == stamps, "no file was rewritten"
    assert pd.read_csv(folder / "final.csv").equals(frame), "final.csv is unchanged"


def test_finalize_refuses_to_mix_in_results_of_other_settings(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _digits_study("mixed", [(_arch(4, 1), 0.6)])
    assert main(["finalize", "mixed", "--epochs", "1", "--seeds", "1", "--device", "cpu"]) == 0
    capsys.readouterr()
    kept = (final_dir("mixed") / "trial-0" / "seed-0" / "result.json").read_text()
    code = main(["finalize", "mixed", "--epochs", "2", "--seeds", "1", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "epochs 1 (asked 2)" in err and "\n" not in err, f"exit {code}: {err!r}"
    assert (final_dir("mixed") / "trial-0" / "seed-0" / "result.json").read_text() == kept, "the kept run stays"
    final = load_final("mixed", objectives=study_objectives(open_study("mixed")))
    assert final is not None and len(final.models) == 1


def test_shards_share_the_plan_and_another_budget_trains_into_its_own_folder(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _digits_study("budgets", [(_arch(4, 1), 0.6)])
    assert main(["finalize", "budgets", "--epochs", "1", "--seeds", "1", "--device", "cpu"]) == 0
    kept = (final_dir("budgets") / "trial-0" / "seed-0" / "result.json").read_text()
    longer = ["finalize", "budgets", "--epochs", "2", "--seeds", "2", "--device", "cpu", "--folder", "final-2"]
    capsys.readouterr()

    assert main([*longer, "--shard", "1/2"]) == 0, capsys.readouterr().err
    folder = final_dir("budgets", "final-2")
    assert not (folder / "trial-0" / "seed-0").exists(), "shard 1 of 2 leaves the plan's first training to shard 0"
    assert pd.read_csv(folder / "final.csv")[["seed", "epochs"]].values.tolist() == [[1, 2]]
    assert main([*longer, "--shard", "0/2"]) == 0, capsys.readouterr().err
    table = pd.read_csv(folder / "final.csv")
    assert table[["seed", "epochs"]].values.tolist() == [[0, 2], [1, 2]], f"one table of both shards:\n{table}"
    assert "Final training" in capsys.readouterr().out, "finalize prints its folder's table"
    assert (final_dir("budgets") / "trial-0" / "seed-0" / "result.json").read_text() == kept, "final/ is untouched"
    assert pd.read_csv(final_dir("budgets") / "final.csv")["epochs"].tolist() == [1]

    with pytest.raises(SystemExit) as stopped:
        main([*longer, "--shard", "2/2"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "expected 0 <= I < N, got '2/2'" in err, err


def test_a_second_stage_starts_from_the_first_stages_weights_with_its_own_recipe(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _digits_study("stages", [(_arch(4, 1), 0.6)])
    assert main(["finalize", "stages", "--epochs", "1", "--seeds", "1", "--device", "cpu"]) == 0
    stage = ["finalize", "stages", "--folder", "swa", "--init-from", "final", "--epochs", "2", "--seeds", "1",
             "--schedule", "constant", "--lr", "1e-9", "--swa-epochs", "2", "--device", "cpu"]  # fmt: skip
    assert main(stage) == 0, capsys.readouterr().err
    first, second = (final_dir("stages", name) / "trial-0" / "seed-0" for name in ("final", "swa"))
    record = json.loads((second / "result.json").read_text())
    assert record["initialised_from"] == "final", record
    settings = record["settings"]
    assert (settings["schedule"], settings["lr"], settings["swa_epochs"], record["epochs"]) == ("constant", 1e-9, 2, 2)
    assert settings["batch_size"] == TRAINING.batch_size, "the settings not given stay the study's"
    started, ended = (torch.load(run / "weights.pt", weights_only=True) for run in (first, second))
    weights = [name for name in started if name.endswith("weight")]
    for name in weights:  # at a rate of 1e-9 the weights stay where the first stage left them
        assert torch.allclose(started[name], ended[name], atol=1e-6), f"{name} did not start from final/"

    missing = ["finalize", "stages", "--folder", "other", "--init-from", "nosuch", "--device", "cpu"]
    capsys.readouterr()
    code = main(missing)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nosuch" in err and "no weights to start from" in err and "\n" not in err, err
    assert not final_dir("stages", "other").exists(), "nothing trains when a start is missing"


def test_select_trials_takes_the_front_then_ranks_by_non_dominated_sorting(studies_dir: Path) -> None:
    # 0 and 2 are the front; 1 is dominated by 0 (less accurate, more MACs); 3 repeats 0's architecture.
    study = _digits_study(
        "ranked", [(_arch(4, 1), 0.60), (_arch(8, 1), 0.55), (_arch(8, 2), 0.80), (_arch(4, 1), 0.60)]
    )
    duplicate = study.trials[3]
    assert duplicate.user_attrs["architecture_key"] == study.trials[0].user_attrs["architecture_key"]
    assert [t.number for t in select_trials(study)] == [2, 0], "the front, best accuracy first"
    assert [t.number for t in select_trials(study, top=3)] == [2, 0, 1], "then rank 2; the repeat counts once"
    assert [t.number for t in select_trials(study, top=1)] == [2], "--top cuts the order"


def test_a_time_limit_finalizes_the_best_model_whose_training_fits_at_its_search_speed(studies_dir: Path) -> None:
    # Trained on 1,000 images in 0.5, 1 and 8 s: 2,000, 1,000 and 125 images/s; the third also most accurate.
    study = _digits_study(
        "timed", [(_arch(4, 1), 0.60), (_arch(8, 1), 0.70), (_arch(8, 2), 0.80)], train_seconds=[0.5, 1.0, 8.0]
    )
    limit = TimeLimit(hours=1.0, epochs=100, images=18_000)  # 1.8 M images: 0.25, 0.5 and 4 h
    hours = [limit.predicted_hours(TrialRecord.load(t)) for t in study.trials]
    assert hours == pytest.approx([0.25, 0.5, 4.0]), hours
    assert [t.number for t in select_trials(study, top=1)] == [2], "without a limit the most accurate"
    assert [t.number for t in select_trials(study, top=1, limit=limit)] == [1], "the most accurate that fits"
    assert [t.number for t in select_trials(study, limit=limit)] == [1, 0], "the front within the limit"
    untimed = dataclasses.replace(TrialRecord.load(study.trials[0]), train_seconds=0.0)
    assert limit.predicted_hours(untimed) is None and not limit.admits(untimed), "nothing timed, nothing promised"


def test_finalize_with_no_model_within_its_hours_says_so_before_training(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _front_of_three("slow")
    code = _finalize("slow", "--max-hours", "1e-9")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "predicted to train 1 epochs within 1e-09 h" in err and "\n" not in err, err
    assert not final_dir("slow", "final").exists(), "nothing trained"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["finalize", "../../etc"], "study name must be"),
        (["finalize", "nosuch"], "no study 'nosuch'"),
        (["finalize", "nosuch", "--folder", "../../etc"], "final folder must be"),
        (["finalize", "nosuch", "--init-from", "../final"], "--init-from folder must be"),
    ],
)
def test_finalize_user_errors_exit_2_with_one_line(
    argv: list[str], fragment: str, studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err, f"exit {code}: {err!r}"


def test_finalize_of_a_study_without_a_feasible_trial_says_so(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _digits_study("empty", [])
    assert study.trials == []
    code = main(["finalize", "empty"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no completed feasible trial" in err, f"exit {code}: {err!r}"
