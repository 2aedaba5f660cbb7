"""benchmarks/simulator.py: its surrogate's fit, its trials against a real one's constraints, its runs and table."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from evaluation import Architecture, TrainConfig, build_model, count
from search.execution.objective import VALID_CONSTRAINT, TrialObjective
from search.samplers import SAMPLERS, SamplerContext
from search.storage.records import TrialOutcome, TrialRecord
from spaces import enqueue_architecture, load_space, precheck, sample_architecture

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import simulator  # noqa: E402
import simulator_commands  # noqa: E402
import simulator_data  # noqa: E402
import simulator_fit  # noqa: E402
import simulator_samplers  # noqa: E402

SPACE = load_space("densenet_hybrid")
REFERENCE = (0.5, 60e6)


@pytest.fixture(scope="module")
def subset() -> list[simulator_data.Observation]:
    """Two search-efficiency journals at the default budget, one MO-ASHA journal (not at it) and the fidelity panel."""
    journals = [
        simulator_data.RESULTS / "search_efficiency" / f"{name}.log" for name in ("tpe-s1", "nsga2-s0", "tpe_asha-s0")
    ]
    found, sources = simulator_data.committed_observations(SPACE, journals=journals, fidelity=simulator_data.FIDELITY)
    used = {source["source"]: (source["used"], source["trained"]) for source in sources}
    assert used == {"tpe-s1": (True, 47), "nsga2-s0": (True, 34), "tpe_asha-s0": (False, 4), "fidelity": (True, 24)}
    assert len(found) == 47 + 34 + 24, "MO-ASHA's runs (the whole split, cosine) are left out"
    return found


@pytest.fixture(scope="module")
def small_simulator(subset: list[simulator_data.Observation]) -> simulator.Simulator:
    """A simulator fitted on the subset (a ridge line): enough to exercise the trials, fast to build."""
    rows = simulator_data.rows_by_architecture(subset)
    encoder = simulator_fit.FeatureEncoder(SPACE)
    model = simulator_fit.CANDIDATES["ridge"]().fit(
        encoder.table([r.architecture for r in rows]), np.array([r.accuracy for r in rows])
    )
    noise = simulator_fit.NoiseModel(edges=(0.68,), residuals=((-0.06, -0.01, 0.02, 0.03), (-0.01, 0.005, 0.01)))
    return simulator.Simulator(SPACE, simulator.Surrogate(model, encoder), noise, fingerprint="test")


# --- data and fit -----------------------------------------------------------------------


def test_only_studies_at_the_space_budget_are_used() -> None:
    budget = {"epochs": 1, "train_fraction": 0.2, "batch_size": 128, "lr": 0.3, "schedule": "onecycle", "seed": 4}
    assert simulator_data.at_default_budget(budget, SPACE)
    for change in ({"train_fraction": 1.0}, {"schedule": "cosine"}, {"epochs": 3}):
        assert not simulator_data.at_default_budget(budget | change, SPACE), f"{change} is another budget"


def test_feature_encoder_reads_the_knobs_and_the_closed_form_size() -> None:
    encoder = simulator_fit.FeatureEncoder(SPACE)
    arch = SPACE.baseline("small_dense")
    row = dict(zip(encoder.columns, encoder.encode(arch.to_dict())))
    assert row["num_stages"] == 3 and row["stem.width"] == 16
    assert row["stage2.block=dense"] == 1 and row["stage2.block=residual"] == 0
    assert (row["stage3.depth"], row["stage3.growth_rate"], row["stage3.bn_size"]) == (4, 12, 4)
    assert row["transition2.compression"] == 0.5 and row["transition2.pooling=avg"] == 1
    # The size against torch's own count of the built model's parameters.
    model = build_model(arch, SPACE.input_size, SPACE.num_classes)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert row["log10_params"] == pytest.approx(math.log10(params))
    two_stages = dict(zip(encoder.columns, encoder.encode(_two_stage_architecture().to_dict())))
    assert two_stages["stage3.present"] == 0 and two_stages["transition2.present"] == 0
    assert all(v == 0 for k, v in two_stages.items() if k.startswith("stage3.")), "an absent stage reads 0"


def test_measure_noise_pools_the_seed_replicates_by_hand() -> None:
    arch_a, arch_b = SPACE.baseline("small_dense").to_dict(), _two_stage_architecture().to_dict()
    runs = [(arch_a, 1, 0.70), (arch_a, 2, 0.74), (arch_a, 3, 0.72), (arch_b, 1, 0.60), (arch_b, 2, 0.66)]
    observations = [simulator_data.Observation(a, acc, "noise", seed, 0, False) for a, seed, acc in runs]
    # On another split, so not a replicate of the same run: left out.
    observations.append(simulator_data.Observation(arch_b, 0.1, "tpe-s1", 7, 1, False))
    noise = simulator_fit.measure_noise(observations, bins=2)
    squares = (0.02**2 + 0.0 + 0.02**2) + (0.03**2 + 0.03**2)  # deviations from each architecture's mean
    assert noise["pooled_sd"] == pytest.approx(math.sqrt(squares / 3))
    low, high = noise["pooled_sd_95ci"]
    assert low < noise["pooled_sd"] < high
    assert noise["seed_pair_mae"] == pytest.approx(np.mean([0.04, 0.02, 0.02, 0.06]))
    assert [g["sd"] for g in noise["groups"]] == pytest.approx([math.sqrt(0.0018), 0.02]), "weakest group first"
    model = simulator_fit.NoiseModel.from_dict(noise["model"])
    assert model.edges == pytest.approx((0.675,)), "halfway between the groups' architectures"
    # Deviations from the architecture's mean, scaled to one run's spread: sqrt(n / (n - 1)).
    assert model.residuals[0] == pytest.approx((-0.03 * math.sqrt(2), 0.03 * math.sqrt(2)))
    assert model.residuals[1] == pytest.approx((-0.02 * math.sqrt(1.5), 0.02 * math.sqrt(1.5), 0.0), abs=1e-12)
    rng = np.random.default_rng(0)
    assert {model.draw(0.6, rng) for _ in range(50)} == set(model.residuals[0])
    assert {model.draw(0.9, rng) for _ in range(50)} <= set(model.residuals[1])


def test_noise_ceiling_is_perfect_without_noise_and_falls_with_it() -> None:
    truth = np.linspace(0.5, 0.8, 40)
    silent = simulator_fit.NoiseModel(edges=(), residuals=((0.0,),))
    assert simulator_fit.noise_ceiling(truth, silent, np.ones(40)) == {"spearman": 1.0, "mae": 0.0}
    loud = simulator_fit.NoiseModel(edges=(), residuals=((-0.05, 0.05),))
    noisy = simulator_fit.noise_ceiling(truth, loud, np.ones(40))
    assert 0.5 < noisy["spearman"] < 0.95 and noisy["mae"] == pytest.approx(0.05)
    twice = simulator_fit.noise_ceiling(truth, loud, np.full(40, 2))
    assert twice["mae"] == pytest.approx(0.025, rel=0.1), "the mean of two runs: half of them cancel"


def test_fit_on_a_small_subset_chooses_by_cross_validation_and_beats_the_mean(
    subset: list[simulator_data.Observation],
) -> None:
    replicates = [
        dataclasses.replace(o, accuracy=o.accuracy + delta, source="noise", seed=o.seed + 100 + i)
        for o in subset[-6:]  # the panel's, validated on split 0 as the replicates are
        for i, delta in enumerate((0.01, -0.01))
    ]
    rows = simulator_data.rows_by_architecture(subset)
    report = simulator_fit.fit_report(
        SPACE,
        committed=subset,
        trained=replicates,
        test_share=0.25,
        folds=3,
        candidates=["ridge", "random_forest_leaf3"],
    )
    scores = report["cross_validation"]["candidates"]
    assert report["chosen"] == min(scores, key=lambda name: scores[name]["mae"])
    random = sum(r.drawn_at_random for r in rows)
    assert 30 < random < len(rows) - 30, "the panel and the studies' first trials were drawn at random"
    held = round(0.25 * random) + round(0.25 * (len(rows) - random))  # a quarter of each origin
    assert report["architectures"] == {
        "all": len(rows),
        "drawn at random": random,
        "proposed by a model": len(rows) - random,
        "train": len(rows) - held,
        "held_out": held,
    }
    truth = np.array([r.accuracy for r in rows])
    chosen = scores[report["chosen"]]
    # On ~80 training architectures, out of fold (on all ~480, about 0.86): it ranks, and beats the mean.
    assert chosen["spearman"] > 0.5 and chosen["mae"] < np.mean(np.abs(truth - np.mean(truth))), chosen
    held_out = report["held_out"]["all"]
    assert held_out["n"] == held and held_out["spearman"] > 0, held_out
    # Six replicated here, and one the panel and nsga2-s0 (its trial 2, seed 2) both trained on split 0.
    assert report["noise"]["architectures"] == 7 and report["noise"]["pooled_sd"] > 0


# --- one trial --------------------------------------------------------------------------


def _two_stage_architecture() -> Architecture:
    stages = SPACE.baseline("small_dense").to_dict()
    stages["stages"], stages["transitions"] = stages["stages"][:2], stages["transitions"][:1]
    return Architecture.from_dict(stages)


def _over_the_macs_limit() -> Architecture:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(500):
        arch = sample_architecture(SPACE, study.ask())
        reason = precheck(SPACE, arch)
        if reason is not None and reason.startswith("macs"):
            return arch
    raise AssertionError("no architecture over the MACs limit in 500 draws")


def _real_finish(record: TrialRecord) -> tuple[list[float], dict[str, float]]:
    """What search.execution.objective's TrialObjective records for ``record`` (nothing trains: data unused)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    objective = TrialObjective(space=SPACE, data=None, config=TrainConfig())  # type: ignore[arg-type]
    values = objective._finish(trial, record, valid=True)
    return values, dict(study.tell(trial, values).constraints)


def _simulated(sim: simulator.Simulator, arch: Architecture, seed: int = 0) -> optuna.trial.FrozenTrial:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(enqueue_architecture(SPACE, arch))
    trial = study.ask()
    return study.tell(trial, simulator.SimulatedObjective(sim, seed=seed)(trial))


def test_a_trial_over_the_macs_limit_is_marked_as_a_real_search_marks_it(small_simulator) -> None:
    arch = _over_the_macs_limit()
    counts = count(arch, SPACE.input_size, SPACE.num_classes)
    frozen = _simulated(small_simulator, arch)
    values, constraints = _real_finish(TrialRecord(TrialOutcome.REJECTED, params=counts.params, macs=counts.macs))
    assert frozen.values == values == [0.0, counts.macs]
    assert frozen.constraints == pytest.approx(constraints)
    assert frozen.constraints["macs"] > 0 and frozen.constraints[VALID_CONSTRAINT] == 0
    assert frozen.user_attrs[simulator.OUTCOME] == "rejected"


def test_a_feasible_trial_is_the_surrogate_plus_noise_with_a_real_trial_constraints(small_simulator) -> None:
    arch = SPACE.baseline("small_dense")
    counts = count(arch, SPACE.input_size, SPACE.num_classes)
    frozen = _simulated(small_simulator, arch, seed=3)
    accuracy, macs = frozen.values
    mean = small_simulator.surrogate.predict(arch.to_dict())
    assert frozen.user_attrs[simulator.MEAN] == mean and macs == counts.macs
    assert accuracy - mean == pytest.approx(small_simulator.noise.draw(mean, np.random.default_rng([3, 0])))
    record = TrialRecord(
        TrialOutcome.TRAINED, params=counts.params, macs=counts.macs, val_accuracy_per_epoch=[accuracy]
    )
    values, constraints = _real_finish(record)
    assert frozen.values == values and frozen.constraints == pytest.approx(constraints)
    assert all(v <= 0 for v in frozen.constraints.values())
    assert _simulated(small_simulator, arch, seed=3).values == frozen.values, "the same seed, the same draw"
    draws = {_simulated(small_simulator, arch, seed=seed).values[0] for seed in range(8)}
    assert len(draws) > 1, "another seed, another draw"


def test_a_repeated_architecture_copies_its_recorded_values(small_simulator) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    objective = simulator.SimulatedObjective(small_simulator, seed=0)
    arch = enqueue_architecture(SPACE, SPACE.baseline("small_dense"))
    first = second = None
    for _ in range(2):
        study.enqueue_trial(arch)
        trial = study.ask()
        frozen = study.tell(trial, objective(trial))
        first, second = (frozen, None) if first is None else (first, frozen)
    assert second.values == first.values, "the second trial's noise is not drawn anew"
    assert second.constraints == first.constraints and second.user_attrs[simulator.OUTCOME] == "duplicate"


# --- a whole search -----------------------------------------------------------------------


def test_a_simulated_search_is_reproducible_from_its_seed(small_simulator) -> None:
    def run(seed: int) -> simulator.SimulatedRun:
        return simulator.run_simulated(
            small_simulator, optuna.samplers.TPESampler(seed=seed, n_startup_trials=5), trials=15, seed=seed
        )

    first = run(1)
    assert run(1) == first
    assert run(2).points != first.points
    assert len(first.points) == 15


class _Stuck(optuna.samplers.RandomSampler):
    """A sampler that proposes small_dense every time: a sampler that has converged."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.fixed = enqueue_architecture(SPACE, SPACE.baseline("small_dense"))

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        if param_name in self.fixed:
            return self.fixed[param_name]
        return super().sample_independent(study, trial, param_name, param_distribution)


def test_distinct_trials_do_not_count_repeats_and_fall_back_after_patience(small_simulator) -> None:
    today = simulator.run_simulated(small_simulator, _Stuck(), trials=4, seed=0)
    assert (today.proposals, today.repeats, today.distinct) == (4, 3, 1), "every proposal counts"
    rule = simulator.run_simulated(small_simulator, _Stuck(), trials=4, seed=0, distinct=True, patience=3)
    # One evaluation, then three times: three repeats and a random fallback.
    assert (rule.proposals, rule.repeats, rule.fallbacks, rule.distinct) == (13, 9, 3, 4)
    assert len(rule.points) == 4


def test_a_warm_start_hands_over_the_source_trials_and_copies_their_architectures(small_simulator) -> None:
    # The source evaluated small_dense, all a stuck sampler proposes.
    stuck_source = simulator.run_simulated(small_simulator, _Stuck(), trials=1, seed=2)
    warm = simulator.run_simulated(
        small_simulator, _Stuck(), trials=2, seed=0, distinct=True, patience=2, warm_start=stuck_source.study
    )
    handed = [t for t in warm.study.trials if "warm_started_from" in t.user_attrs]
    assert (
        len(handed) == 1
        and handed[0].user_attrs["architecture_key"] == stuck_source.study.trials[0].user_attrs[simulator.KEY]
    )
    # small_dense is known from the start: every proposal of it is a copy; both counted trials are fallbacks.
    assert (warm.repeats, warm.fallbacks, warm.distinct, len(warm.points)) == (4, 2, 2, 2)


def test_trials_to_reach_a_target_by_hand() -> None:
    curve = [0.1, 0.2, 0.2, 0.35, 0.4]
    assert simulator_samplers._first_reaching(curve, 0.2) == 2
    assert simulator_samplers._first_reaching(curve, 0.4) == 5
    assert simulator_samplers._first_reaching(curve, 0.41) is None
    runs = [
        {"target": 0.4, "cold_trials": 5, "warm_trials": 2, "warm_final": 0.5, "seconds": 1.0},
        {"target": 0.3, "cold_trials": 4, "warm_trials": None, "warm_final": 0.25, "seconds": 3.0},
    ]
    summary = simulator_samplers.summarise_warm_starts(runs, trials=5)
    assert summary["warm_reached"] == 1 and summary["warm_trials_median"] == 4.0  # (2 + 6) / 2: never counts as 6
    assert summary["cold_trials_median"] == 4.5 and summary["seconds_per_seed"] == 2.0


def test_hypervolume_curve_by_hand() -> None:
    top, cheap = math.log10(60e6), math.log10(5e5)
    # (recorded accuracy, noise-free accuracy, MACs); None: an infeasible trial.
    points = [(0.8, 0.8, 1e6), None, (0.9, 0.7, 1e7), (0.6, 0.6, 1e8), (0.85, 0.6, 5e5)]
    first = 0.3 * (top - 6)
    observed = simulator.hypervolume_curve(points, reference=REFERENCE)
    assert observed == pytest.approx(
        [first, first, first + 0.1 * (top - 7), first + 0.1 * (top - 7), 0.35 * (top - cheap) + 0.05 * (top - 7)]
    )
    true = simulator.hypervolume_curve(points, reference=REFERENCE, score="true")
    assert true[:4] == pytest.approx([first] * 4), "the third point's noise-free accuracy is dominated"
    assert true[4] == pytest.approx(0.2 * (top - 6) + 0.1 * (top - cheap))
    reported = simulator.hypervolume_curve(points, reference=REFERENCE, score="reported")
    assert reported[:4] == pytest.approx([first] * 4)
    # The lucky fifth run pushes the first (truly better) off the recorded front: the reported front loses it.
    assert reported[4] == pytest.approx(0.1 * (top - 7) + 0.1 * (top - cheap))
    with pytest.raises(ValueError, match="score must be one of"):
        simulator.hypervolume_curve(points, reference=REFERENCE, score="best")


# --- the comparison and its table ---------------------------------------------------------


def test_default_settings_are_the_registry_samplers() -> None:
    kinds = {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
             "random": optuna.samplers.RandomSampler, "gp": optuna.samplers.GPSampler}  # fmt: skip
    context = SamplerContext(space=SPACE, seed=3, trials=12)
    for name, kind in kinds.items():
        setting = simulator_samplers.SETTINGS[name]
        assert setting.method == name and not setting.distinct
        assert type(setting.make(context)) is type(SAMPLERS[name](context)) is kind
    default, ours = SAMPLERS["tpe"](context), simulator_samplers.SETTINGS["tpe"].make(context)
    assert vars(default)["_n_startup_trials"] == vars(ours)["_n_startup_trials"] == 4
    assert vars(simulator_samplers.SETTINGS["tpe startup=10"].make(context))["_n_startup_trials"] == 10


def test_the_table_is_generated_from_the_comparison_json(small_simulator, tmp_path: Path, capsys) -> None:
    cache: dict = {"runs": {}}
    simulator_samplers.run_all(
        small_simulator,
        cache,
        settings=["random", "tpe +distinct"],
        trial_counts=[8],
        seeds=range(3),
        save=lambda: None,
        log=lambda message: None,
    )
    assert len(cache["runs"]) == 6
    results = {"reference": {"accuracy": 0.5, "macs": 60e6}, "summary": simulator_samplers.summarise(cache)}
    finals = [cache["runs"][f"random|8|{seed}"]["observed"][-1] for seed in range(3)]
    row = results["summary"]["8"]["random"]["observed"]["100%"]
    assert row["mean"] == pytest.approx(np.mean(finals)) and row["seeds"] == 3
    assert row["ci95"][0] <= row["mean"] <= row["ci95"][1]
    path = tmp_path / "samplers.json"
    path.write_text(json.dumps(results))
    assert simulator_commands.main(["table", "--results", str(path)]) == 0
    table = capsys.readouterr().out
    assert "| random | 8 | 3 | " in table and f"{row['mean']:.4f}" in table
    assert "| tpe +distinct | 8 | 3 |" in table
    simulator_samplers.draw(results, tmp_path / "samplers.html")
    assert "plotly" in (tmp_path / "samplers.html").read_text()


def test_the_difference_from_the_baseline_is_paired_by_seed_against_scipy() -> None:
    from scipy import stats

    final = {"tpe": [0.30, 0.40, 0.35, 0.50], "random": [0.28, 0.37, 0.34, 0.45]}
    runs = {
        f"{name}|4|{seed}": {score: [0.0, 0.0, 0.0, value] for score in simulator.SCORES}
        | {"distinct": 4, "proposals": 4, "fallbacks": 0, "seconds": 1.0}
        for name, values in final.items()
        for seed, value in enumerate(values)
    }
    row = simulator_samplers.summarise({"runs": runs})["4"]["random"]["minus_baseline_at_100%"]
    expected = stats.ttest_rel(final["random"], final["tpe"])
    low, high = expected.confidence_interval(0.95)
    assert row["seeds"] == 4 and row["observed"]["difference"] == pytest.approx(-0.0275)
    assert row["observed"]["p_value"] == pytest.approx(expected.pvalue)
    assert row["observed"]["ci95"] == pytest.approx([low, high])


GENERATED = re.compile(
    r"<!-- generated by: (python benchmarks/simulator\.py table[^>]*) -->\n(.*?)<!-- end of generated table -->", re.S
)


@pytest.mark.parametrize("page", ["README.md", "docs/results/simulator.md"])
def test_the_pages_tables_are_the_committed_comparison_as_their_command_prints_it(page: str, capsys) -> None:
    text = (ROOT / page).read_text()
    blocks = GENERATED.findall(text)
    assert blocks, f"{page} holds no generated table"
    for command, table in blocks:
        assert simulator_commands.main(shlex.split(command)[2:]) == 0
        printed = capsys.readouterr().out
        assert table == printed, f"{page}: the table under `{command}` is not what it prints now; paste its output"
