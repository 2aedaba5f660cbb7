"""Pareto helpers against fronts worked out by hand, and against Optuna's own front."""

import numpy as np
import optuna
import pytest
from optuna._hypervolume import compute_hypervolume  # Optuna's own (private) WFG, the outside reference

from search.pareto import dominates, front_trials, hypervolume_2d, running_front_sizes

MAX_MIN = ("maximize", "minimize")  # accuracy up, MACs down


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0.9, 10), (0.8, 20), True),  # better in both
        ((0.9, 20), (0.8, 20), True),  # better in one, equal in the other
        ((0.9, 30), (0.8, 20), False),  # a trade-off: neither dominates
        ((0.9, 10), (0.9, 10), False),  # equal vectors do not dominate
        ((0.8, 20), (0.9, 10), False),  # worse in both
    ],
)
def test_dominates_follows_directions(a, b, expected):
    assert dominates(a, b, MAX_MIN) is expected, f"dominates({a}, {b})"


def test_running_front_sizes_by_hand():
    values = [(0.5, 10), (0.6, 20), None, (0.55, 15), (0.7, 5), (0.7, 5)]
    # front after each: {A}, {A,B}, {A,B}, {A,B,D}, {E} (dominates all), {E,E'} (equal share)
    assert running_front_sizes(values, MAX_MIN) == [1, 2, 2, 3, 1, 2], "front sizes"


def test_front_trials_matches_a_front_worked_out_by_hand():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=list(MAX_MIN))
    points = [(0.5, 10), (0.6, 20), (0.55, 15), (0.4, 12), (0.65, 30), (0.9, 1)]
    feasible = [True, True, True, True, True, False]  # the best point is infeasible
    for (accuracy, macs), ok in zip(points, feasible):
        trial = study.ask()
        trial.set_constraint("valid", 0.0 if ok else 1.0)
        study.tell(trial, [accuracy, macs])
    assert [t.number for t in front_trials(study)] == [0, 1, 2, 4], "trial 3 is dominated by 0, trial 5 infeasible"
    assert running_front_sizes([p if ok else None for p, ok in zip(points, feasible)], MAX_MIN)[-1] == 4, "same size"


def test_hypervolume_2d_by_hand_and_against_optuna() -> None:
    # Two points and the reference (3, 3): a 2x1 strip and a 1x2 strip, 3 in all; a dominated
    # point and one beyond the reference add nothing.
    assert hypervolume_2d([(1.0, 2.0), (2.0, 1.0), (2.5, 2.5), (4.0, 0.0)], (3.0, 3.0)) == pytest.approx(3.0)
    assert hypervolume_2d([], (3.0, 3.0)) == 0.0
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = rng.uniform(0, 1, size=(int(rng.integers(1, 12)), 2))
        expected = compute_hypervolume(points, np.array([1.1, 1.2]))
        assert hypervolume_2d([tuple(p) for p in points], (1.1, 1.2)) == pytest.approx(expected), points
