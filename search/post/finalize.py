"""Retrain a study's best architectures at a full budget, several seeds each, and test each once.

A search ranks architectures by validation accuracy after brief training;
``finalize_study`` checks that ranking. Each chosen trial's architecture is
trained on the whole training split (or all but ``validation_size`` images
held out, whose accuracy each result then records, so that a choice among
final models need not read the test set) with the recipe the study's trials were trained with, for ``epochs`` epochs, once per seed
(0, 1, ..., seeds - 1, the same for every model, so models compare seed by
seed), and evaluated on the test set once. Files go to
``studies/<study>/final/trial-<n>/seed-<s>/`` (weights.pt, model.onnx,
architecture.yaml, result.json); ``final/final.csv`` holds one row per model and seed. A training
whose result.json exists is not repeated, so an interrupted run resumes and a
later run with more seeds or a larger ``top`` trains only what is new.

Which trials, ``select_trials``: the study's trials ranked by the rule of
``search.pareto`` (completed, within every constraint, one per architecture;
non-dominated rank first, then the quality objective, accuracy, best first),
those that recorded an architecture. Without ``top`` the front is finalized;
with it, the first ``top`` of that order (past the front when it is smaller).
With a ``TimeLimit``, only the trials whose training is predicted to fit it
(the best model one can afford to train, rather than the best model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from evaluation import TrainConfig
from evaluation.atomic import atomic_write
from evaluation.metrics import METRICS
from search.errors import UsageError
from search.pareto import ranked_trials
from search.post.final_results import FINAL_CSV, FINAL_FOLDER, final_dir, final_rows
from search.post.full_training import WEIGHTS_FILE, Job, JobReporter, run_jobs
from search.post.study_data import open_study_data
from search.storage.records import TrialRecord

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_SEEDS",
    "TimeLimit",
    "final_config",
    "finalize_study",
    "plan_final",
    "select_trials",
]

DEFAULT_EPOCHS = 10  # TrainConfig's default and the d2l book's budget for Fashion-MNIST
DEFAULT_SEEDS = 3  # the fewest that give a standard deviation with one degree of freedom to spare


@dataclasses.dataclass(frozen=True)
class TimeLimit:
    """At most ``hours`` for one training of ``epochs`` epochs over ``images`` images, predicted from the
    speed its trial trained at in the search (images per second, on the search's machine and threads).

    The search's accuracy favours large models; a finalisation's time budget
    is what rules them out, and the search measured every model's speed.
    """

    hours: float
    epochs: int
    images: int

    def predicted_hours(self, record: TrialRecord) -> float | None:
        """Hours of one training of the trial's model; None when the trial trained nothing to time."""
        if record.train_seconds <= 0 or record.images_seen <= 0:
            return None
        return self.epochs * self.images * record.train_seconds / record.images_seen / 3600

    def admits(self, record: TrialRecord) -> bool:
        hours = self.predicted_hours(record)
        return hours is not None and hours <= self.hours


def select_trials(study: optuna.Study, top: int | None = None, limit: TimeLimit | None = None) -> list[FrozenTrial]:
    """The trials to finalize, best first: the front, or the first ``top`` by the rule above, of those
    within ``limit``."""
    records = ((r, TrialRecord.load(r.trial)) for r in ranked_trials(study))
    ranked = [r for r, record in records if record.architecture is not None and (limit is None or limit.admits(record))]
    if top is None:
        return [r.trial for r in ranked if r.rank == 1]
    return [r.trial for r in ranked[:top]]


def final_config(
    study: optuna.Study,
    *,
    epochs: int,
    device: str = "auto",
    precision: str = "auto",
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The study's training recipe (batch, lr, schedule, regularisation, resolution) at the full budget:
    ``epochs`` epochs on the whole training split, on ``device``, with ``overrides``' settings in place of its own."""
    stored: dict[str, Any] = dict(study.user_attrs.get("settings", {}).get("training") or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    recipe = {k: v for k, v in stored.items() if k in known}
    full = {"epochs": epochs, "train_fraction": 1.0, "device": device, "precision": precision, "seed": 0}
    try:
        return TrainConfig(**{**recipe, **(overrides or {}), **full})
    except ValueError as error:
        raise UsageError(str(error)) from None


def plan_final(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    *,
    seeds: int,
    folder: str = FINAL_FOLDER,
    init_from: str | None = None,
) -> list[Job]:
    """One job per trial and seed, trial by trial, under ``final_dir(study, folder)``;
    with ``init_from``, each starts from the same model and seed's weights in that final folder."""
    where = final_dir(study.study_name, folder)
    start = None if init_from is None else final_dir(study.study_name, init_from)
    accuracy = METRICS["accuracy"]
    jobs = []
    for trial in trials:
        record = TrialRecord.load(trial)
        model = f"trial-{trial.number}"
        extra = {
            "study": study.study_name,
            "model": model,
            "trial": trial.number,
            "search_val_accuracy": accuracy.value(vars(record)),
        }
        if init_from is not None:
            extra["initialised_from"] = init_from
        arch = record.built_architecture(trial=trial.number, study=study.study_name, to="train")
        for seed in range(seeds):
            init = None if start is None else start / model / f"seed-{seed}" / WEIGHTS_FILE
            jobs.append(Job(f"{model} seed {seed}", arch, seed, where / model / f"seed-{seed}", extra, init))
    return jobs


def finalize_study(
    study: optuna.Study,
    *,
    top: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    seeds: int = DEFAULT_SEEDS,
    device: str = "auto",
    precision: str = "auto",
    data_root: str | None = None,
    memory_limit: float | None = None,
    reporter: JobReporter | None = None,
    folder: str = FINAL_FOLDER,
    shard: tuple[int, int] = (0, 1),
    overrides: Mapping[str, Any] | None = None,
    init_from: str | None = None,
    validation_size: int = 0,
    data: str | None = None,
    cache_dir: Path | None = None,
    max_hours: float | None = None,
) -> pd.DataFrame:
    """Train and test the chosen trials (see the module's doc); return final.csv's table.

    ``overrides`` replace settings of the study's recipe (``TrainConfig`` fields);
    ``init_from`` names a final folder whose weights each training starts from,
    a second stage on top of it (e.g. constant-rate weight averaging).
    ``validation_size`` training images (the data set's seed-0 split) are held
    out of every training; each result.json records the model's accuracy on them.

    final.csv is rewritten after every training, from every result.json under
    the folder (also those of models an earlier run, or another shard, trained),
    so it is whole even when the run is interrupted.

    The data is the study's, read again as the search read it
    (``search.post.study_data``): ``data`` names the same data set at another
    path, ``cache_dir`` where its decoded images are cached. Data that is not
    the search's (a file added, removed or changed since) is refused before
    anything trains. Each result.json records the test split's confusion
    matrix and most confident mistakes.
    """
    if seeds < 1 or epochs < 1 or (top is not None and top < 1):
        raise UsageError(f"seeds, epochs and top must be >= 1, got {seeds}, {epochs} and {top}")
    index, count = shard
    if not 0 <= index < count:
        raise UsageError(f"shard must be I/N with 0 <= I < N, got {index}/{count}")
    trials = select_trials(study, top)
    if not trials:
        raise UsageError(f"study {study.study_name} has no completed feasible trial to finalize")
    if init_from == folder:
        raise UsageError(f"--init-from {init_from} is the folder being trained; name the finished one")
    config = final_config(study, epochs=epochs, device=device, precision=precision, overrides=overrides)
    splits = open_study_data(study, dataset=data, root=data_root, cache_dir=cache_dir, validation_size=validation_size)
    if max_hours is not None:
        limit = TimeLimit(max_hours, epochs, len(splits.train[1]))
        trials = select_trials(study, top, limit)
        if not trials:
            raise UsageError(
                f"no trial of study {study.study_name} is predicted to train {epochs} epochs within "
                f"{max_hours:g} h (at the speed its trial trained in the search); allow more hours or fewer epochs"
            )
    where = final_dir(study.study_name, folder)

    def write_table() -> None:
        where.mkdir(parents=True, exist_ok=True)
        with atomic_write(where / FINAL_CSV) as temporary:  # a shard beside this one never reads half a table
            final_rows(where).to_csv(temporary, index=False)

    jobs = plan_final(study, trials, seeds=seeds, folder=folder, init_from=init_from)[index::count]
    run_jobs(jobs, splits, config, memory_limit=memory_limit, reporter=reporter, after_job=write_table, onnx=True)
    write_table()
    return pd.read_csv(where / FINAL_CSV)
