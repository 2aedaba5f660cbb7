"""The samplers' table: factories that receive the space, and ``--sampler grid`` as its proof."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import search
from search.cli import main
from search.samplers import GRID_LIMIT, SAMPLERS, SamplerContext, SamplerSpec, grid_points
from search.storage.studies import open_study
from spaces import load_space

# The tests' tiny space with one growth rate: a grid of 2 widths x 2 depths.
GRID_SPACE_CHANGE = ("growth_rate: {choice: [4, 64]}", "growth_rate: 4")


@pytest.fixture
def grid_space_file(tiny_space_file: Path, tmp_path: Path) -> Path:
    path = tmp_path / "grid4.yaml"
    path.write_text(tiny_space_file.read_text().replace(*GRID_SPACE_CHANGE))
    return path


def test_every_sampler_in_the_table_is_a_choice_of_the_command_and_makes_a_sampler(tiny_space) -> None:
    assert {"tpe", "nsga2", "random", "gp", "grid"} <= set(SAMPLERS), sorted(SAMPLERS)
    for name in SAMPLERS:
        sampler = SamplerSpec(name).make(SamplerContext(space=tiny_space, seed=0, trials=4))
        assert isinstance(sampler, optuna.samplers.BaseSampler), f"{name}: {sampler!r}"
    with pytest.raises(SystemExit):
        main(["run", "--sampler", "annealing"])


def test_a_sampler_factory_receives_the_space_and_the_run(tiny_space, studies_dir, monkeypatch) -> None:
    """A new sampler is one entry of the table; its factory is told the space, seed, worker and trials."""
    seen: list[SamplerContext] = []

    def recording(context: SamplerContext) -> optuna.samplers.BaseSampler:
        seen.append(context)
        return optuna.samplers.RandomSampler(seed=context.worker_seed)

    monkeypatch.setitem(SAMPLERS, "recording", recording)
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("told", report=False),
        budget=search.Budget(trials=1),
        sampler=search.SamplerSpec("recording"),
        seed=5,
    )
    assert study.user_attrs["settings"]["sampler"] == "recording"
    # Asked once to check the request before the study exists, then by the worker that ran.
    assert [(c.space.name, c.seed, c.trials, c.worker, c.existing_trials) for c in seen] == [("tiny", 5, 1, 0, 0)] * 2


def test_grid_points_count_every_combination_of_the_grid(tiny_space) -> None:
    grid = tiny_space.grid()
    assert grid_points(tiny_space) == len(list(itertools.product(*grid.values()))) == 8, grid


def test_the_grid_sampler_refuses_a_space_too_large_to_enumerate(studies_dir, capsys) -> None:
    size = grid_points(load_space("densenet_hybrid"))
    assert size > GRID_LIMIT, size
    code = main(["run", "--space", "densenet_hybrid", "--sampler", "grid", "--study", "huge"])
    err = capsys.readouterr().err
    assert code == 2, f"a user's mistake exits 2, got {code}: {err}"
    assert err.count("\n") == 1 and f"space densenet_hybrid has {size:,}" in err, err
    assert f"at most {GRID_LIMIT:,}" in err, err
    assert not (studies_dir / "huge").exists(), "nothing is created"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--trials", "5"], "has 4 grid points, fewer than the 5 trials asked; ask for at most 4"),
        (["--trials", "4", "--screen", "2"], "sampler grid trains every point as it comes; it takes no screening"),
    ],
)
def test_the_grid_sampler_refuses_what_it_cannot_enumerate(
    grid_space_file, studies_dir, capsys, flags, message
) -> None:
    code = main(["run", "--space", str(grid_space_file), "--sampler", "grid", "--study", "over", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (studies_dir / "over").exists(), "nothing is created"


def test_the_grid_sampler_trains_every_point_of_a_small_space_once(grid_space_file, studies_dir) -> None:
    space = load_space(grid_space_file)
    grid = space.grid()
    points = math.prod(len(values) for values in grid.values())
    argv = ["run", "--space", str(grid_space_file), "--sampler", "grid", "--study", "grid", "--no-report"]
    assert main([*argv, "--trials", str(points), "--epochs", "1"]) == 0
    trials = open_study("grid").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * points, [(t.number, t.state.name) for t in trials]
    visited = sorted(tuple(t.params[name] for name in grid) for t in trials)
    assert visited == sorted(itertools.product(*grid.values())), f"each of the {points} points once: {visited}"
    assert {t.user_attrs["outcome"] for t in trials} == {"trained"}, "every point is a new architecture"
