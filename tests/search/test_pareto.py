"""search.pareto against fronts worked out by hand, and against Optuna's and scipy's own functions."""

from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna._hypervolume import compute_hypervolume  # Optuna's own (private) WFG, the outside reference
from optuna.samplers.nsgaii._elite_population_selection_strategy import _calc_crowding_distance
from optuna.study._multi_objective import _fast_non_domination_rank
from optuna.trial import TrialState
from scipy import stats
from synthetic_study import make_study

from search.commands._progress import Progress
from search.pareto import (
    candidates,
    crowding_distances,
    dominates,
    front_size_history,
    front_trials,
    hypervolume,
    is_non_dominated,
    kendall,
    non_dominated_ranks,
    rank_trials,
    ranked_trials,
    running_front_sizes,
    spearman,
    study_directions,
    to_losses,
)
from search.post.export import export_study
from search.post.finalize import select_trials
from search.report import collect_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

MAX_MIN = ("maximize", "minimize")  # accuracy up, MACs down
# Few distinct values, so ties and repeated points are common; infinity stands for an unmeasured cost.
VALUE = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 7.0, math.inf])


@st.composite
def loss_arrays(draw: st.DrawFn, max_objectives: int = 4) -> np.ndarray:
    objectives = draw(st.integers(1, max_objectives))
    rows = draw(st.lists(st.lists(VALUE, min_size=objectives, max_size=objectives), min_size=1, max_size=25))
    return np.array(rows, dtype=float)


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


# --- non-dominated sorting -------------------------------------------------------------


def test_non_dominated_ranks_by_hand() -> None:
    # (accuracy, MACs): A and B trade off; C is beaten by A; D by C; E repeats A.
    losses = to_losses([(0.9, 10), (0.95, 30), (0.8, 12), (0.7, 20), (0.9, 10)], MAX_MIN)
    assert non_dominated_ranks(losses).tolist() == [1, 1, 2, 3, 1], "equal points share their rank"
    assert is_non_dominated(losses).tolist() == [True, True, False, False, True]


@settings(max_examples=300, deadline=None)
@given(loss_arrays())
def test_non_dominated_ranks_match_optunas_fast_non_domination_rank(losses: np.ndarray) -> None:
    ours = non_dominated_ranks(losses)
    theirs = _fast_non_domination_rank(losses) + 1  # Optuna counts from 0
    assert ours.tolist() == theirs.tolist(), losses
    assert is_non_dominated(losses).tolist() == (theirs == 1).tolist(), losses


def test_to_losses_refuses_nan() -> None:
    with pytest.raises(ValueError, match="must not be NaN"):
        to_losses([(math.nan, 1.0)], MAX_MIN)


# --- crowding distance -------------------------------------------------------------------


def test_crowding_distances_by_hand() -> None:
    # One front of four along a line; per objective the span is 3, the middle points' neighbours 2 apart.
    losses = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]])
    assert crowding_distances(losses).tolist() == [math.inf, 4 / 3, 4 / 3, math.inf]
    # An objective whose span is not finite (an unmeasured cost) tells no point apart.
    unmeasured = np.array([[0.0, 1.0], [1.0, math.inf], [2.0, 5.0]])
    assert crowding_distances(unmeasured).tolist() == [math.inf, 1.0, math.inf]
    assert crowding_distances(np.array([[1.0, 1.0]])).tolist() == [0.0], "one point: nothing to tell apart"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3).flatmap(lambda m: st.lists(st.permutations(range(12)), min_size=m, max_size=m)), st.data())
def test_crowding_distances_match_optunas_nsga2_on_distinct_finite_values(columns, data) -> None:
    # Optuna orders ties as it meets them and spans only finite values: on distinct finite
    # values per objective the two agree exactly.
    size = data.draw(st.integers(1, 12))
    losses = np.array([column[:size] for column in columns], dtype=float).T * 0.37
    study = optuna.create_study(directions=["minimize"] * losses.shape[1])
    study.add_trials([optuna.trial.create_trial(values=list(row)) for row in losses])
    theirs = _calc_crowding_distance(list(study.trials))
    expected = [theirs[t.number] for t in study.trials]
    assert crowding_distances(losses).tolist() == pytest.approx(expected), losses


# --- hypervolume ---------------------------------------------------------------------------


def test_hypervolume_by_hand_and_against_optuna() -> None:
    # Two points and the reference (3, 3): a 2x1 strip and a 1x2 strip, 3 in all; a dominated
    # point and one beyond the reference add nothing.
    assert hypervolume([(1.0, 2.0), (2.0, 1.0), (2.5, 2.5), (4.0, 0.0)], (3.0, 3.0)) == pytest.approx(3.0)
    assert hypervolume([], (3.0, 3.0)) == 0.0
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = rng.uniform(0, 1, size=(int(rng.integers(1, 12)), 2))
        expected = compute_hypervolume(points, np.array([1.1, 1.2]))
        assert hypervolume([tuple(p) for p in points], (1.1, 1.2)) == pytest.approx(expected), points


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), max_size=15))
def test_hypervolume_matches_optunas_wfg(points) -> None:
    reference = (2.0, 3.0)
    inside = np.array([p for p in points if p[0] <= reference[0] and p[1] <= reference[1]]).reshape(-1, 2)
    expected = compute_hypervolume(inside, np.array(reference)) if len(inside) else 0.0
    assert hypervolume(points, reference) == pytest.approx(expected, abs=1e-9), points


def test_hypervolume_refuses_more_than_two_objectives() -> None:
    with pytest.raises(ValueError, match="2 objectives, got a reference point of 3"):
        hypervolume([(1.0, 1.0, 1.0)], (2.0, 2.0, 2.0))
    with pytest.raises(ValueError, match=r"2 objectives, got points of \[3\]"):
        hypervolume([(1.0, 1.0, 1.0)], (2.0, 2.0))


# --- rank correlation ------------------------------------------------------------------------

PAIRS = st.integers(3, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.8, 1.3]), min_size=n, max_size=n),  # ties
        st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(PAIRS)
def test_spearman_and_kendall_match_scipy(pairs) -> None:
    xs, ys = pairs
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        assert spearman(xs, ys) is None and kendall(xs, ys) is None, "a side that does not vary: no correlation"
        return
    assert spearman(xs, ys) == pytest.approx(stats.spearmanr(xs, ys).statistic, abs=1e-12), pairs
    assert kendall(xs, ys) == pytest.approx(stats.kendalltau(xs, ys).statistic, abs=1e-12), pairs


def test_rank_correlation_needs_three_pairs_that_vary() -> None:
    assert spearman([1.0, 2.0], [2.0, 1.0]) is None, "two pairs always give +-1: no evidence"
    assert spearman([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) is None, "a constant side"
    assert spearman([1.0, 2.0, math.inf], [1.0, 2.0, 3.0]) is None, "a value that is not finite"
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == -1.0
    assert kendall([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(4 / 6), "5 concordant, 1 discordant"
    with pytest.raises(ValueError, match="needs pairs: got 3 and 2"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])


# --- the rule that ranks a study's trials ---------------------------------------------------------


def _study(directions=MAX_MIN) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"][: len(directions)] + ["latency_ms"][: len(directions) - 2])
    return study


def _add(study, values, *, feasible=True, key=None, outcome="trained", state=TrialState.COMPLETE):
    attrs = {"outcome": outcome} | ({"architecture_key": key} if key else {})
    trial = optuna.trial.create_trial(
        state=state, values=values, user_attrs=attrs, constraints={"valid": 0.0 if feasible else 1.0}
    )
    study.add_trial(trial)


def test_front_trials_matches_a_front_worked_out_by_hand():
    study = _study()
    points = [(0.5, 10), (0.6, 20), (0.55, 15), (0.4, 12), (0.65, 30), (0.9, 1)]
    feasible = [True, True, True, True, True, False]  # the best point is infeasible
    for (accuracy, macs), ok in zip(points, feasible):
        trial = study.ask()
        trial.set_constraint("valid", 0.0 if ok else 1.0)
        study.tell(trial, [accuracy, macs])
    assert [t.number for t in front_trials(study)] == [0, 1, 2, 4], "trial 3 is dominated by 0, trial 5 infeasible"
    assert running_front_sizes([p if ok else None for p, ok in zip(points, feasible)], MAX_MIN)[-1] == 4, "same size"


def test_running_front_sizes_by_hand():
    values = [(0.5, 10), (0.6, 20), None, (0.55, 15), (0.7, 5), (0.7, 5)]
    # front after each: {A}, {A,B}, {A,B}, {A,B,D}, {E} (dominates all), {E,E'} (equal share)
    assert running_front_sizes(values, MAX_MIN) == [1, 2, 2, 3, 1, 2], "front sizes"


def test_the_rule_takes_one_trial_per_architecture_and_ranks_by_quality_within_a_front() -> None:
    study = _study()
    _add(study, [0.80, 30.0], key="a")  # 0: front
    _add(study, [0.70, 10.0], key="b")  # 1: front
    _add(study, [0.80, 30.0], key="a", outcome="duplicate")  # 2: values copied from 0
    _add(study, [0.75, 40.0], key="c")  # 3: beaten by 0: rank 2
    _add(study, [0.99, 1.0], key="d", feasible=False)  # 4: infeasible
    _add(study, None, key="e", state=TrialState.FAIL)  # 5
    _add(study, [0.60, 40.0], key="c")  # 6: a repeat of c that was not marked: c's first trial stands
    assert len(study.best_trials) == 3, "Optuna counts the duplicate: equal vectors share its front"
    assert [t.number for t in candidates(study.trials)] == [0, 1, 3]
    ranked = ranked_trials(study)
    assert [(r.rank, r.trial.number) for r in ranked] == [(1, 0), (1, 1), (2, 3)], "best accuracy first"
    assert [t.number for t in front_trials(study)] == [0, 1]
    assert front_size_history(study.trials, study_directions(study)) == [(n, 1 if n == 0 else 2) for n in range(7)]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([MAX_MIN, ("minimize", "minimize"), ("maximize", "minimize", "minimize")]),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4), st.booleans()), max_size=20),
)
def test_the_rule_matches_optunas_best_trials_and_ranks(directions, rows) -> None:
    """Without repeated architectures the front is Optuna's ``Study.best_trials``, constraints
    applied, and the ranks are Optuna's non-dominated sort of the feasible trials."""
    study = _study(directions)
    for *values, feasible in rows:
        _add(study, [float(v) for v in values[: len(directions)]], feasible=feasible)
    assert [t.number for t in front_trials(study)] == sorted(t.number for t in study.best_trials)
    feasible = [t for t in study.trials if t.constraints["valid"] <= 0]
    ranked = rank_trials(study.trials, directions)
    assert sorted(r.trial.number for r in ranked) == [t.number for t in feasible], "every feasible trial, once"
    if feasible:
        expected = _fast_non_domination_rank(to_losses([t.values for t in feasible], directions)) + 1
        assert {r.trial.number: r.rank for r in ranked} == {t.number: int(k) for t, k in zip(feasible, expected)}
    assert [r.rank for r in ranked] == sorted(r.rank for r in ranked), "best rank first"
    history = front_size_history(study.trials, directions)
    for number, size in history:
        prefix = _study(directions)
        prefix.add_trials(study.trials[: number + 1])
        assert size == len(prefix.best_trials), f"front size after trial {number}"


def test_export_finalize_report_and_progress_rank_alike(tmp_path) -> None:
    """A synthetic study with rejected, pruned and failed trials and a duplicate of a front member
    (values copied, as the objective does): every consumer names the same front, in one order."""
    study = make_study(40, seed=4)
    first = front_trials(study)[0]
    duplicate = {**first.user_attrs, "outcome": "duplicate", "duplicate_of": first.number}
    study.add_trial(optuna.trial.create_trial(values=first.values, user_attrs=duplicate, constraints=first.constraints))
    ranked = [r.trial.number for r in ranked_trials(study) if r.rank == 1]
    assert len(study.best_trials) == len(ranked) + 1, "Optuna's front holds the duplicate too"
    assert sorted(ranked) == [t.number for t in front_trials(study)]
    assert [t.number for t in select_trials(study)] == ranked, "finalize"
    assert list(collect_report(study).front) == sorted(ranked), "report"
    export_study(study, tmp_path, top=None, python=False)
    best = [tmp_path / f"best-{k}.yaml" for k in range(1, len(ranked) + 2)]
    exported = [yaml.safe_load(path.read_text())["source"]["trial"] for path in best[:-1]]
    assert not best[-1].exists(), "one file per front member"
    assert exported == ranked, "export: best-K is the K-th of the ranking"
    assert pd.read_csv(tmp_path / "pareto.csv")["number"].tolist() == ranked, "pareto.csv: row K is best-K"
    stream = io.StringIO()
    Progress(total=41, done=40, stream=stream)(study, study.trials[-1])
    assert re.search(rf"\bfront {len(ranked)}\b", stream.getvalue()), f"progress: {stream.getvalue()}"


def test_progress_counts_a_duplicate_architecture_once() -> None:
    study = _study()
    _add(study, [0.80, 30.0], key="a")
    _add(study, [0.70, 10.0], key="b")
    _add(study, [0.80, 30.0], key="a", outcome="duplicate")
    stream = io.StringIO()
    Progress(total=3, done=2, stream=stream)(study, study.trials[-1])
    line = stream.getvalue()
    assert "front 2" in line and "best accuracy 80.00 %" in line, line
    assert len(study.best_trials) == 3, "Optuna's count would have included the duplicate"
