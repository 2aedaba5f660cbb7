"""Distinct trials: ``--trials N`` is N architectures evaluated; copies teach the sampler but count nothing."""

from __future__ import annotations

import io
import itertools
import warnings
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import search
from search.cli import main
from search.commands._progress import Progress
from search.execution.distinct import (
    FALLBACK_RANDOM,
    MAX_FRUITLESS_FALLBACKS,
    PROPOSED_BY_ATTR,
    REPEAT_LIMIT,
    REPEATS_BEFORE_FALLBACK,
    Exploration,
    counted_trials,
    holds_budget_slot,
)
from search.samplers import SAMPLERS, SamplerContext
from search.storage.records import architecture_key
from search.storage.studies import open_study
from spaces import enqueue_architecture, load_space, sample_architecture

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# The tests' tiny space with one growth rate: 2 widths x 2 depths, 4 architectures.
GRID_SPACE_CHANGE = ("growth_rate: {choice: [4, 64]}", "growth_rate: 4")


@pytest.fixture
def grid_space_file(tiny_space_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "grid4.yaml"
    path.write_text(tiny_space_file.read_text().replace(*GRID_SPACE_CHANGE))
    return path


@pytest.fixture
def fixed_sampler(tiny_space, monkeypatch) -> dict:
    """``--sampler fixed``: Optuna's PartialFixedSampler with every knob fixed, so it proposes one architecture only."""
    params = enqueue_architecture(tiny_space, tiny_space.example())

    def fixed(context: SamplerContext) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.PartialFixedSampler(params, optuna.samplers.RandomSampler(seed=context.worker_seed))

    monkeypatch.setitem(SAMPLERS, "fixed", fixed)
    return params


def _keys(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    return [t.user_attrs["architecture_key"] for t in trials]


def test_a_sampler_that_repeats_itself_consumes_no_budget_and_is_reported_converged(
    tiny_space, studies_dir, fixed_sampler
) -> None:
    notes: list[str] = []
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("fixed", report=False),
        budget=search.Budget(trials=3),
        sampler=search.SamplerSpec("fixed"),
        on_note=notes.append,
    )
    trials = study.trials
    counted = [t for t in trials if t.state in FINISHED and holds_budget_slot(t)]
    copies = [t for t in trials if t.user_attrs.get("outcome") == "duplicate"]
    assert counted_trials(study) == len(counted) == 3, [(t.number, t.user_attrs.get("outcome")) for t in trials]
    assert len(set(_keys(counted))) == 3, f"three distinct architectures: {_keys(counted)}"
    # The sampler's one architecture, then REPEATS_BEFORE_FALLBACK copies before each of two explorations.
    assert len(trials) == 3 + 2 * REPEATS_BEFORE_FALLBACK and len(copies) == 2 * REPEATS_BEFORE_FALLBACK, (
        f"{len(trials)} trials, {len(copies)} copies"
    )
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    first = trials[0]
    assert first.params == fixed_sampler and PROPOSED_BY_ATTR not in first.user_attrs, first.user_attrs
    for copy in copies:
        assert copy.params == fixed_sampler and copy.user_attrs["duplicate_of"] == 0, copy.user_attrs
        assert copy.values == first.values and copy.constraints == first.constraints, (
            f"trial {copy.number} is told the recorded values, so the sampler learns them"
        )
    explored = [t for t in trials if t.user_attrs.get(PROPOSED_BY_ATTR) == FALLBACK_RANDOM]
    assert [t.number for t in explored] == [1 + REPEATS_BEFORE_FALLBACK, 2 + 2 * REPEATS_BEFORE_FALLBACK], (
        f"each exploration follows {REPEATS_BEFORE_FALLBACK} repeats: {[t.number for t in explored]}"
    )
    assert all(t.params != fixed_sampler and t.user_attrs["outcome"] != "duplicate" for t in explored), explored
    converged = [line for line in notes if line.startswith("sampler converged:")]
    assert converged == [
        f"sampler converged: {REPEATS_BEFORE_FALLBACK} proposals in a row were architectures the study already "
        f"holds; trial {t.number} explores a random one"
        for t in explored
    ], notes
    assert study.user_attrs["settings"]["fallback_after"] == REPEATS_BEFORE_FALLBACK, study.user_attrs["settings"]


def test_the_command_says_so_and_show_lists_copies_apart(tiny_space_file, studies_dir, fixed_sampler, capsys) -> None:
    argv = ["run", "--space", str(tiny_space_file), "--study", "said", "--sampler", "fixed", "--no-report"]
    assert main([*argv, "--trials", "2", "--fallback-after", "2"]) == 0
    err = capsys.readouterr().err
    assert "sampler converged: 2 proposals in a row were architectures the study already holds; trial 3" in err, err
    assert "trial 1 duplicate (same architecture as trial 0; values copied)" in err and "[1/2]" in err, err
    assert "2 distinct architectures evaluated" in err, err
    assert main(["show", "said"]) == 0
    out = capsys.readouterr().out
    assert "trials of said (4; 2 count toward --trials, 2 copies of evaluated architectures):" in out, out


def test_a_run_stops_with_a_line_when_the_space_is_exhausted(grid_space_file, studies_dir, capsys) -> None:
    space = load_space(grid_space_file)
    assert space.size_is_exact and space.size() == 4, space.size()
    argv = ["run", "--space", str(grid_space_file), "--study", "all", "--sampler", "random", "--no-report"]
    assert main([*argv, "--trials", "6"]) == 0, "running out of architectures is no error"
    err = capsys.readouterr().err
    assert "stopped before the budget: space grid4 is exhausted: the study holds all its 4 architectures" in err, err
    study = open_study("all")
    counted = [t for t in study.trials if t.state in FINISHED and holds_budget_slot(t)]
    assert len(counted) == len(set(_keys(counted))) == 4, _keys(counted)


def _holding(space, points: list[dict]) -> optuna.Study:
    """A study holding one finished trial per grid point of ``points``, keyed as the objective keys them."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for params in points:
        key = architecture_key(sample_architecture(space, optuna.trial.FixedTrial(params)).to_dict())
        study.add_trial(optuna.trial.create_trial(values=[0.5, 1.0], user_attrs={"architecture_key": key}))
    return study


def test_exploration_draws_an_architecture_the_study_lacks_and_none_once_it_holds_all(grid_space_file) -> None:
    space = load_space(grid_space_file)
    points = [dict(zip(space.grid(), values)) for values in itertools.product(*space.grid().values())]
    exploration = Exploration(space=space, seed=0)
    assert exploration.propose(_holding(space, points[:3])) == points[3], "the one architecture left"
    full = _holding(space, points)
    assert exploration.propose(full) is None, "no draw finds an architecture the study lacks"
    assert exploration.stop(full) == "space grid4 is exhausted: the study holds all its 4 architectures"
    assert exploration.exhausted() == (
        "space grid4 looks exhausted: 1,000 random draws found no architecture the study does not hold"
    )


def _finished(outcome: str, **attrs) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(values=[0.5, 1.0], user_attrs={"outcome": outcome, **attrs})


def test_exploration_falls_back_after_repeats_and_stops_when_it_cannot_help(tiny_space) -> None:
    """Repeats in a row call the fallback; a counted trial resets them; fallbacks that add nothing, or
    repeats with the fallback off, stop the loop rather than let it spin."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    on = Exploration(space=tiny_space, seed=0, fallback_after=3)
    for _ in range(2):
        on.after(_finished("duplicate"))
    assert not on.due
    on.after(_finished("trained"))
    for _ in range(3):
        on.after(_finished("duplicate"))
    assert on.due and on.stop(study) is None, "three repeats in a row since the last architecture"
    explored = {PROPOSED_BY_ATTR: FALLBACK_RANDOM}
    for _ in range(MAX_FRUITLESS_FALLBACKS):
        on.after(_finished("duplicate", **explored))  # another worker evaluated it meanwhile
    assert on.stop(study) == f"{MAX_FRUITLESS_FALLBACKS} fallback architectures in a row added nothing " + (
        "(evaluated meanwhile, or failed)"
    )
    off = Exploration(space=tiny_space, seed=0, fallback_after=None)
    for _ in range(REPEAT_LIMIT):
        assert not off.due and off.stop(study) is None
        off.after(_finished("duplicate"))
    assert (
        off.stop(study) == f"the sampler proposed {REPEAT_LIMIT} architectures the study holds in a row (fallback off)"
    )


def test_progress_does_not_count_a_copy_toward_the_budget() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"])
    for outcome in ("trained", "duplicate"):
        attrs = {"outcome": outcome, "architecture_key": "a"}
        study.add_trial(optuna.trial.create_trial(values=[0.8, 30.0], constraints={"valid": 0.0}, user_attrs=attrs))
    stream = io.StringIO()
    progress = Progress(total=3, done=0, stream=stream)
    for trial in study.trials:
        progress(study, trial)
    lines = stream.getvalue().splitlines()
    assert "[1/3]" in lines[0] and "trial 1 duplicate" in lines[1] and "[1/3]" in lines[1], lines


def test_sampler_spec_refuses_a_fallback_that_is_no_count() -> None:
    with pytest.raises(search.UsageError, match=r"fallback_after must be None \(never\) or >= 1, got 0"):
        search.SamplerSpec("tpe", fallback_after=0)


def test_twelve_trials_on_the_default_space_are_twelve_distinct_architectures(studies_dir, capsys) -> None:
    """TPE on densenet_hybrid, a tiny budget: the study ends holding 12 distinct architectures evaluated,
    however many copies it made on the way."""
    argv = ["run", "--study", "twelve", "--trials", "12", "--epochs", "1", "--train-fraction", "0.005", "--no-report"]
    assert main(argv) == 0
    study = open_study("twelve")
    counted = [t for t in study.trials if t.state in FINISHED and holds_budget_slot(t)]
    assert len(counted) == counted_trials(study) == 12, [(t.number, t.user_attrs.get("outcome")) for t in study.trials]
    assert len(set(_keys(counted))) == 12, f"twelve distinct architectures: {_keys(counted)}"
    outcomes = Counter(t.user_attrs.get("outcome") for t in study.trials)
    assert set(outcomes) <= {"trained", "rejected", "duplicate"}, outcomes
    assert len(study.trials) == 12 + outcomes["duplicate"], f"every other trial is a copy: {outcomes}"
    err = capsys.readouterr().err
    assert "[12/12]" in err and "12 distinct architectures evaluated" in err, err[-800:]
