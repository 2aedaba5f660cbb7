"""The report's data: ``collect_report(study)`` reads a study into plain values (the compute half).

The data panel (``DataPanel``, ``ModelErrors``) reads the study's images
again: a source's from its cache, found by the fingerprint the study
recorded (``settings["data"]``, ``evaluation.data.describe_data``'s record),
without listing or decoding anything; a built-in data set's from its arrays
(never downloaded for a report). Each finalised model's mistakes come from
its result.json files: the fields ``confusion_matrix`` and ``misclassified``
that ``search finalize`` writes (``ERROR_FIELDS`` says exactly what).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from evaluation.data import DATASETS, DataError, load_dataset
from evaluation.images import SPLITS, cache_root, find_cache, is_source
from evaluation.metrics import METRICS
from evaluation.proxies import PROXIES
from search.errors import UsageError
from search.pareto import (
    front_size_history,
    is_feasible,
    objective_names,
    quality_index,
    rank_trials,
    spearman,
    study_directions,
    study_objectives,
)
from search.post.final_results import FinalResults, load_final
from search.pruners import BudgetSpent, RungDecision, recorded_decisions, recorded_rungs
from search.storage.records import TrialOutcome, TrialRecord

__all__ = [
    "CORRELATED_COSTS",
    "ERROR_FIELDS",
    "IMPORTANCE_MIN_TRIALS",
    "MISCLASSIFIED_SHOWN",
    "SAMPLES_PER_CLASS",
    "Correlation",
    "DataPanel",
    "Importance",
    "Misclassified",
    "ModelErrors",
    "ParamAxis",
    "ReportData",
    "TrialPoint",
    "collect_report",
    "data_panel",
    "model_errors",
]

# PED-ANOVA compares the best 10% of trials with all of them; below this many
# feasible trials that top decile is one or no trial and the numbers are noise.
IMPORTANCE_MIN_TRIALS = 10
# Set beside the proxies' rank correlations with accuracy: a proxy is worth screening
# with only where it ranks accuracy better than size alone (about 0.75 on NAS-Bench-201).
CORRELATED_COSTS = ("params", "macs")
SAMPLES_PER_CLASS = 8  # training images shown per class, spread evenly over the class's rows
MISCLASSIFIED_SHOWN = 24  # test images shown per finalised model, the most confident mistakes first
# What the panel reads from each finalised model's result.json (studies/<study>/final/<model>/seed-<s>/),
# beside "trial" and "seed"; classes are in the order of the study's settings["data"]["classes"].
ERROR_FIELDS = {
    "confusion_matrix": "list of C lists of C ints: [true class][predicted class] counts over the whole test split",
    "misclassified": (
        'list of {"index": int, "true": int, "predicted": int, "probability": float}: every misclassified '
        "test image (or at least the most confident ones), index = its position in the test split as "
        "load_dataset orders it (DataSplits.test), probability = the predicted class's softmax probability"
    ),
}


@dataclass(frozen=True)
class ParamAxis:
    """One searched parameter and the values it may take: an axis of the knob plots."""

    name: str
    kind: str  # "categorical", "int" or "float"
    choices: tuple[Any, ...] = ()
    log: bool = False


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the report sees it: Optuna's facts plus the trial's record."""

    number: int
    state: str
    values: tuple[float, ...] | None
    feasible: bool
    on_front: bool
    knobs: dict[str, Any]
    constraints: dict[str, float]
    curve: tuple[float, ...]
    record: TrialRecord
    rungs: tuple[tuple[int, float], ...] = ()  # (images seen, validation accuracy) at each rung reached
    decisions: tuple[RungDecision, ...] = ()  # the pruner's, one per rung
    # The learning curve in epochs, rungs included (a rung may fall mid-epoch): (epochs, accuracy).
    progress: tuple[tuple[float, float], ...] = ()
    rung_epochs: tuple[float, ...] = ()  # where its rungs fall, in epochs

    @property
    def finished(self) -> bool:
        """Completed with values and within every constraint: a candidate for the front."""
        return self.state == "COMPLETE" and self.values is not None and self.feasible

    @property
    def drawn(self) -> bool:
        """Shown in the objective plots. A diverged trial's chance-level accuracy would
        squash every axis, so it is left out unless it is on the front; a value that
        is not finite (a missing measurement ranked worst) has no place on an axis."""
        return (
            self.finished
            and (self.record.outcome is not TrialOutcome.DIVERGED or self.on_front)
            and all(math.isfinite(v) for v in self.values or ())
        )


@dataclass(frozen=True)
class Importance:
    """How much each knob matters for one objective, or why that is unknown."""

    objective: str
    values: dict[str, float]
    note: str | None = None


@dataclass(frozen=True)
class Correlation:
    """A metric against final validation accuracy over the trained trials, with Spearman's rho so far.

    ``running[k]`` is the rank correlation over the first ``k + 1`` trials (by
    number); None while ``search.pareto.spearman`` has none (fewer than three,
    or values that do not vary).
    """

    metric: str
    trials: tuple[int, ...]
    values: tuple[float, ...]
    accuracies: tuple[float, ...]
    running: tuple[float | None, ...]

    @property
    def rho(self) -> float | None:
        """Spearman's rho over every trial."""
        return self.running[-1] if self.running else None


@dataclass(frozen=True)
class DataPanel:
    """What the report shows of a study's data: class counts per split and sample training images.

    ``counts[split]``: images per class (in ``classes`` order) of ``train``,
    ``val`` and ``test``; ``samples[c]``: up to ``SAMPLES_PER_CLASS`` training
    images of class ``c``, uint8 (N, C, H, W). ``note``: why there are no
    counts or samples (the data cannot be opened), in one line.
    """

    source: str
    classes: tuple[str, ...]
    counts: dict[str, tuple[int, ...]]
    samples: tuple[np.ndarray, ...]
    note: str | None = None
    cache: str | None = None  # a source's cache folder
    skipped: int = 0  # a source's files that could not be decoded

    @property
    def opened(self) -> bool:
        return self.note is None


@dataclass(frozen=True)
class Misclassified:
    """One test image a finalised model got wrong, with the image when the data could be opened."""

    index: int
    label: int
    predicted: int
    confidence: float | None
    image: np.ndarray | None  # uint8 (C, H, W)


@dataclass(frozen=True)
class ModelErrors:
    """A finalised model's mistakes on the test split: its confusion matrix (summed over its seeds)
    and the most confident misclassified images of its first seed."""

    trial: int
    seeds: int
    confusion: tuple[tuple[int, ...], ...]
    misclassified: tuple[Misclassified, ...]  # at most MISCLASSIFIED_SHOWN, most confident first
    misclassified_total: int  # how many its first seed recorded

    @property
    def test_images(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float:
        return sum(self.confusion[i][i] for i in range(len(self.confusion))) / max(1, self.test_images)


@dataclass(frozen=True)
class ReportData:
    """Everything the report draws, computed from the study once."""

    study_name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    trials: tuple[TrialPoint, ...]
    front: tuple[int, ...]
    front_size_history: tuple[tuple[int, int], ...]
    knobs: tuple[ParamAxis, ...]
    importances: tuple[Importance, ...]
    settings: dict[str, Any]
    generated_at: str
    final: FinalResults | None = None  # ``search finalize``'s results, when the study has them
    correlations: tuple[Correlation, ...] = ()  # the proxies' and costs' with accuracy; () without proxies
    data: DataPanel | None = None  # None when the settings name no data set the toolkit knows
    errors: tuple[ModelErrors, ...] = ()  # finalised models that recorded their confusion matrix

    @property
    def quality(self) -> int:
        """Index of the objective drawn on the y axes: the first maximised one (accuracy)."""
        return quality_index(self.directions)

    @property
    def budget(self) -> BudgetSpent:
        """Training images the finished trials that trained saw, against their planned budgets."""
        spent = [
            (t.record.images_seen, t.record.images_planned)
            for t in self.trials
            if t.state != "RUNNING" and t.record.images_planned
        ]
        return BudgetSpent(len(spent), sum(s for s, _ in spent), sum(p for _, p in spent))

    @property
    def metrics(self) -> tuple[str, ...]:
        """What hovers and the table show: the objectives, then every other metric of the table."""
        return (*self.objectives, *(name for name in METRICS if name not in self.objectives))

    def metric(self, trial: TrialPoint, name: str) -> float | None:
        """An objective's value, else the trial's recorded value of that metric."""
        if name in self.objectives and trial.values is not None:
            return trial.values[self.objectives.index(name)]
        metric = METRICS.get(name)
        return None if metric is None else trial.record.value(metric)


def collect_report(study: optuna.Study) -> ReportData:
    """Read ``study`` into a ``ReportData``; safe while other processes add trials."""
    names = tuple(objective_names(study))
    directions = study_directions(study)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    front = tuple(sorted(r.trial.number for r in rank_trials(trials, directions) if r.rank == 1))
    on_front = set(front)
    settings = dict(study.user_attrs.get("settings") or {})
    epochs = (settings.get("training") or {}).get("epochs")
    points = tuple(_trial_point(t, on_front, epochs) for t in trials)
    final = _final(study)
    panel, test_image = data_panel(settings)
    return ReportData(
        study_name=study.study_name,
        objectives=names,
        directions=directions,
        trials=points,
        front=front,
        front_size_history=tuple(front_size_history(trials, directions)),
        knobs=_knobs(trials),
        importances=_importances(study, names, directions),
        settings=settings,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        final=final,
        correlations=_correlations(points),
        data=panel,
        errors=() if final is None else model_errors(final.source.parent, test_image),
    )


def _final(study: optuna.Study) -> FinalResults | None:
    """The study's finalized models; a study whose name is no folder name (made elsewhere) has none."""
    try:
        return load_final(study.study_name, objectives=study_objectives(study))
    except UsageError:
        return None


def _correlations(points: Sequence[TrialPoint]) -> tuple[Correlation, ...]:
    """Each proxy's and each cost's rank correlation with accuracy, when any trial recorded proxies."""
    if not any(p.record.proxies for p in points):
        return ()
    accuracy = METRICS["accuracy"]
    found = []
    for name in (*PROXIES, *CORRELATED_COSTS):
        pairs = [(p.number, p.record.value(METRICS[name]), p.record.value(accuracy)) for p in points]
        kept = [(n, float(x), float(y)) for n, x, y in pairs if x is not None and y is not None]
        numbers, xs, ys = (tuple(column) for column in zip(*kept)) if kept else ((), (), ())
        running = tuple(spearman(xs[: k + 1], ys[: k + 1]) for k in range(len(xs)))
        found.append(Correlation(name, numbers, xs, ys, running))
    return tuple(found)


def _trial_point(trial: FrozenTrial, on_front: set[int], epochs: int | None) -> TrialPoint:
    record = TrialRecord.load(trial)
    rungs = tuple(sorted(recorded_rungs(trial.user_attrs).items()))
    # The record's curve is the truth; a trial that reported epochs but died
    # before saving its record still has Optuna's intermediate values (when
    # they are per epoch: with rungs, their steps are images).
    curve = record.val_accuracy_per_epoch or (
        [] if rungs else [v for _, v in sorted(trial.intermediate_values.items())]
    )
    progress = [(float(epoch), float(v)) for epoch, v in enumerate(curve, start=1)]
    rung_epochs: tuple[float, ...] = ()
    if rungs and epochs and record.images_planned:
        per_epoch = record.images_planned / epochs
        rung_epochs = tuple(images / per_epoch for images, _ in rungs)
        progress = sorted((dict(zip(rung_epochs, (v for _, v in rungs))) | dict(progress)).items())
    return TrialPoint(
        number=trial.number,
        state=trial.state.name,
        values=tuple(trial.values) if trial.values is not None else None,
        feasible=is_feasible(trial),
        on_front=trial.number in on_front,
        knobs=dict(trial.params),
        constraints=dict(trial.constraints),
        curve=tuple(float(v) for v in curve),
        record=record,
        rungs=rungs,
        decisions=tuple(recorded_decisions(trial.user_attrs)),
        progress=tuple(progress),
        rung_epochs=rung_epochs,
    )


def _knobs(trials: list[FrozenTrial]) -> tuple[ParamAxis, ...]:
    """The union of the trials' parameters, in the order the space samples them."""
    distributions: dict[str, BaseDistribution] = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            distributions.setdefault(name, distribution)
    return tuple(_knob(name, d) for name, d in distributions.items())


def _knob(name: str, distribution: BaseDistribution) -> ParamAxis:
    if isinstance(distribution, CategoricalDistribution):
        return ParamAxis(name, "categorical", tuple(distribution.choices))
    kind = "float" if isinstance(distribution, FloatDistribution) else "int"
    return ParamAxis(name, kind, log=bool(getattr(distribution, "log", False)))


def _importances(study: optuna.Study, names: tuple[str, ...], directions: tuple[str, ...]) -> tuple[Importance, ...]:
    """PED-ANOVA importances (Optuna's default evaluator) per objective, feasible trials only.

    PED-ANOVA scores how differently a knob is distributed in the best 10% of
    trials than in all of them; it handles the conditional knobs of deeper
    networks. Rejected trials would teach it the constraints rather than the
    objective, so their target is NaN, which the evaluator skips.
    """
    feasible = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    if len(feasible) < IMPORTANCE_MIN_TRIALS:
        note = f"needs at least {IMPORTANCE_MIN_TRIALS} feasible completed trials, the study has {len(feasible)}"
        return tuple(Importance(name, {}, note) for name in names)
    # A knob that took one value in every trial cannot be judged, yet PED-ANOVA
    # still scores it against its prior; leave such knobs out.
    seen: dict[str, set[str]] = {}
    for trial in feasible:
        for knob, value in trial.params.items():
            seen.setdefault(knob, set()).add(repr(value))
    varied = [knob for knob, values in seen.items() if len(values) > 1]
    if not varied:
        note = "every knob took a single value in the feasible trials, so none can be judged"
        return tuple(Importance(name, {}, note) for name in names)
    return tuple(_importance(study, varied, i, name, directions[i] == "maximize") for i, name in enumerate(names))


def _importance(study: optuna.Study, knobs: list[str], index: int, name: str, maximize: bool) -> Importance:
    sign = -1.0 if maximize else 1.0  # PED-ANOVA takes lower targets as better

    def target(trial: FrozenTrial) -> float:
        return sign * trial.values[index] if is_feasible(trial) else math.nan

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "importances will be equal" and experimental notices
            raw = optuna.importance.get_param_importances(study, params=knobs, target=target, normalize=False)
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        return Importance(name, {}, f"Optuna could not compute importances: {error}")
    total = sum(raw.values())
    # Optuna's own normalising would turn all zeros into equal shares, which
    # would read as "every knob matters a bit".
    if total <= 0:
        return Importance(name, {}, "no knob separates the best 10% of trials from the rest (every importance is 0)")
    return Importance(name, {k: v / total for k, v in sorted(raw.items(), key=lambda kv: -kv[1])})


# --- the data panel ----------------------------------------------------------------------------

TestImage = Callable[[int], np.ndarray]  # a test image (C, H, W) by its position in the test split


def data_panel(settings: dict[str, Any]) -> tuple[DataPanel | None, TestImage | None]:
    """The study's data as the panel shows it, and a reader of its test images (None when not opened).

    The data set is ``settings["data"]["dataset"]`` (``describe_data``), else
    ``settings["dataset"]``; None, None when neither names one the toolkit
    knows. Data that cannot be opened gives a panel with a ``note``, never an error.
    """
    recorded = settings.get("data")
    described: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    name = described.get("dataset", settings.get("dataset"))
    if not isinstance(name, str):
        return None, None
    if is_source(name):
        return _source_panel(name, described)
    if name in DATASETS:
        return _builtin_panel(name, settings)
    return None, None


def _spread(rows: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` of ``rows``, evenly spaced from the first to the last."""
    if len(rows) <= count:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, count).round().astype(int))]


def _samples(labels: np.ndarray, classes: int, read: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, ...]:
    """``SAMPLES_PER_CLASS`` training images of each class; ``read`` fetches rows of the training split."""
    return tuple(read(_spread(np.flatnonzero(labels == c), SAMPLES_PER_CLASS)) for c in range(classes))


def _source_panel(source: str, described: dict[str, Any]) -> tuple[DataPanel, TestImage | None]:
    classes = tuple(described.get("classes") or ())
    fingerprint = described.get("fingerprint")
    cache = find_cache(source, fingerprint) if isinstance(fingerprint, str) else None
    if cache is None:
        why = (
            f"no cache under {cache_root()} holds its images with the fingerprint the study recorded "
            f"({str(fingerprint)[:12]}): deleted, moved, or the images changed since"
            if fingerprint
            else "the study recorded no fingerprint of its images"
        )
        return DataPanel(source, classes, {}, (), note=f"The data of this study cannot be opened: {why}."), None
    ranges = cache.ranges
    counts = {split: tuple(int(n) for n in cache.meta["counts"][split]) for split in SPLITS}
    start, stop = ranges["train"]
    samples = _samples(cache.labels[start:stop], len(cache.meta["classes"]), lambda rows: cache.images[start + rows])
    first_test = ranges["test"][0]
    panel = DataPanel(
        source,
        tuple(cache.meta["classes"]),
        counts,
        samples,
        cache=str(cache.directory),
        skipped=int(cache.meta.get("skipped", 0)),
    )
    return panel, lambda index: np.asarray(cache.images[first_test + index])


def _builtin_panel(name: str, settings: dict[str, Any]) -> tuple[DataPanel, TestImage | None]:
    """A built-in data set split as the search split it: its validation size and seed."""
    from search.execution.run_data import VALIDATION_SIZE  # the run writes the report: imported here, not at the top

    validation_size = settings.get("validation_size", VALIDATION_SIZE)
    spec = DATASETS[name]
    try:
        data = load_dataset(name, validation_size=validation_size, seed=int(settings.get("seed") or 0), download=False)
    except DataError as error:
        note = f"The data of this study cannot be opened: {error}."
        return DataPanel(name, spec.class_names, {}, (), note=note), None
    counts = {
        split: tuple(np.bincount(labels.numpy(), minlength=spec.num_classes).tolist())
        for split, (_, labels) in zip(SPLITS, (data.train, data.val, data.test))
    }
    images = data.train[0]
    samples = _samples(data.train[1].numpy(), spec.num_classes, lambda rows: images[torch.from_numpy(rows)].numpy())
    test = data.test[0]
    return DataPanel(name, spec.class_names, counts, samples), lambda index: test[index].numpy()


def _test_image(read: TestImage | None, index: int) -> np.ndarray | None:
    """The test image at ``index``; None without data, or for an index past the test split (another split)."""
    if read is None or index < 0:
        return None
    try:
        return read(index)
    except IndexError:
        return None


def model_errors(folder: Path, test_image: TestImage | None) -> tuple[ModelErrors, ...]:
    """Each finalised model's ``ERROR_FIELDS`` under ``folder`` (``<model>/seed-<s>/result.json``).

    Models whose records lack a confusion matrix (finalised before it was
    recorded) are left out. Misclassified images come from ``test_image``;
    without it (the data cannot be opened) they are listed without pixels.
    """
    by_trial: dict[int, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*/seed-*/result.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record.get("confusion_matrix"), list) and "trial" in record:
            by_trial.setdefault(int(record["trial"]), []).append(record)
    found = []
    for trial, records in sorted(by_trial.items()):
        records.sort(key=lambda r: r.get("seed", 0))
        matrix = np.sum([np.asarray(r["confusion_matrix"], dtype=np.int64) for r in records], axis=0)
        mistakes = sorted(records[0].get("misclassified") or [], key=lambda m: -(m.get("probability") or 0.0))
        shown = tuple(
            Misclassified(
                index=int(m["index"]),
                label=int(m["true"]),
                predicted=int(m["predicted"]),
                confidence=None if m.get("probability") is None else float(m["probability"]),
                image=_test_image(test_image, int(m["index"])),
            )
            for m in mistakes[:MISCLASSIFIED_SHOWN]
        )
        confusion = tuple(tuple(int(v) for v in row) for row in matrix)
        found.append(ModelErrors(trial, len(records), confusion, shown, len(mistakes)))
    return tuple(found)
