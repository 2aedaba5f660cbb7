"""The search as a library: ``run_search`` runs or resumes a study over a space.

``python -m search run`` is a thin layer over it: it builds the run's objects
from its flags, calls ``run_search`` and prints. A run is planned, then
executed. Planning checks what was asked (each object is validated when made;
the space then checks the pruner, the sampler factory its space, the names of
known architectures), loads the data, takes the training budget from the space
(larger on a GPU), creates or resumes the study with its settings and queues
the known architectures first: a ``SearchPlan``. Executing runs the one worker
function (``search.execution.workers.run_worker``) on that plan, in this
process for one worker and in N processes for N, then writes the report.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from evaluation import Architecture, TrainConfig, planned_images, preset, resolve_device
from evaluation.data import DataSplits
from evaluation.presets import PRESETS
from search.errors import SearchInterrupted, UsageError
from search.execution.distinct import STOPPED_ATTR, converged_line, counted_trials, stop_reason
from search.execution.interrupts import sigterm_as_interrupt
from search.execution.plan import DEFAULT_TRIALS, Budget, DataSpec, SearchPlan, StudySpec, Workers
from search.execution.run_data import data_settings, open_run_data
from search.execution.screening import Screening
from search.execution.workers import run_worker, run_workers, worker_devices
from search.pruners import Pruning
from search.report import write_report
from search.samplers import SamplerContext, SamplerSpec
from search.storage.leases import LeasePolicy
from search.storage.studies import create_or_resume, make_storage, storage_url, study_dir
from search.storage.warm_start import WARM_START_ATTR, check_target, hand_over, open_warm_start
from spaces import Space, enqueue_architecture, load_space

__all__ = [
    "DEFAULT_PRUNER",
    "DEFAULT_TRIALS",
    "GPU_EPOCH_FACTOR",
    "Budget",
    "DataSpec",
    "RunPlan",
    "StudySpec",
    "Workers",
    "run_search",
]

# Measured (benchmarks/rung_schedules.py, README "Stopping trials early"): on the
# default CPU budget the first rung (1/9, about 10 SGD steps) is at or near chance
# for every network, so ASHA there would rank by cost alone: it must be asked for.
DEFAULT_PRUNER = "none"
# On a GPU the same call trains on the whole training set for more epochs.
GPU_EPOCH_FACTOR = 3


@dataclass(frozen=True)
class RunPlan:
    """What a run is about to do, given to ``on_start`` once the study is open."""

    study: optuna.Study
    finished: int  # distinct architectures earlier runs evaluated (search.execution.distinct)
    to_run: int  # distinct architectures this run evaluates at most
    device: str  # where trials train: "cpu" or "cuda"
    report: Path | None  # where the report is written at the end; None without one
    workers: int = 1  # processes running trials
    settings_changed: str | None = None  # what differs from the settings the study was created with
    pruner: str = ""  # the pruner in use, in words (Pruning.describe)
    data: DataSplits | None = None  # the data trials train on (a source's skipped files: data.skipped)
    warm_started: int = 0  # trials of the study handed over by a warm start (counted toward no budget)


def run_search(
    *,
    space: Space | str | Path,
    study: StudySpec = StudySpec(),
    budget: Budget = Budget(),
    data: DataSpec = DataSpec(),
    sampler: SamplerSpec = SamplerSpec(),
    pruning: Pruning = Pruning(DEFAULT_PRUNER),
    leases: LeasePolicy = LeasePolicy(),
    screening: Screening = Screening(),
    workers: Workers = Workers(),
    seed: int = 0,
    on_start: Callable[[RunPlan], None] | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> optuna.Study:
    """Run, or resume, a multi-objective study over ``space`` and return it.

    Each trial samples an architecture, refuses it before training when it
    cannot be built or breaks a constraint of the space, profiles it, trains it
    briefly and records validation accuracy per epoch (see
    ``search.execution.objective``). Nothing is printed; ``on_start`` and ``on_trial``
    are where a caller shows progress. For example::

        run_search(space="densenet_hybrid", budget=Budget(trials=20, epochs=2),
                   pruning=Pruning("asha"), workers=Workers(count=2))

    Args:
        space: A ``spaces.Space``, or a built-in space name or YAML file path.
        study: Which study (name, storage), the architectures it evaluates
            first, whether the report is written, the command recorded, the
            study of the same space it starts from (a warm start).
        budget: Distinct architectures to evaluate in all (earlier runs and
            every worker included; a proposal of one the study already holds
            takes its values and counts nothing, one refused before training
            counts: ``search.execution.distinct``), a timeout, each trial's
            epochs and training fraction.
        data: A data set instead of the space's (a built-in name, or a source:
            ``folder:PATH``, ``csv:FILE``, ``npz:FILE``), how a source is read
            (``SourceOptions``), where its decoded images are cached, and the
            folder a built-in is in (``search.execution.run_data``).
        sampler: The sampler by name (``search.samplers.SAMPLERS``): ``tpe``
            (multivariate, constant liar), ``nsga2``, ``random``, ``gp``
            (Gaussian-process Bayesian optimisation) or ``grid`` (every point
            of a small space, once), and the repeats in a row after which a
            trial explores a random architecture instead.
        pruning: How trials are stopped early (``search.pruners``): ``asha``
            (multi-objective asynchronous successive halving, any space),
            ``median`` or ``hyperband`` (Optuna's, single-objective spaces
            only) or ``none``, with the first rung and ``eta``. With rungs, a
            space's one-cycle schedule is replaced by cosine (one-cycle's
            rungs measure at chance).
        leases: Heartbeats of running trials, the grace period after which a
            silent one is failed as stale (its worker died) by any worker of
            the study, and how often a stale trial's parameters are retried.
        screening: Candidate architectures per trial, scored at
            initialisation by the zero-cost proxies; the best is trained and
            all are recorded on the trial (``search.execution.screening``).
        workers: Processes on this machine running trials, their device and
            the memory a trial's model may be estimated to need.
        seed: Seed of the sampler, of the validation split and of each trial's
            weights and training (trial ``n`` uses ``seed + n``). Each worker
            and each resumed start seeds its sampler from it, its index and
            the trials already in the study (``search.samplers.worker_seed``).
        on_start: Called once with a ``RunPlan`` before the first trial.
        on_trial: Called with the study and each trial this run finished
            (copies of evaluated architectures too).
        on_note: Called with each line the run has to say beyond its trials:
            the sampler converged (before the trial that explores), the run
            stopped before its budget (the space exhausted).

    Returns:
        The study, every trial of this run finished (COMPLETE, PRUNED or FAIL).

    Raises:
        SearchInterrupted: Ctrl-C or SIGTERM stopped the run. It is raised
            after the loop stopped cleanly (no trial left RUNNING; one cut by
            SIGTERM is queued again) and the report was written;
            ``error.study`` holds the study, which resumes on the next call.
        ToolkitError: A mistake in what was asked for (space, data set, budget,
            sampler, device, workers, storage, known architecture), before any
            trial runs.
    """
    with sigterm_as_interrupt():  # SIGTERM outside the trial loop stops the run as Ctrl-C would
        space = space if isinstance(space, Space) else load_space(space)
        plan, splits, opened, changed = _plan(
            space,
            study=study,
            budget=budget,
            data=data,
            sampler=sampler,
            pruning=pruning,
            leases=leases,
            screening=screening,
            workers=workers,
            seed=seed,
        )
        if stop_reason(opened) is not None:
            opened.set_user_attr(STOPPED_ATTR, None)  # an earlier run's; this one says its own
        started = RunPlan(
            study=opened,
            finished=counted_trials(opened),
            to_run=max(budget.trials - counted_trials(opened), 0),
            device=plan.config.device,
            report=study_dir(plan.study_name) / "report.html" if study.report else None,
            workers=plan.workers,
            settings_changed=changed,
            data=splits,
            warm_started=sum(WARM_START_ATTR in t.user_attrs for t in opened.get_trials(deepcopy=False)),
            pruner=pruning.describe()
            + (
                f", schedule {plan.config.schedule} instead of {space.training.schedule}"
                if plan.config.schedule != space.training.schedule
                else ""
            ),
        )
        if on_start is not None:
            on_start(started)
        reported = _with_notes(on_trial, on_note)
        if plan.workers == 1:
            stopped = run_worker(plan, 0, study=opened, data=splits, on_trial=reported)
        else:
            stopped = run_workers(plan, study=opened, on_trial=reported)
        if on_note is not None and stopped is None and (reason := stop_reason(opened)) is not None:
            on_note(f"stopped before the budget: {reason}")
        if started.report is not None:
            write_report(opened, started.report)
        if stopped is not None:
            raise SearchInterrupted(opened, signum=stopped)
        return opened


def _with_notes(
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None, on_note: Callable[[str], None] | None
) -> Callable[[optuna.Study, FrozenTrial], None] | None:
    """``on_trial``, after ``on_note`` is told when a trial explores because its sampler converged.

    Read from the trial, so a worker process's fallback is told as this process's is.
    """
    if on_note is None:
        return on_trial

    def reported(study: optuna.Study, trial: FrozenTrial) -> None:
        line = converged_line(trial)
        if line is not None:
            on_note(line)
        if on_trial is not None:
            on_trial(study, trial)

    return reported


def _plan(
    space: Space,
    *,
    study: StudySpec,
    budget: Budget,
    data: DataSpec,
    sampler: SamplerSpec,
    pruning: Pruning,
    leases: LeasePolicy,
    screening: Screening,
    workers: Workers,
    seed: int,
) -> tuple[SearchPlan, DataSplits, optuna.Study, str | None]:
    """Check the request against the space, load the data, open the study: the plan, the data
    splits, the study and what its settings changed. Nothing is created before every check passed."""
    pruning.check(space.objectives)
    if sampler.name == "grid" and screening.active:
        # A screened trial trains the best of its candidates, most of them random: the grid's
        # point would be skipped, and the grid no longer enumerates the space.
        raise UsageError(
            f"sampler grid trains every point as it comes; it takes no screening, got screen {screening.count}"
        )
    devices = worker_devices(workers.device, workers.count)
    name = space.name if study.name is None else study.name  # an empty name is refused, not replaced
    url = storage_url(name, study.storage, workers=workers.count)
    first = [known if isinstance(known, Architecture) else _known_architecture(space, known) for known in study.enqueue]
    # Worker 0's sampler, made once before the study exists: a factory that refuses
    # the space (a grid too large) creates nothing. Each worker makes its own later.
    sampler.make(SamplerContext(space=space, seed=seed, trials=budget.trials))
    space, data, splits = open_run_data(space, data, seed=seed)  # a source is decoded here, once
    config = _train_config(space, splits, budget=budget, device=workers.device, seed=seed, pruning=pruning)
    settings = _settings(
        space,
        config,
        pruning=pruning,
        sampler=sampler,
        budget=budget,
        screening=screening,
        command=study.command
        or f"search.run_search(space={space.name!r}, study=StudySpec(name={name!r}), budget={budget!r})",
    )
    settings.update(data_settings(data, splits))
    source = None if study.warm_start is None else open_warm_start(study.warm_start, space=space, settings=settings)
    if source is not None:
        settings["warm_start"] = source.settings
    storage = make_storage(
        url,
        heartbeat_interval=leases.heartbeat_interval,
        grace_period=leases.grace_period,
        retry_failed=leases.retry_failed,
    )
    if source is not None:
        check_target(source, name=name, url=url, storage=storage)
    opened, changed = create_or_resume(
        name=name,
        storage=storage,
        directions=[o.direction for o in space.objectives],
        metric_names=[o.metric for o in space.objectives],
        sampler=optuna.samplers.RandomSampler(),  # replaced by the worker's: its seed depends on what the study holds
        settings=settings,
        pruner=pruning.optuna_pruner(planned_images(splits, config)),
    )
    _check_same_data(opened, settings)
    if source is not None:
        hand_over(source, opened)  # before the sampler seeds are drawn from the trials the study holds
    pruning.store_in(opened)  # what a worker of another command on this storage prunes with
    existing = len(opened.trials)
    for arch in first:
        opened.enqueue_trial(enqueue_architecture(space, arch), skip_if_exists=True)
    plan = SearchPlan(
        study_name=name,
        storage_url=url,
        space=space,
        data=data,
        seed=seed,
        config=config,
        budget=budget,
        sampler=sampler,
        pruning=pruning,
        leases=leases,
        screening=screening,
        devices=devices,
        threads=max(1, (os.cpu_count() or 1) // workers.count) if workers.count > 1 else None,
        memory_limit=workers.memory_limit,
        existing_trials=existing,
    )
    return plan, splits, opened, changed


def _check_same_data(study: optuna.Study, settings: dict[str, Any]) -> None:
    """Refuse to resume a study on a source whose images or split changed since it was created:
    its trials would compare models trained and validated on different images."""
    recorded = study.user_attrs.get("settings", {}).get("data_fingerprint")
    now = settings["data_fingerprint"]
    if recorded is not None and recorded != now:
        raise UsageError(
            f"study {study.study_name} searched {settings['dataset']} with data fingerprint {recorded[:12]}; "
            f"it now reads {(now or 'none')[:12]} (files added, removed or changed, or other options): one study, "
            f"one data set; restore the files or options, or start another --study"
        )


def _train_config(
    space: Space, data: DataSplits, *, budget: Budget, device: str, seed: int, pruning: Pruning
) -> TrainConfig:
    """The training of every trial: the space's budget, scaled up on a GPU, unless overridden.

    A pruner judges trials mid-schedule. One-cycle's rate is still rising at a
    ninth of the budget and peaks at 30%: on densenet_hybrid's budget every
    network measured sat at chance at the first rung, and the rungs ranked them
    against their final order; cosine (5% warm-up) ranked them with it and
    ended as accurate (benchmarks/results/rung_schedules.json). So with rungs,
    one-cycle becomes cosine.
    """
    training = space.training
    on_gpu = resolve_device(device).type == "cuda"
    schedule = "cosine" if pruning.fractions() and training.schedule == "onecycle" else training.schedule
    epochs = budget.epochs if budget.epochs is not None else training.epochs * (GPU_EPOCH_FACTOR if on_gpu else 1)
    fraction = budget.train_fraction
    input_size, _ = space.model_shape()
    return TrainConfig(
        epochs=epochs,
        train_fraction=fraction if fraction is not None else (1.0 if on_gpu else training.train_fraction),
        batch_size=training.batch_size,
        lr=training.lr,
        schedule=schedule,
        device="cuda" if on_gpu else "cpu",
        seed=seed,
        # The space may ask for another resolution than the data set's own.
        resize=None if input_size[1:] == data.input_size[1:] else input_size[1],
    )


def _known_architecture(space: Space, name: str) -> Architecture:
    """A baseline named in the space file, else a preset."""
    if name in space.baselines:
        return space.baseline(name)
    if name in PRESETS:
        return preset(name)
    raise UsageError(
        f"enqueue {name!r}: not a baseline of space {space.name} "
        f"({', '.join(sorted(space.baselines)) or 'none'}) nor a preset ({', '.join(sorted(PRESETS))})"
    )


def _settings(
    space: Space,
    config: TrainConfig,
    *,
    pruning: Pruning,
    sampler: SamplerSpec,
    budget: Budget,
    screening: Screening,
    command: str,
) -> dict[str, Any]:
    """Everything needed to understand and repeat the run, stored with the study."""
    input_size, num_classes = space.model_shape()
    return {
        "space": space.name,
        "space_file": str(space.path),
        "space_yaml": space.path.read_text(),
        "dataset": space.dataset,
        "input_size": list(input_size),
        "num_classes": num_classes,
        "objectives": [f"{o.metric} ({o.direction})" for o in space.objectives],
        "training": dataclasses.asdict(config),
        "sampler": sampler.name,
        "fallback_after": sampler.fallback_after,
        "warm_start": None,  # the study it started from: search.storage.warm_start.WarmStart.settings
        "pruner": pruning.settings(),
        "screening": {"count": screening.count, "by": screening.by},
        "seed": config.seed,
        "trials": budget.trials,
        "timeout": budget.timeout,
        "device": config.device,
        "command": command,
        "versions": {
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "optuna": optuna.__version__,
        },
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
