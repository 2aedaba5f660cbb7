"""``--warm-start``: a new study begins with another study's finished trials, from any storage."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

import search
from search.cli import main
from search.execution.distinct import counted_trials, holds_budget_slot
from search.storage.studies import make_storage, open_study
from search.storage.warm_start import WARM_START_ATTR

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture(scope="module")
def source(tiny_space, tmp_path_factory) -> tuple[str, optuna.Study]:
    """A real small study of the tiny space, 3 architectures trained on digits, in a journal file:
    ``NAME@URL`` and the study."""
    folder = tmp_path_factory.mktemp("source")
    url = f"journal:{folder / 'source.log'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEARCH_STUDIES_DIR", str(folder / "studies"))
        study = search.run_search(
            space=tiny_space,
            study=search.StudySpec("source", storage=url, report=False),
            budget=search.Budget(trials=3),
            seed=1,
        )
    return f"source@{url}", study


def test_a_warm_start_hands_the_trials_to_the_sampler_and_counts_none(tiny_space, studies_dir, source) -> None:
    text, origin = source
    handed = [t for t in origin.get_trials(states=FINISHED) if t.user_attrs["outcome"] != "duplicate"]
    plans: list[search.RunPlan] = []
    run = {
        "space": tiny_space,
        "study": search.StudySpec("warm", warm_start=text, report=False),
        "sampler": search.SamplerSpec("gp"),
        "on_start": plans.append,
    }
    study = search.run_search(**run, budget=search.Budget(trials=2))
    assert [(p.finished, p.to_run, p.warm_started) for p in plans] == [(0, 2, len(handed))], plans
    warm = [t for t in study.trials if WARM_START_ATTR in t.user_attrs]
    assert [t.user_attrs[WARM_START_ATTR] for t in warm] == [f"source#{t.number}" for t in handed], warm
    for new, old in zip(warm, handed):
        assert (new.state, new.params, new.distributions, new.values, new.constraints) == (
            old.state,
            old.params,
            old.distributions,
            old.values,
            old.constraints,
        ), f"trial {old.number} is handed over as it was recorded"
        assert {k: v for k, v in new.user_attrs.items() if k != WARM_START_ATTR} == {
            k: v for k, v in old.user_attrs.items() if k != "duplicate_of"
        }, f"with its facts: {new.user_attrs}"
    own = [t for t in study.trials if WARM_START_ATTR not in t.user_attrs]
    counted = [t for t in own if t.state in FINISHED and holds_budget_slot(t)]
    assert counted_trials(study) == len(counted) == 2, [(t.number, t.user_attrs.get("outcome")) for t in own]
    known = {t.user_attrs["architecture_key"] for t in handed}
    assert not known & {t.user_attrs["architecture_key"] for t in counted}, "an architecture handed over is not counted"
    assert all(t.user_attrs["outcome"] == "duplicate" for t in own if t.user_attrs["architecture_key"] in known), (
        "a proposal of a handed-over architecture is copied, not trained"
    )
    modelled = [t.number for t in own if any(k.startswith("gp:relative_params") for k in t.system_attrs)]
    assert modelled == [t.number for t in own], (
        f"the GP models from the study's first own trial: its start-up trials were handed over: {modelled}"
    )
    assert study.user_attrs["settings"]["warm_start"] == {"study": "source", "storage": text.partition("@")[2]}

    resumed = search.run_search(**run, budget=search.Budget(trials=3))
    assert [p.warm_started for p in plans] == [len(handed)] * 2, "the same command resumes, handing nothing over twice"
    assert sum(WARM_START_ATTR in t.user_attrs for t in resumed.trials) == len(handed)
    assert counted_trials(resumed) == 3, "and evaluates one more architecture"


OBJECTIVES = ("{accuracy: maximize, macs: minimize}", "{accuracy: maximize, params: minimize}")
GROWTH = ("growth_rate: {choice: [4, 64]}", "growth_rate: {choice: [4, 32]}")
LIMIT = ("max_params: 20000", "max_params: 30000")


@pytest.mark.parametrize(
    ("change", "flags", "message"),
    [
        (GROWTH, [], "differs: the space's knobs or constraints"),
        (LIMIT, [], "differs: the space's knobs or constraints"),
        (OBJECTIVES, [], "differs: objectives ['accuracy (maximize)', 'macs (minimize)'] -> "),
        (None, ["--epochs", "2"], "differs: training.epochs 1 -> 2"),
    ],
    ids=["knobs", "constraints", "objectives", "training"],
)
def test_a_warm_start_from_another_space_is_refused_before_anything_is_created(
    tiny_space_file, tmp_path, studies_dir, source, capsys, change, flags, message
) -> None:
    space = tmp_path / "other.yaml"
    text = tiny_space_file.read_text()
    space.write_text(text if change is None else text.replace(*change))
    assert space.read_text() != text or flags, "the case changes something"
    argv = ["run", "--space", str(space), "--study", "refused", "--warm-start", source[0], "--no-report", *flags]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, f"one line, exit 2: {code} {err!r}"
    assert err.startswith(f"error: warm start {source[0]}: a warm start needs a study of the same space") and (
        message in err
    ), err
    assert not (studies_dir / "refused").exists(), "nothing is created"


def test_a_warm_start_is_refused_for_a_missing_study_and_an_existing_one(tiny_space_file, studies_dir, source, capsys):
    argv = ["run", "--space", str(tiny_space_file), "--no-report", "--trials", "1"]
    assert main([*argv, "--study", "late", "--warm-start", "nowhere"]) == 2
    assert "error: no study 'nowhere' under" in capsys.readouterr().err
    assert main([*argv, "--study", "late"]) == 0, "a study without a warm start"
    capsys.readouterr()
    assert main([*argv, "--study", "late", "--warm-start", source[0]]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: warm start source: study late exists, without a warm start; "
        "a warm start begins a new study, name another --study\n"
    ), err
    journal = source[0].partition("@")[2]
    assert main([*argv, "--study", "source", "--storage", journal, "--warm-start", source[0]]) == 2
    assert "a study cannot start from itself" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="source", storage=make_storage(journal)).trials) == len(source[1].trials), (
        "the source is left as it was"
    )
    assert len(open_study("late").trials) == 1
