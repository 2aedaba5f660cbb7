"""``--screen K``: K candidates scored per trial, the best by a proxy trained, every score recorded."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

import search
from evaluation import Architecture
from evaluation.proxies import PROXIES
from search.cli import main
from search.execution.screening import Candidate, choose
from search.samplers import SamplerContext, SamplerSpec
from spaces import sample_architecture

optuna.logging.set_verbosity(optuna.logging.WARNING)
TRIALS = 3


@pytest.fixture(scope="module")
def screened(tiny_space, tmp_path_factory) -> optuna.Study:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEARCH_STUDIES_DIR", str(tmp_path_factory.mktemp("studies")))
        return search.run_search(
            space=tiny_space,
            study=search.StudySpec("screened", report=False),
            budget=search.Budget(trials=TRIALS),
            screening=search.Screening(count=3, by="naswot"),
        )


def plain_proposals(space, trials: int) -> list[dict]:
    """The parameters the run's sampler proposes trial after trial, with nothing trained or screened."""
    sampler = SamplerSpec("tpe").make(SamplerContext(space=space, seed=0, trials=trials))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    proposals = []
    for _ in range(trials):
        trial = study.ask()
        sample_architecture(space, trial)
        proposals.append(trial.params)
        study.tell(trial, [0.5, 1.0])
    return proposals


def test_screen_records_every_candidate_and_trains_the_best_by_the_proxy(screened, tiny_space) -> None:
    copies = sum(t.user_attrs["outcome"] == "duplicate" for t in screened.trials)  # hold no slot of the budget
    assert len(screened.trials) == TRIALS + copies, "one trial per slot: the candidates that lost are no trials"
    for trial in screened.trials:
        candidates = trial.user_attrs["screened"]
        assert trial.user_attrs["screened_by"] == "naswot"
        assert [c["source"] for c in candidates] == ["sampler", "random", "random"], candidates
        trainable = [c for c in candidates if "reason" not in c]
        for c in trainable:
            assert set(c["scores"]) == set(PROXIES) and c["key"], f"every proxy scored: {c}"
        for c in candidates:
            if "reason" in c:
                assert "max_params" in c["reason"] and not c["chosen"], f"a candidate over a limit is never chosen: {c}"
        (chosen,) = [c for c in candidates if c["chosen"]]
        best = max(c["scores"]["naswot"] for c in trainable)
        assert chosen["scores"]["naswot"] == best, f"trial {trial.number}: the best NASWOT is trained: {candidates}"
        assert trial.user_attrs["architecture"] == chosen["architecture"], "the chosen candidate is the trial's"
        trained = sample_architecture(tiny_space, FixedTrial(trial.params))
        assert trained == Architecture.from_dict(chosen["architecture"]), "the trial's params are what was trained"
        if trial.user_attrs["outcome"] == "trained":
            assert trial.user_attrs["proxies"] == chosen["scores"], "the trained model is the one screened"


def test_screen_asks_the_trials_own_sampler_for_the_first_candidate(screened, tiny_space) -> None:
    # The first TRIALS are TPE's random start-up trials; later ones (copies made more) depend on the values.
    proposals = plain_proposals(tiny_space, TRIALS)
    first = [next(c for c in t.user_attrs["screened"] if c["source"] == "sampler") for t in screened.trials[:TRIALS]]
    drawn = [sample_architecture(tiny_space, FixedTrial(p)).to_dict() for p in proposals]
    assert [c["architecture"] for c in first] == drawn, "candidate 0 is what the sampler alone would propose"


def test_screen_1_leaves_the_search_as_it_was(tiny_space, studies_dir) -> None:
    study = search.run_search(
        space=tiny_space, study=search.StudySpec("plain", report=False), budget=search.Budget(trials=TRIALS)
    )
    assert [t.params for t in study.trials[:TRIALS]] == plain_proposals(tiny_space, TRIALS), (
        "the sampler's own proposals (its random start-up trials; copies made the study longer)"
    )
    for trial in study.trials:
        assert "screened" not in trial.user_attrs, "nothing is screened"
        if trial.user_attrs["outcome"] == "trained":
            proxies = trial.user_attrs["proxies"]
            assert set(proxies) == set(PROXIES) and all(math.isfinite(v) for v in proxies.values()), proxies


def test_screen_trains_an_enqueued_architecture_as_asked(tiny_space, studies_dir) -> None:
    baseline = tiny_space.example()
    study = search.run_search(
        space=tiny_space,
        study=search.StudySpec("enqueued", enqueue=(baseline,), report=False),
        budget=search.Budget(trials=1),
        screening=search.Screening(count=3),
    )
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and "screened" not in trial.user_attrs, trial.user_attrs
    assert Architecture.from_dict(trial.user_attrs["architecture"]) == baseline, "the enqueued one, not a candidate"


def candidate(reason: str | None = None, **scores: float | None) -> Candidate:
    return Candidate("random", {}, None, reason=reason, scores=scores)


def test_choose_by_a_proxy_or_by_the_mean_rank() -> None:
    full = {"synflow": 1.0, "grad_norm": 1.0, "snip": 1.0}
    candidates = [
        candidate(naswot=5.0, **full),
        candidate(naswot=9.0, **full),
        candidate("breaks max_params", naswot=99.0, **full),
    ]
    assert choose(candidates, "naswot") == 1, "the highest score among the trainable candidates"
    assert choose(candidates, "synflow") == 0, "ties go to the earlier candidate, the sampler's"
    votes = [
        candidate(synflow=3.0, naswot=1.0, grad_norm=1.0, snip=1.0),
        candidate(synflow=1.0, naswot=2.0, grad_norm=2.0, snip=None),
        candidate(synflow=2.0, naswot=3.0, grad_norm=3.0, snip=2.0),
    ]
    # Ranks (1 best): synflow 1, 3, 2; naswot 3, 2, 1; grad_norm 3, 2, 1; snip 2, 3 (missing), 1.
    assert choose(votes, "vote") == 2, "the lowest mean rank; a missing score ranks last"
    assert choose([candidate("x"), candidate("y")], "vote") == 0, "none trainable: the sampler's, to be rejected"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"count": 0}, "screen must be >= 1, got 0"),
        ({"count": 2, "by": "zen"}, "unknown screen_by 'zen'; expected one of synflow, naswot"),
    ],
)
def test_run_search_refuses_a_screening_it_cannot_run(tiny_space, studies_dir, request_, message) -> None:
    with pytest.raises(search.UsageError, match=message):
        search.run_search(
            space=tiny_space, study=search.StudySpec("refused", report=False), screening=search.Screening(**request_)
        )
    assert not (studies_dir / "refused").exists(), "nothing is created for a refused request"


def test_run_command_screen_flags(tiny_space_file, studies_dir, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--space", str(tiny_space_file), "--screen", "2", "--screen-by", "zen"])
    assert stopped.value.code == 2 and "invalid choice: 'zen'" in capsys.readouterr().err, (
        "argparse names the bad choice"
    )
    argv = ["run", "--space", str(tiny_space_file), "--study", "cli", "--trials", "1", "--screen", "2"]
    assert main([*argv, "--screen-by", "snip", "--no-report"]) == 0
    (trial,) = optuna.load_study(study_name="cli", storage=f"sqlite:///{studies_dir / 'cli' / 'study.db'}").trials
    assert trial.user_attrs["screened_by"] == "snip" and len(trial.user_attrs["screened"]) == 2, trial.user_attrs
