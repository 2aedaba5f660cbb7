"""Where studies live, and how they are created, resumed and opened.

By default a study is a folder ``studies/<name>/`` holding ``study.db`` (SQLite
storage), ``settings.yaml`` (the resolved settings of the run), the report and
exports. Any Optuna storage URL may replace the SQLite file.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from search.errors import UsageError

__all__ = [
    "SAMPLERS",
    "create_or_resume",
    "default_storage",
    "finished_trials",
    "make_sampler",
    "open_study",
    "check_study_name",
    "study_dir",
]

SAMPLERS = ("tpe", "nsga2", "random")
_STUDY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def studies_root() -> Path:
    """``$SEARCH_STUDIES_DIR``, else ``studies/`` in the working directory."""
    return Path(os.environ.get("SEARCH_STUDIES_DIR", "studies"))


def study_dir(name: str) -> Path:
    """``studies/<name>/``; ``name`` must be one plain folder name (``check_study_name``)."""
    return studies_root() / check_study_name(name)


def check_study_name(name: str) -> str:
    """``name``, when it names one folder right under the studies root; else a ``UsageError``.

    A study name becomes a path: ``../../etc``, ``/tmp/x`` or ``a/b`` would write
    outside ``studies/``, so only letters, digits and ``. _ -`` are allowed, not
    leading with a dot (no ``..``, no hidden folders).
    """
    if not _STUDY_NAME.fullmatch(name):
        raise UsageError(
            f"study name must be 1-100 letters, digits, '.', '_' or '-', not starting with '.', got {name!r}"
        )
    return name


def default_storage(name: str) -> str:
    return f"sqlite:///{study_dir(name) / 'study.db'}"


def make_sampler(kind: str, *, seed: int | None, trials: int) -> optuna.samplers.BaseSampler:
    """The sampler for ``kind``; options that matter for parallel runs are explicit.

    TPE starts modelling after a third of the planned ``trials`` (at least 3,
    at most Optuna's default 10), so a short study still gets past random search.
    """
    if kind == "tpe":
        # multivariate: the space samples every knob in every trial, so joint
        # modelling stays on. constant_liar: workers sharing a storage avoid
        # proposing the same point while earlier trials still run.
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            constant_liar=True,
            n_startup_trials=min(10, max(3, trials // 3)),
        )
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {kind!r}; expected one of {', '.join(SAMPLERS)}")


def create_or_resume(
    *,
    name: str,
    storage: str | None,
    directions: list[str],
    metric_names: list[str],
    sampler: optuna.samplers.BaseSampler,
    settings: dict[str, Any],
) -> optuna.Study:
    """Create the study, or load it when it exists (then its objectives must match)."""
    folder = study_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=name,
        storage=storage or default_storage(name),
        directions=directions,
        sampler=sampler,
        load_if_exists=True,
    )
    existing = [d.name.lower() for d in study.directions]
    if existing != directions:
        raise UsageError(
            f"study {name!r} exists with directions {existing}, the space asks for {directions}; "
            "use another --study name"
        )
    if not study.metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metric_names)
    study.set_user_attr("settings", settings)
    (folder / "settings.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return study


def open_study(name: str, *, storage: str | None = None) -> optuna.Study:
    """An existing study, by name (default storage) or in ``storage``."""
    url = storage or default_storage(name)
    if storage is None and not (study_dir(name) / "study.db").is_file():
        known = sorted(p.parent.name for p in studies_root().glob("*/study.db"))
        raise UsageError(
            f"no study {name!r} under {studies_root()}/" + (f"; known studies: {', '.join(known)}" if known else "")
        )
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UsageError(f"no study {name!r} in storage {url}") from None


def finished_trials(study: optuna.Study) -> int:
    """Trials that count toward a run's total: complete or pruned (failed ones are retried)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
