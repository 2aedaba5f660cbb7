"""MO-ASHA: the rung ladder, the decision on hand-made points, replay from a storage, a real run."""

from __future__ import annotations

import itertools
import warnings
from fractions import Fraction

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import search
from evaluation import Checkpoint, TrainConfig
from search.cli import main
from search.execution.objective import TrialObjective
from search.pruners import (
    Pruner,
    Pruning,
    RungPoint,
    budget_spent,
    decide,
    images_saved_fraction,
    rank_points,
    recorded_decisions,
    recorded_rungs,
    replay_decisions,
)
from search.report import collect_report, render_report
from search.report._figures import curves_figure
from search.storage.studies import open_study
from spaces import Objective, enqueue_architecture, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

UP_DOWN = ("maximize", "minimize")  # accuracy, MACs
OBJECTIVES = (Objective("accuracy", "maximize"), Objective("macs", "minimize"))

# Four distinct small nets on digits, trained three epochs each: enough points for rungs to decide.
PRUNING_SPACE = """\
description: Dense nets on 8x8 digits for the pruning tests.
dataset: digits
input: [1, 8, 8]
num_classes: 10
objectives: {accuracy: maximize, macs: minimize}
training: {epochs: 3, train_fraction: 1.0, batch_size: 64, lr: 0.2, schedule: onecycle}
stem: {style: small, width: {choice: [4, 8, 16]}}
stages:
  count: 1
  each:
    block: dense
    depth: {low: 1, high: 2}
    dense: {growth_rate: {choice: [4, 8, 16]}, bn_size: 0}
head: {norm: true}
baselines:
  b1: {stem: {style: small, width: 16}, stages: [{block: dense, depth: 2, growth_rate: 16, bn_size: 0}]}
  b2: {stem: {style: small, width: 4}, stages: [{block: dense, depth: 1, growth_rate: 4, bn_size: 0}]}
  b3: {stem: {style: small, width: 8}, stages: [{block: dense, depth: 2, growth_rate: 8, bn_size: 0}]}
  b4: {stem: {style: small, width: 16}, stages: [{block: dense, depth: 1, growth_rate: 8, bn_size: 0}]}
"""


@pytest.fixture(scope="module")
def pruning_space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spaces") / "pruned.yaml"
    path.write_text(PRUNING_SPACE)
    return path


def point(trial: int, accuracy: float, macs: float) -> RungPoint:
    return RungPoint(trial, (accuracy, macs))


# --- the ladder and the settings ---------------------------------------------------


def test_rungs_are_fractions_of_the_budget_in_images() -> None:
    assert Pruning("asha").rungs(9000) == (1000, 3000), "a ninth and a third of the budget (eta 3)"
    assert Pruning("asha").rungs(11008) == (1224, 3670), "rounded up: a rung has seen at least its fraction"
    assert Pruning("asha", min_fraction=Fraction(1, 4), eta=2).rungs(1000) == (250, 500)
    assert Pruning("asha", min_fraction=0.25, eta=2).min_fraction == Fraction(1, 4), "a float reads as its fraction"
    assert Pruning("none").rungs(9000) == (), "no pruner, no rungs"
    assert Pruning("median").rungs(9000) == (1000, 3000), "Optuna's pruners look at the same rungs"
    stored = Pruning("asha", min_fraction=Fraction(1, 27)).settings()
    assert stored == {"kind": "asha", "min_fraction": "1/27", "eta": 3}
    assert Pruning.from_settings(stored) == Pruning("asha", min_fraction=Fraction(1, 27)), "the settings round-trip"
    assert Pruning.from_settings(None) == Pruning("none"), "a study that stored no pruner had none"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sha"}, "unknown pruner 'sha'"),
        ({"kind": "asha", "eta": 1}, "eta must be an integer >= 2, got 1"),
        ({"kind": "asha", "min_fraction": 1}, r"first rung must be a fraction of the budget in \(0, 1\), got 1"),
        ({"kind": "asha", "min_fraction": 0}, r"in \(0, 1\), got 0"),
    ],
)
def test_pruning_refuses_bad_settings(kwargs, message) -> None:
    with pytest.raises(search.UsageError, match=message):
        Pruning(**kwargs)


def test_optuna_pruners_are_explicit_and_single_objective() -> None:
    assert isinstance(Pruning("none").optuna_pruner(9000), optuna.pruners.NopPruner)
    assert isinstance(Pruning("asha").optuna_pruner(9000), optuna.pruners.NopPruner), "ASHA decides itself"
    assert isinstance(Pruning("median").optuna_pruner(9000), optuna.pruners.MedianPruner)
    assert isinstance(Pruning("hyperband").optuna_pruner(9000), optuna.pruners.HyperbandPruner)
    with pytest.raises(search.UsageError, match="--pruner median is for single-objective spaces"):
        Pruning("median").check(OBJECTIVES)
    Pruning("median").check(OBJECTIVES[:1])
    Pruning("asha").check(OBJECTIVES)


# --- the decision on hand-made points ---------------------------------------------


def test_a_single_trial_continues() -> None:
    verdict = decide(point(0, 0.1, 1e6), [], UP_DOWN, eta=3)
    assert verdict.continued and (verdict.rank, verdict.points, verdict.keep) == (1, 1, 0), verdict


def test_with_fewer_than_eta_points_a_trial_continues_even_when_dominated() -> None:
    verdict = decide(point(1, 0.2, 2e6), [point(0, 0.9, 1e6)], UP_DOWN, eta=3)
    assert verdict.continued and verdict.rank == 2 and verdict.keep == 0, verdict
    assert "fewer than eta 3: continues" in verdict.reason(3)


def test_the_top_floor_n_over_eta_continue_by_non_dominated_sorting() -> None:
    best, middle, worst = point(0, 0.9, 1e6), point(1, 0.8, 2e6), point(2, 0.7, 3e6)
    assert not decide(worst, [best, middle], UP_DOWN, eta=3).continued, "third of three: outside the top 1"
    assert decide(best, [middle, worst], UP_DOWN, eta=3).continued, "arriving last does not matter to the best"
    # Not a weighted sum: a much cheaper, slightly less accurate net is on the first front too.
    cheap = point(3, 0.85, 1e4)
    ranked = rank_points([best, middle, worst, cheap], UP_DOWN)
    assert {p.trial for p in ranked[:2]} == {0, 3} and [p.trial for p in ranked[2:]] == [1, 2], ranked
    verdict = decide(middle, [best, worst, cheap, point(4, 0.6, 5e6), point(5, 0.5, 6e6)], UP_DOWN, eta=3)
    assert (verdict.rank, verdict.points, verdict.keep, verdict.continued) == (3, 6, 2, False), verdict
    assert verdict.reason(3) == "rank 3 of 6 by non-dominated sorting, outside the top 2 (1/3)"


def test_ties_within_a_front_go_to_its_ends_then_to_the_earlier_trial() -> None:
    # One front of five: accuracy rises with MACs. The ends (most accurate, cheapest) come first.
    front = [point(n, 0.5 + 0.1 * n, 10.0 ** (n + 3)) for n in range(5)]
    ranked = rank_points(front, UP_DOWN)
    assert {p.trial for p in ranked[:2]} == {0, 4}, f"the ends of the front first: {ranked}"
    assert ranked[0].trial == 0, "equal (infinite) crowding: the earlier trial first"
    # Crowding distance: trial 2 sits where the front is sparsest (its neighbours are the farthest apart).
    uneven = [point(0, 0.5, 1e3), point(1, 0.51, 1.1e3), point(2, 0.7, 5e4), point(3, 0.95, 1e6)]
    assert [p.trial for p in rank_points(uneven, UP_DOWN)] == [0, 3, 2, 1]
    # Identical points: neither dominates, and the earlier trial ranks first whichever arrives last.
    twin_a, twin_b, dominated = point(2, 0.8, 1e6), point(5, 0.8, 1e6), point(7, 0.7, 2e6)
    assert decide(twin_a, [twin_b, dominated], UP_DOWN, eta=3).continued
    assert not decide(twin_b, [twin_a, dominated], UP_DOWN, eta=3).continued
    assert [p.trial for p in rank_points([dominated, twin_b, twin_a], UP_DOWN)] == [2, 5, 7]


def test_an_unmeasured_cost_ranks_worst_without_breaking_the_sort() -> None:
    measured, unmeasured = point(0, 0.6, 1e6), point(1, 0.6, float("inf"))
    assert [p.trial for p in rank_points([unmeasured, measured], UP_DOWN)] == [0, 1]


def _arrive(order: list[RungPoint], eta: int = 3) -> dict[int, bool]:
    """Each point decided once, on arrival, against the points that came before it (ASHA)."""
    decided, seen = {}, []
    for p in order:
        decided[p.trial] = decide(p, seen, UP_DOWN, eta).continued
        seen.append(p)
    return decided


def test_asynchronous_arrival_an_early_trial_that_continued_is_not_stopped_later() -> None:
    points = [point(n, 0.50 + 0.05 * n, 1e6 * (5 - n)) for n in range(6)]  # each dominates the one before
    worst_first = _arrive(points)
    assert worst_first[0] and worst_first[1], "the first two arrive with too few peers and continue"
    assert worst_first == dict.fromkeys(range(6), True), "each later arrival is the best so far"
    again = decide(points[0], points[1:], UP_DOWN, eta=3)
    assert not again.continued, "judged among all six, trial 0 would stop; but it was judged on arrival"
    best_first = _arrive(list(reversed(points)))
    assert best_first == {5: True, 4: True, 3: False, 2: False, 1: False, 0: False}, best_first
    # The same set in any order: one ranking, whatever the arrival order.
    rankings = {tuple(p.trial for p in rank_points(list(order), UP_DOWN)) for order in itertools.permutations(points)}
    assert rankings == {(5, 4, 3, 2, 1, 0)}, rankings


# --- replay from a storage ---------------------------------------------------------

# (arrival order, trial number, accuracy at the rung, MACs): numbers arrive out of order, as with workers.
ARRIVALS = [
    (0, 0.40, 3e5),
    (2, 0.55, 2e5),
    (1, 0.30, 9e5),
    (4, 0.60, 1e5),
    (3, 0.58, 4e5),
    (6, 0.35, 8e5),
    (5, 0.62, 5e5),
]


def test_replay_from_a_journal_storage_gives_the_in_process_decisions(tmp_path) -> None:
    path = tmp_path / "journal.log"
    study = optuna.create_study(
        study_name="replay", storage=JournalStorage(JournalFileBackend(str(path))), directions=list(UP_DOWN)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "macs"])
    trials = {}
    for _ in ARRIVALS:  # asked first, all running at once, as by several workers
        trial = study.ask()
        trials[trial.number] = trial
    pruner = Pruner(Pruning("asha"), OBJECTIVES, budget=900)
    assert pruner.rungs == (100, 300)
    in_process = _arrive([point(n, accuracy, macs) for n, accuracy, macs in ARRIVALS])
    for n, accuracy, macs in ARRIVALS:
        trial = trials[n]
        trial.set_user_attr("macs", macs)  # what the objective stores before training
        watch = pruner.watch(trial)
        stop = watch(Checkpoint(images=128, epoch=1, val_accuracy=accuracy))
        assert stop == (not in_process[n]), f"trial {n}: the watch and the pure decision agree"
        # Finished trials of every state stay in the comparison: some stop, one fails, others run on.
        if stop:
            study.tell(trial, state=TrialState.PRUNED)
        elif n == 4:
            study.tell(trial, state=TrialState.FAIL)
    assert sorted(n for n, kept in in_process.items() if not kept) == [1, 3, 6], in_process

    reopened = optuna.load_study(study_name="replay", storage=JournalStorage(JournalFileBackend(str(path))))
    replayed = replay_decisions(reopened)
    assert [(r.trial, r.rung) for r in replayed] == [(n, 1) for n in range(7)], "one decision per trial, rung 1"
    assert all(r.agrees for r in replayed), [r for r in replayed if not r.agrees]
    assert {r.trial: r.replayed.continued for r in replayed} == in_process
    stored = {t.number: t for t in reopened.trials}
    assert recorded_rungs(stored[3].user_attrs) == {100: 0.58}, "keyed by the rung's images, not the step's 128"
    decision = recorded_decisions(stored[3].user_attrs)[0]
    assert decision.peers == (0, 1, 2, 4) and (decision.rank, decision.points) == (3, 5), decision
    assert decision.reason.startswith("stopped at rung 1 of 2, 100 of 900 images: rank 3 of 5"), decision.reason


# --- in a real search --------------------------------------------------------------


def test_run_with_asha_prunes_trials_with_their_rung_and_reason(pruning_space_file, studies_dir, capsys) -> None:
    baselines = ["b1", "b2", "b3", "b4"]
    arguments = ["run", "--space", str(pruning_space_file), "--study", "asha", "--trials", "4", "--no-report"]
    assert main([*arguments, "--pruner", "asha", "--eta", "2", *(f"--enqueue-preset={b}" for b in baselines)]) == 0
    err = capsys.readouterr().err
    assert "pruner asha (rungs at 1/9, 2/9, 4/9, 8/9 of the budget, eta 2), schedule cosine instead of onecycle" in err
    study = open_study("asha")
    assert isinstance(study.pruner, optuna.pruners.NopPruner), "a study opened to read prunes nothing, not Median"
    assert study.user_attrs["settings"]["pruner"] == {"kind": "asha", "min_fraction": "1/9", "eta": 2}
    assert study.user_attrs["settings"]["training"]["schedule"] == "cosine", "one-cycle's rungs measure at chance"
    trained = [t for t in study.trials if t.user_attrs.get("images_planned")]
    pruned = [t for t in trained if t.state == TrialState.PRUNED]
    assert len(trained) == 4 and pruned, [(t.number, t.state.name) for t in study.trials]
    budget = trained[0].user_attrs["images_planned"]
    for trial in trained:
        rungs = recorded_rungs(trial.user_attrs)
        decisions = recorded_decisions(trial.user_attrs)
        assert rungs and len(rungs) == len(decisions), f"trial {trial.number}: an accuracy and a decision per rung"
        assert all(0.0 <= accuracy <= 1.0 for accuracy in rungs.values())
        assert trial.user_attrs["macs"] > 0, "the costs are stored"
    for trial in pruned:
        assert trial.user_attrs["outcome"] == "pruned" and trial.values is None, trial.user_attrs
        last = recorded_decisions(trial.user_attrs)[-1]
        assert not last.continued and trial.user_attrs["reason"] == last.reason, trial.user_attrs["reason"]
        assert trial.user_attrs["reason"].startswith(f"stopped at rung {last.rung} of 4, "), trial.user_attrs
        assert trial.user_attrs["images_seen"] < budget, "a stopped trial saw part of its budget"
    complete = [t for t in trained if t.state == TrialState.COMPLETE]
    assert all(t.user_attrs["images_seen"] == budget for t in complete), "a trial that continued saw it all"
    assert all(r.agrees for r in replay_decisions(study)), "the decisions replay from the storage"
    spent = budget_spent(study.trials)
    assert spent.images_planned == budget * len(trained) and 0 < images_saved_fraction(study) == spent.saved < 1

    # The report: learning curves with the rungs, a cross where each pruned trial stopped, the decisions.
    data = collect_report(study)
    assert data.budget == spent, "the report counts the budget as the study does"
    stopped = next(t for t in data.trials if t.state == "PRUNED")
    assert stopped.rung_epochs == pytest.approx([3 * images / budget for images, _ in stopped.rungs])
    assert stopped.progress[-1] == (stopped.rung_epochs[-1], stopped.rungs[-1][1]), "its curve ends at its last rung"
    figure = curves_figure(data)
    trace = next(t for t in figure["data"] if t["name"].startswith("pruned"))
    ends = [i for i, n in enumerate(trace["customdata"]) if n == stopped.number][-1]
    assert trace["x"][ends] == stopped.rung_epochs[-1] and trace["marker"]["size"][ends] > 0, "a cross marks it"
    assert [shape["x0"] for shape in figure["layout"]["shapes"]] == pytest.approx(
        [1 / 3, 2 / 3, 4 / 3, 8 / 3], rel=0.01
    )
    page = render_report(data)
    assert ">Successive halving</h2>" in page and f"{spent.saved:.0%} saved" in page, "the section says what it saved"
    assert f"rung {last.rung} ({last.images:,} images): rank {last.rank} of {last.points}, stopped" in page


def test_median_pruner_is_refused_on_a_multi_objective_space(pruning_space_file, studies_dir, capsys) -> None:
    code = main(["run", "--space", str(pruning_space_file), "--study", "median", "--pruner", "median"])
    err = capsys.readouterr().err
    assert code == 2, f"a user error exits 2, got {code}"
    assert err.count("\n") == 1 and "--pruner median is for single-objective spaces" in err, err
    assert not (studies_dir / "median").exists(), "nothing is created"


def test_median_pruner_on_a_single_objective_space_reports_at_the_rungs(pruning_space_file, studies_dir) -> None:
    single = pruning_space_file.with_name("single.yaml")
    single.write_text(PRUNING_SPACE.replace("{accuracy: maximize, macs: minimize}", "{accuracy: maximize}"))
    study = search.run_search(
        space=single,
        study=search.StudySpec("single", report=False),
        budget=search.Budget(trials=2),
        pruning=search.Pruning("median"),
    )
    assert isinstance(study.pruner, optuna.pruners.MedianPruner), study.pruner
    budget = study.trials[0].user_attrs["images_planned"]
    rungs = Pruning("median").rungs(budget)
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == list(rungs), "the accuracy at each rung, step = images"
        assert [d.reason.split(" at ")[0] for d in recorded_decisions(trial.user_attrs)] == [
            "kept by Optuna's median pruner"
        ] * len(rungs), "the median pruner waits for 5 trials"


def test_objective_takes_the_studys_pruning_and_copies_a_pruned_architecture(pruning_space_file, digits) -> None:
    """Worker processes build their objective without a pruner: the study's is used. A repeat
    of a stopped architecture is not trained again: it is pruned too."""
    space = load_space(pruning_space_file)
    study = optuna.create_study(directions=list(UP_DOWN), sampler=optuna.samplers.RandomSampler(seed=0))
    Pruning("asha", eta=2).store_in(study)
    config = TrainConfig(epochs=3, batch_size=64, lr=0.2, schedule="cosine", device="cpu")
    objective = TrialObjective(space=space, data=digits, config=config, latency_repeats=1)
    for name in ("b1", "b2", "b3", "b4"):
        study.enqueue_trial(enqueue_architecture(space, space.baseline(name)))
    study.optimize(objective, n_trials=4)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(recorded_rungs(t.user_attrs) for t in study.trials), "asha ran, from the study's settings"
    first = pruned[0]
    study.enqueue_trial(first.params)
    study.optimize(objective, n_trials=1)
    repeat = study.trials[-1]
    assert repeat.state == TrialState.PRUNED and repeat.user_attrs["duplicate_of"] == first.number, repeat.user_attrs
    assert repeat.user_attrs["images_seen"] == 0 and not recorded_rungs(repeat.user_attrs), "it trained nothing"
    assert "that one was stopped early, so is this one" in repeat.user_attrs["reason"]
