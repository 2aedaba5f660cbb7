"""Where studies live, and how they are created, resumed and opened.

By default a study is a folder ``studies/<name>/`` holding its storage,
``settings.yaml`` (the resolved settings of the run), the report and exports.
The storage is ``study.db`` (SQLite) for one process, ``journal.log`` (Optuna's
journal file, safe for concurrent writers) for workers on one machine, or any
Optuna URL (PostgreSQL for many machines); ``journal:PATH`` names a journal file.
RDB storages get Optuna's heartbeats, so a trial whose worker died is failed.

A storage that cannot be opened, or holds no study, is a ``UsageError`` (one
line); how each kind is opened safely is ``search.storage.backends``.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from evaluation.atomic import write_text
from evaluation.metrics import Direction
from search.errors import UsageError
from search.storage.backends import check_sqlite, open_journal, open_rdb, shown_url
from search.storage.leases import HEARTBEAT_ATTR, last_beat

__all__ = [
    "busy_seconds",
    "check_folder_name",
    "check_study_name",
    "create_or_resume",
    "default_storage",
    "finished_trials",
    "make_storage",
    "open_study",
    "storage_url",
    "study_dir",
]

JOURNAL_PREFIX = "journal:"
# Settings that decide what a trial means; a later start that changes one is told so.
STUDY_SETTINGS = (
    "space_yaml",
    "dataset",
    "input_size",
    "num_classes",
    "objectives",
    "training",
    "sampler",
    "pruner",
    "seed",
)
_FOLDER_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def studies_root() -> Path:
    """``$SEARCH_STUDIES_DIR``, else ``studies/`` in the working directory."""
    return Path(os.environ.get("SEARCH_STUDIES_DIR", "studies"))


def study_dir(name: str) -> Path:
    """``studies/<name>/``; ``name`` must be one plain folder name (``check_study_name``)."""
    return studies_root() / check_study_name(name)


def check_study_name(name: str) -> str:
    """``name``, when it names one folder right under the studies root; else a ``UsageError``."""
    return check_folder_name(name, "study name")


def check_folder_name(name: str, what: str) -> str:
    """``name``, when it is one plain folder name; else a ``UsageError`` about ``what``.

    Such a name becomes a path: ``../../etc``, ``/tmp/x`` or ``a/b`` would write
    outside its parent, so only letters, digits and ``. _ -`` are allowed, not
    leading with a dot (no ``..``, no hidden folders).
    """
    if not _FOLDER_NAME.fullmatch(name):
        raise UsageError(f"{what} must be 1-100 letters, digits, '.', '_' or '-', not starting with '.', got {name!r}")
    return name


def default_storage(name: str) -> str:
    return f"sqlite:///{study_dir(name) / 'study.db'}"


def storage_url(name: str, storage: str | None, *, workers: int = 1) -> str:
    """The storage a run uses: ``storage`` when given, else the one the study folder
    already holds, else SQLite for one process and a journal file for several."""
    if storage is not None:
        if workers > 1 and storage.startswith("sqlite:"):
            raise UsageError(
                f"--workers {workers} needs a storage safe for concurrent writers, got {storage}; "
                "leave --storage out (journal file) or use journal:PATH or postgresql://"
            )
        return storage
    journal = study_dir(name) / "journal.log"
    if journal.is_file() or (workers > 1 and not (study_dir(name) / "study.db").is_file()):
        return f"{JOURNAL_PREFIX}{journal}"
    return default_storage(name)


def make_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None, retry_failed: int = 0
) -> BaseStorage:
    """The Optuna storage for ``url``; RDB ones beat while a trial runs and fail stale trials.

    ``retry_failed`` re-queues a stale trial's parameters up to that many times
    (Optuna's RetryHeartbeatStaleTrialCallback, formerly RetryFailedTrialCallback); the journal's own lease does the same.

    Raises:
        UsageError: The storage cannot be opened, or is not an Optuna storage.
    """
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url.removeprefix(JOURNAL_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_journal(path)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        check_sqlite(path)
    if heartbeat_interval is None:
        return open_rdb(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return open_rdb(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=retry_failed)
            if retry_failed
            else None,
        )


def create_or_resume(
    *,
    name: str,
    storage: str | BaseStorage | None,
    directions: list[Direction],
    metric_names: list[str],
    sampler: optuna.samplers.BaseSampler,
    settings: dict[str, Any],
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, str | None]:
    """Create the study, or load it when it exists (then its objectives must match).

    ``pruner`` is the study's Optuna pruner; None is Optuna's NopPruner, never
    its silent default (MedianPruner).

    Returns the study and, for an existing study started with other settings
    than it was created with, one line saying what differs (None otherwise).
    The run is allowed: the study keeps its creation settings, the run's
    ``trials``/``timeout``/``command`` are updated and the change is appended
    to ``settings["changes"]``.
    """
    folder = study_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=name,
        storage=storage or make_storage(default_storage(name)),
        directions=directions,
        sampler=sampler,
        pruner=pruner or optuna.pruners.NopPruner(),
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
    stored, changed = _merge_settings(study.user_attrs.get("settings"), settings)
    study.set_user_attr("settings", stored)
    write_text(folder / "settings.yaml", yaml.safe_dump(stored, sort_keys=False))
    return study, changed


def _merge_settings(stored: dict[str, Any] | None, asked: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The settings to store, and what ``asked`` changes of the study-defining ones."""
    if stored is None:
        return asked, None
    merged = {**stored, **{k: asked[k] for k in ("trials", "timeout", "command")}}
    differences = _differences(stored, asked)
    if not differences:
        return merged, None
    line = "; ".join(differences)
    merged["changes"] = [*stored.get("changes", []), f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {line}"]
    return merged, line


def _differences(stored: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """``key old -> new`` for each study-defining setting that differs, per field for dicts."""
    found = []
    for key in STUDY_SETTINGS:
        old, new = stored.get(key), asked.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            found += [
                f"{key}.{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(old | new) if old.get(k) != new.get(k)
            ]
        elif key == "space_yaml":
            found.append("the space file's content")
        else:
            found.append(f"{key} {old!r} -> {new!r}")
    return found


def open_study(name: str, *, storage: str | None = None) -> optuna.Study:
    """An existing study, by name (the storage in its folder) or in ``storage``."""
    url = storage_url(name, storage)
    folder = study_dir(name)
    if storage is None and not ((folder / "study.db").is_file() or (folder / "journal.log").is_file()):
        known = sorted(
            {p.parent.name for pattern in ("*/study.db", "*/journal.log") for p in studies_root().glob(pattern)}
        )
        raise UsageError(
            f"no study {name!r} under {studies_root()}/" + (f"; known studies: {', '.join(known)}" if known else "")
        )
    try:
        # Read, not run: it prunes nothing (rather than Optuna's default MedianPruner).
        return optuna.load_study(study_name=name, storage=make_storage(url), pruner=optuna.pruners.NopPruner())
    except KeyError:
        raise UsageError(f"no study {name!r} in storage {shown_url(url)}") from None


def finished_trials(study: optuna.Study) -> int:
    """Finished trials: complete or pruned (failed ones are retried), copies of evaluated architectures
    included; the budget counts distinct ones (``search.execution.distinct.counted_trials``)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def busy_seconds(trials: Sequence[FrozenTrial]) -> float:
    """Wall seconds ``trials`` ran, over every start of their study: the union of their spans,
    so a pause between two runs does not count and trials of workers side by side count once."""
    spans = sorted(
        (t.datetime_start, _stopped_at(t, t.datetime_complete))
        for t in trials
        if t.datetime_start and t.datetime_complete
    )
    total, end = 0.0, None
    for start, stop in spans:
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def _stopped_at(trial: FrozenTrial, complete: datetime) -> datetime:
    """When ``trial``, which Optuna finished at ``complete``, stopped running: a failed one at
    its last lease beat (journal storage).

    A trial whose worker was killed is failed by the next worker that looks,
    maybe a day later, and that is when Optuna sets its end; its last beat is
    when it really stopped.
    """
    stop = complete
    if trial.state == TrialState.FAIL and HEARTBEAT_ATTR in trial.user_attrs:
        stop = min(stop, datetime.fromtimestamp(last_beat(trial)))
    return stop
