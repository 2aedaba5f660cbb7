"""``search.run_search``: the search as a library, without the command line."""

from __future__ import annotations

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import search
from evaluation import Architecture
from search.execution.distinct import counted_trials
from search.storage.studies import open_study


def test_run_search_returns_the_study_with_its_trials_and_settings(tiny_space, studies_dir, capsys) -> None:
    plans: list[search.RunPlan] = []
    seen: list[int] = []
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("library", report=False),
        budget=search.Budget(trials=2),
        on_start=plans.append,
        on_trial=lambda study, trial: seen.append(trial.number),
    )
    assert isinstance(study, optuna.Study) and study.study_name == "library", study
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 2 and len(study.trials) == 2, [t.state for t in study.trials]
    for trial in finished:
        accuracy, macs = trial.values
        assert 0.0 <= accuracy <= 1.0 and macs > 0, f"trial {trial.number}: accuracy and MACs, got {trial.values}"
        assert trial.user_attrs["outcome"] in {"trained", "rejected", "duplicate"}, trial.user_attrs
    settings = study.user_attrs["settings"]
    assert settings["space"] == "tiny" and settings["dataset"] == "digits" and settings["trials"] == 2, settings
    assert settings["training"]["epochs"] == 1 and settings["training"]["device"] == "cpu", settings["training"]
    assert yaml.safe_load((studies_dir / "library" / "settings.yaml").read_text()) == settings, "settings.yaml matches"
    assert [(p.finished, p.to_run, p.report) for p in plans] == [(0, 2, None)], f"on_start is told the plan: {plans}"
    assert seen == [0, 1], f"on_trial is called after each trial: {seen}"
    assert len(open_study("library").trials) == 2, "the study is stored under studies/library/"
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "", f"the library prints nothing: {captured}"


def test_run_search_resumes_up_to_the_total_and_enqueues_known_architectures(tiny_space, studies_dir) -> None:
    search.run_search(space=tiny_space, study=search.StudySpec("resumed", report=False), budget=search.Budget(trials=1))
    plans: list[search.RunPlan] = []
    baseline = tiny_space.example()
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("resumed", enqueue=(baseline,), report=False),
        budget=search.Budget(trials=2),
        on_start=plans.append,
    )
    assert (plans[0].finished, plans[0].to_run) == (1, 1), f"one finished, one to run: {plans}"
    assert len(study.trials) == 2, "the total counts earlier runs"
    ran = Architecture.from_dict(study.trials[1].user_attrs["architecture"])
    assert ran == baseline, f"the enqueued architecture runs first: {ran}"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (lambda: {"budget": search.Budget(trials=0)}, "trials must be >= 1, got 0"),
        (lambda: {"budget": search.Budget(train_fraction=1.5)}, r"train_fraction must be in \(0, 1\], got 1.5"),
        (lambda: {"budget": search.Budget(timeout=float("nan"))}, "timeout must be a number of seconds > 0, got nan"),
        (lambda: {"budget": search.Budget(timeout=-5)}, "timeout must be a number of seconds > 0, got -5"),
        (lambda: {"workers": search.Workers(count=0)}, "workers must be >= 1, got 0"),
        (lambda: {"sampler": search.SamplerSpec("annealing")}, "unknown sampler 'annealing'; expected one of tpe, "),
        (
            lambda: {"leases": search.LeasePolicy(heartbeat_interval=5, grace_period=5)},
            r"grace_period must be longer than heartbeat_interval \(5 s\), got 5",
        ),
        (
            lambda: {"study": search.StudySpec("refused", enqueue=("no_such_net",))},
            "enqueue 'no_such_net': not a baseline of space tiny",
        ),
    ],
)
def test_run_search_refuses_a_bad_request_before_creating_a_study(tiny_space, studies_dir, request_, message) -> None:
    """Each object refuses a mistake when it is made, the plan what only the space can tell."""
    with pytest.raises(search.UsageError, match=message):
        search.run_search(space=tiny_space, **{"study": search.StudySpec("refused", report=False), **request_()})
    assert not (studies_dir / "refused").exists(), "nothing is created for a refused request"


def test_run_search_with_the_gp_sampler_models_after_its_startup_trials(tiny_space, studies_dir) -> None:
    """GPSampler (multi-objective, constrained) after 3 random trials; pruner none, since it learns
    from completed trials only."""
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("gp", report=False),
        budget=search.Budget(trials=4),
        sampler=search.SamplerSpec("gp"),
        pruning=search.Pruning("none"),
    )
    assert isinstance(study.sampler, optuna.samplers.GPSampler), study.sampler
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE] * len(states) and counted_trials(study) == 4, states
    assert study.user_attrs["settings"]["sampler"] == "gp"
    modelled = [t.number for t in study.trials if any(k.startswith("gp:relative_params") for k in t.system_attrs)]
    assert modelled == list(range(3, len(states))), (
        f"from the fourth trial on (copies of evaluated architectures included) the GP proposes, "
        f"the first three are random: {modelled}"
    )
