"""benchmarks/search_efficiency.py: its hypervolume by hand and against Optuna's, and its refusal to mix budgets."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume  # Optuna's own (private) WFG, the outside reference

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import search_efficiency  # noqa: E402

from search.storage.studies import make_storage  # noqa: E402

TOP = math.log10(60e6)  # the reference point's log MACs


def test_hypervolume_is_the_area_the_points_dominate_from_the_reference() -> None:
    assert search_efficiency.hypervolume([(0.9, 7.0)]) == pytest.approx(0.4 * (TOP - 7.0))
    # A staircase of two: the cheaper point's rectangle plus the better one's strip beyond it.
    two = [(0.8, 6.0), (0.9, 7.0)]
    assert search_efficiency.hypervolume(two) == pytest.approx(0.3 * (TOP - 6.0) + 0.1 * (TOP - 7.0))
    # A dominated point and one worse than the reference add nothing.
    assert search_efficiency.hypervolume([*two, (0.7, 7.5), (0.4, 5.0)]) == pytest.approx(
        search_efficiency.hypervolume(two)
    )


def test_a_cache_of_other_settings_is_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "efficiency.json"
    settings = {"minutes": 30.0, "best": "tpe", "keep": 3, "retrain_epochs": 1, "retrain_fraction": 0.5}
    settings |= {"threads": 1, "reference_point": list(search_efficiency.REFERENCE)}
    out.write_text(json.dumps({"runs": {}, "retrained": {}, "settings": settings}))
    with pytest.raises(SystemExit) as exit_:
        search_efficiency.main(
            ["--minutes", "5", "--methods", "tpe", "--seeds", "0", "--threads", "1", "--out", str(out)]
        )
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert err.endswith("holds runs made with minutes 30.0 (asked 5.0); pass the same, or another --out\n"), err
    assert not out.with_suffix("").exists()  # no journal was started


def _trials(points: list[tuple[float, float]]) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trials([optuna.trial.create_trial(values=[accuracy, macs]) for accuracy, macs in points])
    return study.trials  # numbered, as a search's are


def test_best_few_keeps_the_part_of_a_large_front_that_dominates_most() -> None:
    cheap, middle, top = (0.70, 1e6), (0.80, 1e7), (0.90, 3e7)
    # Two near-copies of the top, each a hair more accurate for more MACs: the three most
    # accurate points of the front, which a cut by accuracy would keep.
    trials = _trials([cheap, middle, top, (0.901, 3.1e7), (0.902, 3.2e7), (0.6, 2e7)])
    kept = [tuple(t.values) for t in search_efficiency.best_few(trials, 3)]
    # top dominates 0.10 x (log10 60M - log10 30M) = 0.0301; the 0.902 one 0.102 x 0.273 = 0.0278.
    assert sorted(kept) == [cheap, middle, top]


def test_best_few_fills_a_small_front_from_the_next_by_accuracy() -> None:
    trials = _trials([(0.70, 1e6), (0.80, 1e7), (0.75, 2e7), (0.78, 3e7), (0.6, 4e7)])
    kept = [tuple(t.values) for t in search_efficiency.best_few(trials, 3)]
    assert kept == [(0.80, 1e7), (0.70, 1e6), (0.78, 3e7)], "the front of two, then the better of the second front"


def _journal_run(out: Path, name: str, points: list[tuple[str, float, float]]) -> None:
    """A finished search in the journal ``run_method`` gives ``name``: (architecture key, accuracy, MACs) trials."""
    study = optuna.create_study(
        study_name=name,
        storage=make_storage(f"journal:{out.with_suffix('')}/{name}.log"),
        directions=["maximize", "minimize"],
    )
    for key, accuracy, macs in points:
        attrs = {"outcome": "trained", "architecture": {"key": key}, "architecture_key": key, "macs": macs}
        study.add_trial(optuna.trial.create_trial(values=[accuracy, macs], user_attrs=attrs))


def test_rescore_all_scores_every_run_from_its_journal_and_trains_nothing(tmp_path: Path) -> None:
    """A stale curve (kept by a process that started before the retrainings) is replaced from the
    journal and the cache's retrainings; a run with an architecture not retrained yet keeps its curve."""
    out = tmp_path / "efficiency.json"
    out.with_suffix("").mkdir()
    _journal_run(out, "tpe-s0", [("a", 0.80, 1e6), ("b", 0.85, 1e7)])
    _journal_run(out, "random-s0", [("c", 0.70, 1e6)])
    stale = [{"minutes": 10.0, "trials_finished": 0, "hypervolume": 0.0}]
    retrained = {"a": {"macs": 1e6, "val_accuracy": 0.82}, "b": {"macs": 1e7, "val_accuracy": 0.84}}
    out.write_text(json.dumps({"runs": {}, "retrained": retrained}))  # what another process saved
    cache = {"runs": {"tpe": {"0": {"curve": stale}}, "random": {"0": {"curve": stale}}}, "retrained": {}}
    args = argparse.Namespace(out=out, minutes=10.0, keep=2)

    search_efficiency.rescore_all(cache, args, data=None)  # data=None: a retraining would fail

    curve = cache["runs"]["tpe"]["0"]["curve"]
    # Optuna's own hypervolume of the retrained (accuracy, log10 MACs) points, accuracy negated to
    # be minimised, from the reference point (accuracy 0.5, log10 of 60 M MACs).
    expected = compute_hypervolume(np.array([[-0.82, 6.0], [-0.84, 7.0]]), np.array([-0.5, TOP]))
    assert search_efficiency.hypervolume([(0.82, 6.0), (0.84, 7.0)]) == pytest.approx(expected)
    assert [point["hypervolume"] for point in curve] == pytest.approx([expected] * 4), curve
    assert [point["trials_finished"] for point in curve] == [2] * 4
    assert cache["runs"]["random"]["0"]["curve"] == stale, "c is not retrained: the run keeps its curve"


def test_a_method_recorded_by_an_older_commit_is_refused_without_its_journal(tmp_path: Path, capsys) -> None:
    out = tmp_path / "efficiency.json"
    with pytest.raises(SystemExit) as exit_:
        search_efficiency.main(["--methods", "tpe_copies", "--seeds", "0", "--threads", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: tpe_copies-s0 runs only as commit b0848e8 recorded it"), err
    journal = out.with_suffix("") / "tpe_copies-s0.log"
    assert not journal.exists() or not optuna.get_all_study_names(make_storage(f"journal:{journal}"))


def test_paired_difference_is_the_mean_of_the_seeds_differences_with_a_t_interval() -> None:
    def run(final: float) -> dict:
        return {"curve": [{"hypervolume": 0.0}, {"hypervolume": final}]}

    cache = {"runs": {"new": {"0": run(0.40), "1": run(0.35), "2": run(0.50), "3": run(0.9)},
                      "old": {"0": run(0.30), "1": run(0.37), "2": run(0.41)}}}  # fmt: skip
    paired = search_efficiency.paired_difference(cache, "new", "old")
    assert paired["seeds"] == [0, 1, 2], "seed 3 has no partner"
    assert paired["per_seed"] == pytest.approx([0.10, -0.02, 0.09])
    # By hand: mean 0.17/3, sd of (0.10, -0.02, 0.09), t(0.975, 2) = 4.302653.
    mean, sd = 0.17 / 3, float(np.std([0.10, -0.02, 0.09], ddof=1))
    half = 4.302653 * sd / math.sqrt(3)
    assert paired["difference"] == pytest.approx(mean)
    assert paired["ci95"] == pytest.approx([mean - half, mean + half], rel=1e-5)
