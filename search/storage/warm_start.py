"""``--warm-start STUDY``: a new study starts from another study's finished trials.

A longer or second search need not start from nothing. The source's complete
and pruned trials, one per architecture (its copies of evaluated
architectures stay behind), are added to the new study with Optuna's
``Study.add_trials``: their parameters and distributions, values,
constraints, learning curves and user attributes, each marked
``warm_started_from: SOURCE#NUMBER``. So TPE and GP model them from the first
trial on (TPE's and GP's random start-up trials count them too), and a
proposal of one of their architectures is copied, not trained again
(``search.execution.distinct``). They are not this study's work: they count
toward no run's ``--trials``. NSGA-II reads only trials of its own
generations, so it meets them only as copies.

The source may live in any storage (``NAME`` under ``studies/``, or
``NAME@URL`` for any Optuna storage URL or ``journal:PATH``), but it must be
a study of the same space: the same knobs and constraints, objectives, data
set and training budget (the seed and device may differ), since its values
are taken as this study's. Anything else is refused before the new study is
created. A study that exists already may only continue the warm start it was
created with, so rerunning the same command resumes it and hands nothing over twice.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from search.errors import UsageError
from search.storage.records import TrialOutcome
from search.storage.studies import check_study_name, open_study, storage_url
from spaces import Space, SpaceError, load_space

__all__ = ["WARM_START_ATTR", "WarmStart", "check_target", "hand_over", "open_warm_start"]

WARM_START_ATTR = "warm_started_from"  # user attribute of a handed-over trial: "SOURCE#NUMBER"
SETTINGS_KEY = "warm_start"
# Training settings that may differ between the two studies: neither changes what a trial's values mean.
_FREE_TRAINING = ("seed", "device")
# User attributes that name trial numbers of the source study, meaningless in the new one.
_SOURCE_NUMBERS = ("duplicate_of", "requeued_from")


@dataclass(frozen=True)
class WarmStart:
    """The study a new study starts from, opened and checked: ``open_warm_start``."""

    study: optuna.Study
    storage: str  # its storage URL

    @property
    def settings(self) -> dict[str, str]:
        """What the new study's settings record of it."""
        return {"study": self.study.study_name, "storage": self.storage}


def open_warm_start(text: str, *, space: Space, settings: dict[str, Any]) -> WarmStart:
    """The study ``text`` names (``NAME`` or ``NAME@URL``), checked against the new run's
    ``space`` and ``settings`` (``search.run``'s); a ``UsageError`` for another space,
    other objectives, data set or training budget, or a study that is not there."""
    name, _, url = text.partition("@")  # a study name holds no '@'; a URL may (user:password@host)
    check_study_name(name)
    resolved = storage_url(name, url or None)
    source = open_study(name, storage=url or None)
    differences = _differences(source, space=space, settings=settings)
    if differences:
        raise UsageError(
            f"warm start {text}: a warm start needs a study of the same space, objectives, data set and "
            f"training budget; study {name} differs: {'; '.join(differences)}"
        )
    return WarmStart(source, resolved)


def check_target(warm_start: WarmStart, *, name: str, url: str, storage: BaseStorage) -> None:
    """Refuse to warm-start study ``name`` (at ``url``, opened as ``storage``) when it is the
    source itself, or exists from another start."""
    if (name, url) == (warm_start.study.study_name, warm_start.storage):
        raise UsageError(f"warm start {name}: a study cannot start from itself; name another --study")
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return  # a new study
    recorded = storage.get_study_user_attrs(study_id).get("settings", {}).get(SETTINGS_KEY)
    if recorded != warm_start.settings:
        started = "without a warm start" if recorded is None else f"warm-started from {recorded['study']}"
        raise UsageError(
            f"warm start {warm_start.study.study_name}: study {name} exists, {started}; "
            "a warm start begins a new study, name another --study"
        )


def hand_over(warm_start: WarmStart, target: optuna.Study) -> int:
    """Add the source's finished trials, one per architecture, to ``target``; how many were added
    (none that an earlier start of the same command added already)."""
    source = warm_start.study.study_name
    done = {t.user_attrs.get(WARM_START_ATTR) for t in target.get_trials(deepcopy=False)}
    trials = [
        _handed(trial, f"{source}#{trial.number}")
        for trial in warm_start.study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        if trial.user_attrs.get("outcome") != TrialOutcome.DUPLICATE.value and f"{source}#{trial.number}" not in done
    ]
    target.add_trials(trials)
    return len(trials)


def _handed(trial: FrozenTrial, label: str) -> FrozenTrial:
    """``trial`` as the new study holds it: the same facts, marked as handed over, no number of the source."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in _SOURCE_NUMBERS}
    return optuna.trial.create_trial(
        state=trial.state,
        values=trial.values if trial.state == TrialState.COMPLETE else None,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs={**attrs, WARM_START_ATTR: label},
        intermediate_values=trial.intermediate_values,
        constraints=trial.constraints or None,
    )


def _differences(source: optuna.Study, *, space: Space, settings: dict[str, Any]) -> list[str]:
    """What makes ``source``'s values not this run's: ``key old -> new`` per setting that differs."""
    stored = source.user_attrs.get("settings")
    if not stored or "space_yaml" not in stored:
        return ["it records no settings of this toolkit (settings.space_yaml)"]
    found = []
    if not _same_space(stored["space_yaml"], space):
        found.append("the space's knobs or constraints")
    for key in ("objectives", "dataset", "input_size", "num_classes"):
        if stored.get(key) != settings[key]:
            found.append(f"{key} {stored.get(key)!r} -> {settings[key]!r}")
    old, new = stored.get("training", {}), settings["training"]
    found += [
        f"training.{k} {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(old | new)
        if k not in _FREE_TRAINING and old.get(k) != new.get(k)
    ]
    return found


def _same_space(text: str, space: Space) -> bool:
    """Whether the space file ``text`` has ``space``'s knobs (each parameter's name and values,
    the fixed ones too) and constraints."""
    with tempfile.TemporaryDirectory(prefix="warm-start-") as folder:
        path = Path(folder) / "source.yaml"
        path.write_text(text)
        try:
            other = load_space(path)
        except SpaceError:
            return False  # a file this version no longer reads is not a space it can compare
    return (
        other.knobs() == space.knobs()
        and other.parameterisation == space.parameterisation
        and dict(other.constraints.limits) == dict(space.constraints.limits)
    )
